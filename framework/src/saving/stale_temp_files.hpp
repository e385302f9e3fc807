// Temporary files that say who made them, so that a later writer can remove the ones a killed
// process left behind (a SIGKILL during model.save or get_file leaves its temporary; nothing else
// ever would). Internal: not installed.
//
// A temporary is named <prefix><host>-<pid>-<unique><suffix>. One is stale when
// - it was made on this host and its process no longer exists (kill(pid, 0) says ESRCH): a live
//   writer, in this process or another, keeps its file, and a reused pid only delays the cleanup;
// - or it was made on another host sharing the folder (whose pids we cannot check), or by an older
//   kerascpp that did not record its pid, and has not been modified for kStaleAgeHours: every writer
//   writes its temporary continuously and renames it within seconds.
#pragma once

#include <filesystem>
#include <string>

namespace keras::saving {

inline constexpr int kStaleAgeHours = 24;

// "<host>-<pid>" for this process (the host name without '-', so the name splits unambiguously).
std::string temp_owner_tag();

// Removes the stale temporaries <prefix>...<suffix> in dir (see above); `legacy_parts` is how many
// '-'-separated parts the names of older kerascpp versions had between prefix and suffix (the age
// rule alone applies to those). Errors are ignored: cleaning up must never fail a save.
void remove_stale_temp_files(const std::filesystem::path& dir, const std::string& prefix, const std::string& suffix,
                             size_t legacy_parts);

}  // namespace keras::saving
