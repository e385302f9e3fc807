// The aclImdb tarball: keras::datasets::imdb::load_data on an arbitrary aclImdb_v1.tar.gz (any tar,
// compressed or not: libarchive detects the format), a fixed word index beside it; and
// utils::text_dataset_from_directory on the same archive (its member paths: classes, folders, names).
#include <keras/datasets/imdb.hpp>
#include <keras/utils/text_dataset.hpp>

#include "word_index_default.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::write_default_word_index();
    const std::string path = fuzz::write_file("aclImdb_v1.tar.gz", fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { keras::datasets::imdb::load_data({.path = path}); });
    fuzz::keras_errors_only([&] {
        keras::utils::text_dataset_from_directory(
            path, {.max_length = 100, .seed = 1, .validation_split = 0.5, .subset = "validation",
                   .archive_directory = "aclImdb/train", .verbose = false});
    });
    fuzz::keras_errors_only([&] {
        keras::utils::text_dataset_from_directory(path, {.label_mode = "none", .shuffle = false, .verbose = false});
    });
    return 0;
}
