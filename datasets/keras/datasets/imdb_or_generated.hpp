// The IMDb reviews when they can be had, else the generated stand-in: what the IMDb examples load.
//
//   auto [train, test] = keras::datasets::imdb::load_data_or_generated({.num_words = 20000, .limit = 500});
//
// `path` set: imdb::load_data reads it, and an error there is the caller's (a file the user named
// must never be silently replaced by other data). `path` empty: Keras's cache, then a download; when
// neither works (an offline machine with nothing cached) it prints one line saying so and returns
// synthetic_sentiment's corpus of the same shape instead.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <string>
#include <utility>

#include "keras/datasets/imdb.hpp"

namespace keras::datasets::imdb {

// load_data_or_generated's keyword arguments.
struct KERAS_API LoadOrGenerateOptions {
    std::string path;          // imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz; empty: cache, then download
    int64_t num_words = 20000; // vocabulary size (ids are < num_words)
    int64_t limit = 0;         // > 0: keep only the first `limit` training and test reviews (a quick run)
};

// ((x_train, y_train), (x_test, y_test)) from the real reviews or, failing them, the generated corpus.
KERAS_API std::pair<Split, Split> load_data_or_generated(const LoadOrGenerateOptions& options = {});

// The first `limit` reviews of a split and their labels; the whole split when limit <= 0 or larger.
KERAS_API void keep_first(Split& split, int64_t limit);

}  // namespace keras::datasets::imdb
