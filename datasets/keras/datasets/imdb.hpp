// keras.datasets.imdb: the IMDb movie-review sentiment data set (25,000 train / 25,000 test reviews),
// as sequences of word ids identical to what Keras's imdb.load_data returns.
//
//   auto [train, test] = keras::datasets::imdb::load_data({.num_words = 6000});
//   auto& [x_train, y_train] = train;
//
// Where the data comes from, in order:
//   1. `path`, if it names an existing file or folder: a Keras imdb.npz, the Stanford aclImdb folder,
//      or aclImdb_v1.tar.gz (reviews are tokenised with the word index, giving the npz's arrays);
//   2. Keras's cache, `$KERAS_HOME/datasets/<path>` (KERAS_HOME defaults to ~/.keras);
//   3. a download of Keras's imdb.npz into that cache (keras::utils::get_file).
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::datasets::imdb {

// The address Keras downloads imdb.npz and imdb_word_index.json from.
inline constexpr const char* kOriginFolder = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/";
// The md5 Keras's get_word_index() checks for imdb_word_index.json.
inline constexpr const char* kWordIndexMd5 = "bfafd718b763782e994055a2d397834f";

// load_data's keyword arguments, in Keras's order.
struct KERAS_API LoadDataOptions {
    std::string path = "imdb.npz";
    std::optional<int64_t> num_words{};   // unset: every word (Keras's quirk: the single highest id becomes oov_char)
    int64_t skip_top = 0;
    std::optional<int64_t> maxlen{};      // keeps only sequences SHORTER than maxlen (it filters, it does not truncate)
    uint32_t seed = 113;
    std::optional<int64_t> start_char = 1;
    std::optional<int64_t> oov_char = 2;  // unset: out-of-range words are dropped
    int64_t index_from = 3;
};

// Same element types as synthetic_sentiment::Split, so the two loaders are interchangeable.
struct KERAS_API Split {
    std::vector<std::vector<int32_t>> x;   // ragged id sequences
    Tensor y;                              // (n,) float32 labels, 1 = positive
};

// ((x_train, y_train), (x_test, y_test)).
KERAS_API std::pair<Split, Split> load_data(const LoadDataOptions& options = {});

using WordIndex = std::unordered_map<std::string, int64_t>;   // word -> frequency rank (1 = most frequent)

// Keras's get_word_index: `path` if it is an existing file; else, for a bare file name, that file
// beside the local data load_data last read (in its folder or the one above, as the aclImdb reader
// looks); else the cache; else a download (checked against kWordIndexMd5).
KERAS_API WordIndex get_word_index(const std::string& path = "imdb_word_index.json");

// How encode_review() numbers the words: load_data's options of the same names.
struct KERAS_API EncodeReviewOptions {
    std::optional<int64_t> num_words{};   // ids >= num_words become oov_char (unset: no limit)
    int64_t skip_top = 0;                 // ids < skip_top become oov_char
    std::optional<int64_t> start_char = 1;
    std::optional<int64_t> oov_char = 2;  // unset: words out of range or unknown are dropped
    int64_t index_from = 3;
    // A word missing from the index: dropped, as the data set's reviews had them dropped (what
    // load_data gives for aclImdb), or, when true, oov_char.
    bool unknown_as_oov = false;
};

// A new review from raw text, numbered as load_data numbers the reviews: start_char, then each
// word's rank + index_from, with num_words / skip_top as load_data applies them. The text is read as
// the data set was built: ASCII letters lowercased (other letters kept as they are), then the
// characters !"#$%&()*+,-./:;<=>?@[\]^_`{|}~ tab and newline become spaces ("<br />" leaves "br"),
// split on spaces; apostrophes stay ("it's"). A word missing from the index is dropped (or oov_char).
KERAS_API std::vector<int32_t> encode_review(const std::string& text, const WordIndex& word_index,
                                             const EncodeReviewOptions& options = {});
// The same with get_word_index()'s index (read again on each call: keep the index for many reviews).
KERAS_API std::vector<int32_t> encode_review(const std::string& text, const EncodeReviewOptions& options = {});

// Back to words, Keras's idiom: id -> word_index^-1[id - index_from], "?" when there is none
// (start, oov and padding ids). Words are joined with single spaces.
KERAS_API std::string decode_review(const std::vector<int32_t>& ids, const WordIndex& word_index, int64_t index_from = 3);

}  // namespace keras::datasets::imdb
