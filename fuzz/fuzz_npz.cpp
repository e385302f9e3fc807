// npy / npz: keras::datasets::imdb::load_data on an arbitrary imdb.npz (zip members x_train, y_train,
// x_test, y_test: .npy arrays of object or integer dtype). Options with every filter the loader has
// (num_words, skip_top, maxlen) exercise the id arithmetic too.
#include <keras/datasets/imdb.hpp>

#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_file("imdb.npz", fuzz::as_text(data, size));
    namespace imdb = keras::datasets::imdb;
    fuzz::keras_errors_only([&] { imdb::load_data({.path = path}); });
    fuzz::keras_errors_only([&] { imdb::load_data({.path = path, .num_words = 5, .skip_top = 1, .maxlen = 20}); });
    return 0;
}
