// A small word index written beside the aclImdb inputs: without one, imdb::load_data would look for
// Keras's in the cache and then download it.
#pragma once

#include "harness.hpp"

namespace fuzz {

inline void write_default_word_index() {
    write_file("imdb_word_index.json",
               R"({"the": 1, "and": 2, "a": 3, "of": 4, "to": 5, "is": 6, "movie": 7, "br": 8, "great": 9, "bad": 10})");
}

}  // namespace fuzz
