// keras.datasets.imdb.load_data: find the data, then Keras's steps in Keras's order
// (keras/src/datasets/imdb.py): shuffle, start char + offset, maxlen filter, num_words / skip_top.
#include "keras/datasets/imdb.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "imdb/raw_reviews.hpp"
#include "keras/errors.hpp"
#include "keras/utils/data_utils.hpp"
#include "numpy_random_state.hpp"
#include "saving/keras_errors_only.hpp"

namespace keras::datasets::imdb {

namespace fs = std::filesystem;

namespace {

enum class SourceKind { npz, aclimdb };

// What an existing path holds, from its first bytes (names can lie; magic numbers rarely do).
SourceKind source_kind(const fs::path& path) {
    if (fs::is_directory(path)) return SourceKind::aclimdb;
    std::ifstream in(path, std::ios::binary);
    if (!in) runtime_error("Cannot read {}", path.string());
    std::string head(512, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.empty()) runtime_error("{} is empty (expected imdb.npz, aclImdb_v1.tar.gz or an aclImdb folder)", path.string());
    if (head.starts_with("PK")) return SourceKind::npz;
    const bool gzip = head.size() >= 2 && static_cast<uint8_t>(head[0]) == 0x1f && static_cast<uint8_t>(head[1]) == 0x8b;
    const bool tar = head.size() >= 262 && head.compare(257, 5, "ustar") == 0;
    if (gzip || tar) return SourceKind::aclimdb;
    runtime_error("{} is neither a zip file (imdb.npz) nor a tar archive (aclImdb_v1.tar.gz)", path.string());
}

// The folders load_data last read a local file or folder from (the data's folder and the one above
// it): get_word_index() looks there before the cache, so local data needs no download.
struct LocalFolders {
    std::mutex mutex;
    std::vector<fs::path> folders;
};
LocalFolders& local_folders() {
    static LocalFolders folders;
    return folders;
}

void remember_local_source(const fs::path& source) {
    fs::path full = fs::absolute(source).lexically_normal();
    if (!full.has_filename()) full = full.parent_path();   // "aclImdb/" -> "aclImdb"
    auto& local = local_folders();
    const std::lock_guard lock(local.mutex);
    local.folders = {fs::is_directory(full) ? full : full.parent_path(), full.parent_path()};
}

// `name` (a bare file name) in a folder load_data read local data from, if it is there.
std::optional<fs::path> beside_local_source(const std::string& name) {
    if (fs::path(name).has_parent_path() || fs::exists(name)) return std::nullopt;
    auto& local = local_folders();
    const std::lock_guard lock(local.mutex);
    for (const auto& dir : local.folders)
        if (fs::exists(dir / name)) return dir / name;
    return std::nullopt;
}

// For aclImdb input: imdb_word_index.json beside it (or, for a folder, inside it) if there is one,
// else Keras's (cache, then download).
WordIndex word_index_for(const fs::path& source) {
    fs::path full = fs::absolute(source).lexically_normal();
    if (!full.has_filename()) full = full.parent_path();   // "aclImdb/" -> "aclImdb"
    for (const fs::path& dir : {fs::is_directory(full) ? full : full.parent_path(), full.parent_path()})
        if (fs::exists(dir / "imdb_word_index.json")) return get_word_index((dir / "imdb_word_index.json").string());
    return get_word_index();
}

std::pair<RawSplit, RawSplit> read_raw(const fs::path& path) {
    return source_kind(path) == SourceKind::npz ? read_npz(path) : read_aclimdb(path, word_index_for(path));
}

// An existing file, else the cached copy of a bare file name, else Keras's download.
fs::path locate(const std::string& name, const std::string& origin_name, const std::string& file_hash) {
    const fs::path path(name);
    if (fs::exists(path)) return path;
    if (path.has_parent_path())
        runtime_error("{} does not exist (give imdb.npz, aclImdb_v1.tar.gz or an aclImdb folder)", name);
    return utils::get_file(name, std::string(kOriginFolder) + origin_name, {.file_hash = file_hash});
}

void shuffle_split(RawSplit& split, NumpyRandomState& rng) {
    std::vector<int64_t> order(split.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    rng.shuffle(order);
    RawSplit out;
    for (int64_t i : order) {
        out.x.push_back(std::move(split.x[static_cast<size_t>(i)]));
        out.y.push_back(split.y[static_cast<size_t>(i)]);
    }
    split = std::move(out);
}

// Keras's [start_char] + [w + index_from for w in x], or just the offset when start_char is None.
void add_start_and_offset(RawSplit& split, const LoadDataOptions& o) {
    for (auto& x : split.x) {
        if (o.start_char || o.index_from != 0)
            for (int64_t& w : x) w += o.index_from;
        if (o.start_char) x.insert(x.begin(), *o.start_char);
    }
}

// remove_long_seq: keeps the sequences strictly shorter than maxlen.
void remove_long(RawSplit& split, int64_t maxlen) {
    RawSplit out;
    for (size_t i = 0; i < split.x.size(); ++i) {
        if (static_cast<int64_t>(split.x[i].size()) >= maxlen) continue;
        out.x.push_back(std::move(split.x[i]));
        out.y.push_back(split.y[i]);
    }
    split = std::move(out);
}

void limit_words(RawSplit& split, const LoadDataOptions& o, int64_t num_words) {
    for (auto& x : split.x) {
        if (o.oov_char) {
            for (int64_t& w : x)
                if (w < o.skip_top || w >= num_words) w = *o.oov_char;
        } else {
            std::erase_if(x, [&](int64_t w) { return w < o.skip_top || w >= num_words; });
        }
    }
}

Split to_split(const RawSplit& raw) {
    Split out;
    out.x.reserve(raw.x.size());
    for (const auto& x : raw.x) {
        auto& row = out.x.emplace_back();
        row.reserve(x.size());
        for (int64_t w : x) {
            if (w < std::numeric_limits<int32_t>::min() || w > std::numeric_limits<int32_t>::max())
                value_error("imdb.load_data: word id {} does not fit in int32 (check start_char, oov_char, index_from)", w);
            row.push_back(static_cast<int32_t>(w));
        }
    }
    out.y = Tensor({static_cast<int64_t>(raw.y.size())}, DType::float32);
    std::transform(raw.y.begin(), raw.y.end(), out.y.data<float>(), [](int64_t y) { return static_cast<float>(y); });
    return out;
}

}  // namespace

std::pair<Split, Split> load_data(const LoadDataOptions& options) {
    auto [train, test] = saving::keras_errors_only(options.path, [&] {
        const fs::path source = locate(options.path, "imdb.npz", "");
        if (fs::exists(options.path)) remember_local_source(source);   // not for the cache or a download
        return read_raw(source);
    });
    return apply_load_data_steps(std::move(train), std::move(test), options);
}

std::pair<Split, Split> apply_load_data_steps(RawSplit train, RawSplit test, const LoadDataOptions& options) {
    NumpyRandomState rng(options.seed);   // one generator: train, then test
    shuffle_split(train, rng);
    shuffle_split(test, rng);
    add_start_and_offset(train, options);
    add_start_and_offset(test, options);

    if (options.maxlen && *options.maxlen != 0) {   // Keras: `if maxlen:`
        remove_long(train, *options.maxlen);
        remove_long(test, *options.maxlen);
        if (train.x.empty() || test.x.empty())
            value_error("After filtering for sequences shorter than maxlen={}, no sequence was kept. Increase maxlen.",
                        *options.maxlen);
    }

    int64_t num_words = options.num_words.value_or(0);
    if (num_words == 0) {   // Keras: `if not num_words: num_words = max(max(x) for x in xs)`
        for (const RawSplit* s : {&train, &test})
            for (const auto& x : s->x) {
                if (x.empty())   // Keras fails here too, with Python's bare message
                    value_error("imdb.load_data: max() arg is an empty sequence: a review has no words (start_char=None), "
                                "so num_words cannot be taken from the data; pass num_words");
                num_words = std::max(num_words, *std::max_element(x.begin(), x.end()));
            }
    }
    limit_words(train, options, num_words);
    limit_words(test, options, num_words);
    return {to_split(train), to_split(test)};
}

namespace {

WordIndex read_word_index(const std::string& path) {
    const fs::path file = locate(path, "imdb_word_index.json", kWordIndexMd5);
    std::ifstream in(file, std::ios::binary);
    if (!in) runtime_error("Cannot read the word index {}", file.string());
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        runtime_error("{}: not valid JSON ({})", file.string(), e.what());
    }
    if (!json.is_object()) runtime_error("{}: expected a JSON object of word -> index", file.string());
    WordIndex index;
    index.reserve(json.size());
    for (const auto& [word, id] : json.items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 1)
            runtime_error("{}: the index of '{}' is {}, expected a positive integer", file.string(), word, id.dump());
        index.emplace(word, id.get<int64_t>());
    }
    return index;
}

}  // namespace

WordIndex get_word_index(const std::string& path) {
    return saving::keras_errors_only(path, [&] {
        const auto local = beside_local_source(path);
        return read_word_index(local ? local->string() : path);
    });
}

std::vector<int32_t> encode_review(const std::string& text, const WordIndex& word_index,
                                   const EncodeReviewOptions& options) {
    // Keras's limit: `[w if skip_top <= w < num_words else oov_char for w in x]`, start_char included.
    auto keep = [&](int64_t w, std::vector<int32_t>& out) {
        const bool in_range = w >= options.skip_top && (!options.num_words || w < *options.num_words);
        if (in_range && (w < 0 || w > std::numeric_limits<int32_t>::max()))
            value_error("imdb.encode_review: word id {} does not fit in int32 (check start_char, index_from)", w);
        if (in_range) out.push_back(static_cast<int32_t>(w));
        else if (options.oov_char) out.push_back(static_cast<int32_t>(*options.oov_char));
    };
    std::vector<int32_t> ids;
    if (options.start_char) keep(*options.start_char, ids);
    for (const std::string& word : review_words(text)) {
        auto it = word_index.find(word);
        if (it != word_index.end()) keep(it->second + options.index_from, ids);
        else if (options.unknown_as_oov && options.oov_char) ids.push_back(static_cast<int32_t>(*options.oov_char));
    }
    return ids;
}

std::vector<int32_t> encode_review(const std::string& text, const EncodeReviewOptions& options) {
    return encode_review(text, get_word_index(), options);
}

std::string decode_review(const std::vector<int32_t>& ids, const WordIndex& word_index, int64_t index_from) {
    std::unordered_map<int64_t, const std::string*> reverse;
    reverse.reserve(word_index.size());
    for (const auto& [word, id] : word_index) reverse.emplace(id, &word);
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) out += ' ';
        auto it = reverse.find(ids[i] - index_from);
        out += it == reverse.end() ? std::string("?") : *it->second;
    }
    return out;
}

}  // namespace keras::datasets::imdb
