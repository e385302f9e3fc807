// keras.utils.get_file and keras_home (keras/src/utils/file_utils.py, keras/src/backend/config.py).
#include "keras/utils/data_utils.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <random>
#include <system_error>

#include "http_download.hpp"
#include "keras/errors.hpp"
#include "saving/stale_temp_files.hpp"

namespace fs = std::filesystem;

namespace keras::utils {

namespace {

bool writable_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    return fs::is_directory(dir, ec) && ::access(dir.c_str(), W_OK) == 0;
}

fs::path expand_user(const std::string& path) {
    if (path == "~" || path.starts_with("~/")) {
        const char* home = std::getenv("HOME");
        if (home && *home) return fs::path(home) / path.substr(std::min<size_t>(path.size(), 2));
    }
    return path;
}

// The last component of the URL's path, without query or fragment: Keras's basename(urlsplit(origin).path).
std::string file_name_from_url(const std::string& origin) {
    std::string rest = origin;
    if (auto scheme = rest.find("://"); scheme != std::string::npos) {
        rest = rest.substr(scheme + 3);
        auto slash = rest.find('/');
        rest = slash == std::string::npos ? "" : rest.substr(slash);
    }
    rest = rest.substr(0, rest.find_first_of("?#"));
    return rest.substr(rest.find_last_of('/') == std::string::npos ? 0 : rest.find_last_of('/') + 1);
}

std::string resolve_algorithm(const std::string& algorithm, const std::string& file_hash) {
    if (algorithm == "sha256" || algorithm == "md5") return algorithm;
    if (algorithm != "auto")
        value_error("get_file: hash_algorithm must be \"auto\", \"sha256\" or \"md5\", got \"{}\"", algorithm);
    return file_hash.size() == 64 ? "sha256" : "md5";
}

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// A fresh name in the cache folder for the download in progress: never the final name, so a
// reader never sees a partial file.
fs::path temporary_name(const fs::path& target) {
    std::random_device rd;
    return target.parent_path() /
           fmt::format(".{}.{}-{:08x}.download", target.filename().string(), saving::temp_owner_tag(), rd());
}

// The downloads of `target` a killed process left behind (older versions named them .<name>.<pid>-<hex>.download).
void remove_stale_downloads(const fs::path& target) {
    saving::remove_stale_temp_files(target.parent_path(), "." + target.filename().string() + ".", ".download", 2);
}

fs::path download(const std::string& origin, const fs::path& target, const std::string& file_hash,
                  const std::string& algorithm) {
    std::cout << "Downloading data from " << origin << std::endl;
    const fs::path temp = temporary_name(target);
    const std::string by_hand = fmt::format("Nothing was saved. To use a copy you already have, put it at {}", target.string());
    try {
        download_to_file(origin, temp);
        if (!file_hash.empty()) {
            const std::string actual = hash_file(temp, algorithm);
            if (actual != lowercase(file_hash))
                runtime_error("Incomplete or corrupted file detected from {}: its {} file hash is {}, expected {}", origin,
                              algorithm, actual, file_hash);
        }
        fs::rename(temp, target);   // atomic within the folder; replaces an outdated copy
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove(temp, ec);
        runtime_error("{}. {}", e.what(), by_hand);
    }
    return target;
}

}  // namespace

fs::path keras_home() {
    if (const char* env = std::getenv("KERAS_HOME"); env && *env) return expand_user(env);
    const char* home = std::getenv("HOME");
    if (home && *home && ::access(home, W_OK) == 0) return fs::path(home) / ".keras";
    return fs::path("/tmp") / ".keras";
}

fs::path get_file(const std::string& fname, const std::string& origin, const GetFileOptions& options) {
    if (origin.empty()) value_error("Please specify the \"origin\" argument (URL of the file to download).");
    const std::string algorithm = resolve_algorithm(options.hash_algorithm, options.file_hash);
    std::string name = fname;
    if (name.empty()) {
        name = file_name_from_url(origin);
        if (name.empty())
            value_error("Can't parse the file name from the origin provided: '{}'.Please specify the `fname` argument.",
                        origin);
    } else if (name.find('/') != std::string::npos) {
        value_error("Paths are no longer accepted as the `fname` argument. To specify the file's parent directory, use "
                    "the `cache_dir` argument. Received: fname={}",
                    name);
    }

    fs::path base = options.cache_dir.empty() ? keras_home() : expand_user(options.cache_dir);
    if (!writable_dir(base)) base = fs::path("/tmp") / ".keras";
    const fs::path datadir = base / options.cache_subdir;
    std::error_code ec;
    fs::create_directories(datadir, ec);
    if (!fs::is_directory(datadir)) runtime_error("get_file: cannot create the cache folder {}: {}", datadir.string(), ec.message());
    const fs::path target = datadir / name;
    remove_stale_downloads(target);

    if (!options.force_download && fs::exists(target)) {
        if (options.file_hash.empty() || hash_file(target, algorithm) == lowercase(options.file_hash)) return target;
        std::cout << "A local file was found, but it seems to be incomplete or outdated because the " << algorithm
                  << " file hash does not match the original value of " << options.file_hash
                  << " so we will re-download the data." << std::endl;
    }
    return download(origin, target, options.file_hash, algorithm);
}

}  // namespace keras::utils
