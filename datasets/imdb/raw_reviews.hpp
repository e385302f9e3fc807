// The IMDb reviews before load_data's steps: raw word ranks (1 = "the", no start char, no offset)
// in the raw order (positive files, then negative, each sorted by file name). Internal header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "keras/datasets/imdb.hpp"

namespace keras::datasets::imdb {

struct RawSplit {
    std::vector<std::vector<int64_t>> x;
    std::vector<int64_t> y;
};

// Keras's imdb.npz: x_train.npy, y_train.npy, x_test.npy, y_test.npy.
std::pair<RawSplit, RawSplit> read_npz(const std::filesystem::path& path);

// The Stanford aclImdb folder or its .tar.gz, tokenised like the npz was built: ASCII letters
// lowercased, Keras's text_to_word_sequence, words missing from the index dropped.
std::pair<RawSplit, RawSplit> read_aclimdb(const std::filesystem::path& path, const WordIndex& word_index);

// load_data's steps after reading: shuffle, start char and offset, maxlen filter, num_words / skip_top.
std::pair<Split, Split> apply_load_data_steps(RawSplit train, RawSplit test, const LoadDataOptions& options);

// A review's words as the word index spells them: ASCII letters lowercased, then Keras's
// text_to_word_sequence (its punctuation filters become spaces; "it's" keeps its apostrophe).
std::vector<std::string> review_words(std::string_view text);

// The aclImdb tokenisation of one review (exposed for tests).
std::vector<int64_t> tokenize_review(std::string_view text, const WordIndex& word_index);

}  // namespace keras::datasets::imdb
