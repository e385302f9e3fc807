#include "keras/datasets/imdb_or_generated.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "keras/datasets/synthetic_sentiment.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::datasets::imdb {

namespace {

std::pair<Split, Split> real_or_generated(const LoadOrGenerateOptions& options) {
    if (!options.path.empty()) return load_data({.path = options.path, .num_words = options.num_words});
    try {
        return load_data({.num_words = options.num_words});
    } catch (const RuntimeError& e) {
        // One line: the reason may span several (a download error and the cache path).
        std::string why = e.what();
        std::replace(why.begin(), why.end(), '\n', ' ');
        const synthetic_sentiment::Options generated{.num_words = options.num_words};
        fmt::print("No IMDb data reachable ({}); training on kerascpp's generated corpus instead "
                   "({} train / {} test reviews, {} words).\n", why, generated.num_train, generated.num_test,
                   generated.num_words);
    }
    auto [train, test] = synthetic_sentiment::load_data({.num_words = options.num_words});
    return {{std::move(train.x), std::move(train.y)}, {std::move(test.x), std::move(test.y)}};
}

}  // namespace

void keep_first(Split& split, int64_t limit) {
    if (limit <= 0 || static_cast<size_t>(limit) >= split.x.size()) return;
    split.x.resize(static_cast<size_t>(limit));
    split.y = ops::slice(split.y, {0}, {limit});
}

std::pair<Split, Split> load_data_or_generated(const LoadOrGenerateOptions& options) {
    auto data = real_or_generated(options);
    keep_first(data.first, options.limit);
    keep_first(data.second, options.limit);
    return data;
}

}  // namespace keras::datasets::imdb
