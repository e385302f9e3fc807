#include "saving/stale_temp_files.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <vector>

#include <fmt/format.h>

namespace keras::saving {

namespace fs = std::filesystem;

namespace {

std::string host_name() {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
    std::string host(buffer);
    for (char& c : host)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
    return host.substr(0, 64);
}

std::vector<std::string> split_dashes(const std::string& s) {
    std::vector<std::string> parts(1);
    for (char c : s) {
        if (c == '-') parts.emplace_back();
        else parts.back() += c;
    }
    return parts;
}

bool all_digits(const std::string& s) {
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool process_is_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool unmodified_for_a_day(const fs::path& path) {
    std::error_code ec;
    const auto modified = fs::last_write_time(path, ec);
    return !ec && fs::file_time_type::clock::now() - modified > std::chrono::hours(kStaleAgeHours);
}

bool is_stale(const fs::path& path, const std::string& middle, size_t legacy_parts) {
    const auto parts = split_dashes(middle);
    if (parts.size() == 3 && all_digits(parts[1])) {
        if (parts[0] == host_name()) return process_is_gone(static_cast<pid_t>(std::stol(parts[1])));
        return unmodified_for_a_day(path);   // another host's: its pid means nothing here
    }
    return parts.size() == legacy_parts && unmodified_for_a_day(path);
}

}  // namespace

std::string temp_owner_tag() { return fmt::format("{}-{}", host_name(), ::getpid()); }

void remove_stale_temp_files(const fs::path& dir, const std::string& prefix, const std::string& suffix,
                             size_t legacy_parts) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
            continue;
        const std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
        std::error_code regular_ec;
        if (!it->is_regular_file(regular_ec) || !is_stale(it->path(), middle, legacy_parts)) continue;
        std::error_code remove_ec;
        fs::remove(it->path(), remove_ec);
    }
}

}  // namespace keras::saving
