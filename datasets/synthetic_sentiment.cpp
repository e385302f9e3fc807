#include "keras/datasets/synthetic_sentiment.hpp"

#include <cmath>
#include <random>

#include "keras/errors.hpp"

namespace keras::datasets::synthetic_sentiment {

namespace {
// Its own generator, so the data does not depend on (or disturb) keras::utils::set_random_seed.
struct Generator {
    std::mt19937_64 engine;
    double uniform() { return static_cast<double>(engine() >> 11) * 0x1.0p-53; }
    int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }
};

Split make_split(Generator& g, int64_t n, const Options& o) {
    // Ids 3 .. 3+2*sentiment_words-1 carry sentiment (first half positive); the rest are neutral,
    // drawn with a Zipf-like skew so frequent "words" dominate, as in real text.
    const int64_t first_neutral = 3 + 2 * o.sentiment_words;
    const int64_t neutral_count = o.num_words - first_neutral;
    Split split;
    split.y = Tensor({n}, DType::float32);
    float* y = split.y.data<float>();
    for (int64_t i = 0; i < n; ++i) {
        const bool positive = g.uniform() < 0.5;
        y[i] = positive ? 1.0f : 0.0f;
        const int64_t length = o.min_length + g.below(o.max_length - o.min_length + 1);
        std::vector<int32_t> review = {1};
        for (int64_t t = 1; t < length; ++t) {
            const double u = g.uniform();
            int64_t id;
            if (u < 0.10) {   // a sentiment word, of the review's class 90% of the time
                const bool pos_word = (g.uniform() < 0.90) == positive;
                id = 3 + g.below(o.sentiment_words) + (pos_word ? 0 : o.sentiment_words);
            } else {
                id = first_neutral + static_cast<int64_t>(std::pow(g.uniform(), 2.0) * static_cast<double>(neutral_count));
            }
            review.push_back(static_cast<int32_t>(std::min(id, o.num_words - 1)));
        }
        split.x.push_back(std::move(review));
    }
    return split;
}
}  // namespace

std::pair<Split, Split> load_data(const Options& options) {
    if (options.num_words < 3 + 2 * options.sentiment_words + 10)
        value_error("synthetic_sentiment: num_words={} is too small for {} sentiment words per class", options.num_words,
                    options.sentiment_words);
    if (options.min_length < 2 || options.max_length < options.min_length)
        value_error("synthetic_sentiment: need 2 <= min_length <= max_length, got {} and {}", options.min_length,
                    options.max_length);
    Generator g{std::mt19937_64(options.seed)};
    Split train = make_split(g, options.num_train, options);
    Split test = make_split(g, options.num_test, options);
    return {std::move(train), std::move(test)};
}

}  // namespace keras::datasets::synthetic_sentiment
