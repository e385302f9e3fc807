// aclImdb -> raw word ranks, reproducing how Keras's imdb.npz was built (see
// ../shared/data/imdb/README.txt): ASCII-only lowercasing (the Python 2 str.lower the npz was made
// with leaves non-ASCII letters alone), Keras's text_to_word_sequence with its default filters and
// split=" ", and words missing from the word index dropped.
#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "imdb/raw_reviews.hpp"
#include "io/tar_archive.hpp"
#include "keras/errors.hpp"
#include "keras/preprocessing/text.hpp"

namespace keras::datasets::imdb {

namespace fs = std::filesystem;

namespace {

// The four groups, in the npz's raw order within each split: positive first.
struct Group {
    const char* split;
    const char* label;
    int64_t y;
};
constexpr std::array<Group, 4> kGroups = {{{"train", "pos", 1}, {"train", "neg", 0}, {"test", "pos", 1}, {"test", "neg", 0}}};

// Reviews of one group, keyed by file name: std::map keeps them sorted as strings, as the npz is.
using GroupReviews = std::map<std::string, std::vector<int64_t>>;

std::vector<int64_t> tokenize_file(std::string_view text, const std::string& where, const WordIndex& word_index) {
    try {
        return tokenize_review(text, word_index);
    } catch (const ValueError& e) {
        value_error("{}: review text is not valid UTF-8 ({})", where, e.what());
    }
}

// train/pos/123_9.txt -> index of its group in kGroups, or -1 for anything else in the archive.
int group_of(const fs::path& path) {
    if (path.extension() != ".txt") return -1;
    const fs::path dir = path.parent_path();
    for (size_t g = 0; g < kGroups.size(); ++g)
        if (dir.filename() == kGroups[g].label && dir.parent_path().filename() == kGroups[g].split) return static_cast<int>(g);
    return -1;
}

std::pair<RawSplit, RawSplit> assemble(std::array<GroupReviews, 4>& groups, const fs::path& source) {
    std::array<RawSplit, 2> splits;
    for (size_t g = 0; g < kGroups.size(); ++g) {
        if (groups[g].empty())
            runtime_error("{}: no reviews in {}/{} (an aclImdb folder needs train/pos, train/neg, test/pos and "
                          "test/neg with <id>_<rating>.txt files)", source.string(), kGroups[g].split, kGroups[g].label);
        RawSplit& split = splits[g / 2];
        for (auto& [name, ids] : groups[g]) {
            split.x.push_back(std::move(ids));
            split.y.push_back(kGroups[g].y);
        }
    }
    return {std::move(splits[0]), std::move(splits[1])};
}

std::string read_text_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) runtime_error("Cannot read review file {}", path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
}

std::pair<RawSplit, RawSplit> read_folder(const fs::path& folder, const WordIndex& word_index) {
    // Accept the aclImdb folder itself or the folder that holds it.
    const fs::path root = fs::is_directory(folder / "aclImdb") ? folder / "aclImdb" : folder;
    std::array<GroupReviews, 4> groups;
    for (size_t g = 0; g < kGroups.size(); ++g) {
        const fs::path dir = root / kGroups[g].split / kGroups[g].label;
        if (!fs::is_directory(dir))
            runtime_error("{}: missing folder {}/{} (an aclImdb folder needs train/pos, train/neg, test/pos and "
                          "test/neg)", root.string(), kGroups[g].split, kGroups[g].label);
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (!entry.is_regular_file() || entry.path().extension() != ".txt") continue;
            groups[g][entry.path().filename().string()] =
                tokenize_file(read_text_file(entry.path()), entry.path().string(), word_index);
        }
    }
    return assemble(groups, root);
}

// The longest aclImdb review is 13.7 KB: a member far beyond that is not a review (or is a bomb).
constexpr uint64_t kMaxReviewBytes = uint64_t{1} << 20;

std::pair<RawSplit, RawSplit> read_tarball(const fs::path& tarball, const WordIndex& word_index) {
    io::TarArchive archive(tarball);
    std::array<GroupReviews, 4> groups;
    while (archive.next()) {
        const std::string name = archive.path();
        const int g = name.empty() || !archive.is_file() ? -1 : group_of(name);
        if (g < 0) continue;   // README, imdb.vocab, unsup/ and folders are not reviews
        const std::string text = archive.read(kMaxReviewBytes);
        groups[static_cast<size_t>(g)][fs::path(name).filename().string()] =
            tokenize_file(text, tarball.string() + ":" + name, word_index);
    }
    return assemble(groups, tarball);
}

}  // namespace

std::vector<std::string> review_words(std::string_view text) {
    std::string lowered(text);
    for (char& c : lowered)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return preprocessing::text::text_to_word_sequence(lowered, {.lower = false});
}

std::vector<int64_t> tokenize_review(std::string_view text, const WordIndex& word_index) {
    std::vector<int64_t> ids;
    for (const std::string& word : review_words(text)) {
        auto it = word_index.find(word);
        if (it != word_index.end()) ids.push_back(it->second);
    }
    return ids;
}

std::pair<RawSplit, RawSplit> read_aclimdb(const fs::path& path, const WordIndex& word_index) {
    return fs::is_directory(path) ? read_folder(path, word_index) : read_tarball(path, word_index);
}

}  // namespace keras::datasets::imdb
