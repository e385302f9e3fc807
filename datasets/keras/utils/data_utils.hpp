// keras.utils.get_file: download a file once into Keras's cache (~/.keras/datasets) and reuse it.
#pragma once

#include "keras/export.hpp"

#include <filesystem>
#include <string>

namespace keras::utils {

// $KERAS_HOME when set, else ~/.keras; /tmp/.keras when the home folder is not writable (as Keras).
KERAS_API std::filesystem::path keras_home();

// get_file's keyword arguments.
struct KERAS_API GetFileOptions {
    std::string file_hash = "";          // expected md5 or sha256 hex digest; empty: not checked
    std::string cache_subdir = "datasets";
    std::string hash_algorithm = "auto";   // "auto" (sha256 for a 64-digit hash, else md5), "sha256", "md5"
    std::string cache_dir = "";          // empty: keras_home(); /tmp/.keras when not writable
    bool force_download = false;
};

// The path of `fname` in `<cache_dir>/<cache_subdir>`, downloading it from `origin` first unless it is
// already there (and, when file_hash is given, matches it). The download shows a progress bar and
// goes to a temporary file that is hash-checked and then renamed: a failed download (HTTP error,
// cut connection, wrong hash, no network) leaves nothing behind and throws a keras::RuntimeError
// naming the URL, the cause and where the file can be put by hand. An empty fname takes the last
// component of the URL's path.
KERAS_API std::filesystem::path get_file(const std::string& fname, const std::string& origin, const GetFileOptions& options = {});

// Hex digest of a file: algorithm "sha256" or "md5" (Keras's hash_file).
KERAS_API std::string hash_file(const std::filesystem::path& path, const std::string& algorithm = "sha256");

}  // namespace keras::utils
