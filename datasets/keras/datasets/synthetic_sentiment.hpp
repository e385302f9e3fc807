// A generated stand-in for the IMDb reviews: sequences of word ids shaped like Keras's imdb data
// (start char 1, oov 2, ids from 3), labelled positive / negative by sentiment words hidden among
// neutral ones. For machines with no real data, and for tests that must train fast.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::datasets::synthetic_sentiment {

// The generated corpus's size and seed.
struct KERAS_API Options {
    int64_t num_train = 20000;
    int64_t num_test = 5000;
    int64_t num_words = 6000;      // ids are < num_words
    int64_t min_length = 40;
    int64_t max_length = 200;
    int64_t sentiment_words = 40;  // per class
    uint64_t seed = 113;
};

// One split: ragged id sequences and their labels.
struct KERAS_API Split {
    std::vector<std::vector<int32_t>> x;   // ragged id sequences
    Tensor y;                              // (n,) float32 labels 0 / 1
};

// ((x_train, y_train), (x_test, y_test)), deterministic for a given seed.
KERAS_API std::pair<Split, Split> load_data(const Options& options = {});

}  // namespace keras::datasets::synthetic_sentiment
