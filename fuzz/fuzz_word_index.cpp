// keras::datasets::imdb::get_word_index on an arbitrary imdb_word_index.json, then decode_review with
// ids around the index's ends (start / oov / padding ids, the largest id, negative ones).
#include <keras/datasets/imdb.hpp>

#include <limits>
#include <vector>

#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_file("imdb_word_index.json", fuzz::as_text(data, size));
    namespace imdb = keras::datasets::imdb;
    fuzz::keras_errors_only([&] {
        const imdb::WordIndex index = imdb::get_word_index(path);
        std::vector<int32_t> ids = {0, 1, 2, 3, 4, -1, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()};
        for (const auto& [word, id] : index) ids.push_back(static_cast<int32_t>(id + 3));
        imdb::decode_review(ids, index);
        imdb::decode_review(ids, index, -5);
    });
    return 0;
}
