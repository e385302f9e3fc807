// The aclImdb tarball: keras::datasets::imdb::load_data on an arbitrary aclImdb_v1.tar.gz (any tar,
// compressed or not: libarchive detects the format), a fixed word index beside it.
#include <keras/datasets/imdb.hpp>

#include "word_index_default.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::write_default_word_index();
    const std::string path = fuzz::write_file("aclImdb_v1.tar.gz", fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { keras::datasets::imdb::load_data({.path = path}); });
    return 0;
}
