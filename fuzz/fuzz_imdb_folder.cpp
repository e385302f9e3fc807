// The aclImdb folder: the input is a folder written as text, one file per section,
//   === train/pos/0_9.txt\n<content>\n=== train/neg/1_2.txt\n<content>...
// (a section named imdb_word_index.json is the folder's own word index; a fixed one sits beside the
// folder). Paths are limited to [A-Za-z0-9_.-/] without "..", so nothing is written outside the folder.
#include <keras/datasets/imdb.hpp>

#include <algorithm>

#include "word_index_default.hpp"

namespace {

namespace fs = std::filesystem;

bool safe_relative_path(std::string_view p) {
    if (p.empty() || p.size() > 100 || p.front() == '/' || p.find("..") != std::string_view::npos) return false;
    return std::all_of(p.begin(), p.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-' || c == '/';
    });
}

void write_folder(const fs::path& root, std::string_view text) {
    constexpr std::string_view kMark = "=== ";
    size_t pos = text.starts_with(kMark) ? 0 : text.find(std::string("\n") + std::string(kMark));
    while (pos != std::string_view::npos) {
        if (text[pos] == '\n') ++pos;
        const size_t name_end = text.find('\n', pos);
        const std::string_view name = text.substr(pos + kMark.size(), name_end == std::string_view::npos
                                                                          ? std::string_view::npos
                                                                          : name_end - pos - kMark.size());
        const size_t body = name_end == std::string_view::npos ? text.size() : name_end + 1;
        const size_t next = text.find(std::string("\n") + std::string(kMark), body);
        if (safe_relative_path(name)) {
            std::error_code ec;   // a name that collides with a folder is skipped
            fs::create_directories((root / name).parent_path(), ec);
            const std::string_view content = text.substr(body, next == std::string_view::npos ? std::string_view::npos
                                                                                                : next - body);
            std::ofstream(root / name, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
        }
        pos = next;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::write_default_word_index();
    const fs::path root = fuzz::work_dir() / "aclImdb";
    fs::remove_all(root);
    fs::create_directories(root);
    write_folder(root, fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { keras::datasets::imdb::load_data({.path = root.string()}); });
    return 0;
}
