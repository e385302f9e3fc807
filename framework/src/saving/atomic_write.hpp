// Writes a file so that readers see either the old file or the complete new one: the writer fills a
// temporary file in the same directory (same filesystem, so rename is atomic), which is fsynced and
// renamed over the target. A crash or kill at any point leaves the previous file intact.
#pragma once

#include <functional>
#include <string>

namespace keras::saving {

// Calls write(temp_path), then fsyncs and renames temp_path to filepath (and fsyncs the directory).
// The temporary file is removed if write throws. overwrite=false: ValueError when filepath exists.
void atomic_write(const std::string& filepath, const std::function<void(const std::string&)>& write,
                  bool overwrite = true);

}  // namespace keras::saving
