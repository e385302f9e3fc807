// keras::text::generate and what a word-level language model needs from the library: greedy choice,
// temperature sampling (against a naive p^(1/T) sampler and, over many draws, the expected
// frequencies), generation through real models whose next word is known by construction, the errors;
// and sparse categorical crossentropy / accuracy over 3-D predictions (N, T, V) with 2-D targets
// (N, T), through the loss itself and through Model::evaluate on an Input of shape (None,).
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/losses.hpp"
#include "keras/model.hpp"
#include "keras/random.hpp"
#include "keras/text/generation.hpp"
#include "test_helpers.hpp"

using keras::DType;
using keras::Shape;
using keras::Tensor;
using test_helpers::message_of;
namespace kl = keras::layers;
namespace text = keras::text;

namespace {

const std::vector<std::string> kVocabulary = {"a", "b", "c", "d", "e"};
constexpr int64_t V = 5;

// Embedding(V, V) = identity, then Dense(V, softmax) with the given kernel and bias: the next word's
// probabilities depend only on the last word, softmax(kernel[last] + bias).
std::shared_ptr<keras::Sequential> last_word_model(const std::vector<float>& kernel, const std::vector<float>& bias) {
    auto model = std::make_shared<keras::Sequential>();
    model->add(kl::Input({-1}, {.dtype = DType::int32}));
    model->add(kl::Embedding(V, V));
    model->add(kl::Dense(V, "softmax"));
    std::vector<float> identity(V * V, 0.0f);
    for (int64_t i = 0; i < V; ++i) identity[i * V + i] = 1.0f;
    model->set_weights({Tensor(identity, {V, V}), Tensor(kernel, {V, V}), Tensor(bias, {V})});
    return model;
}

// The naive sampler: weights p^(1/T), then the first index whose running sum exceeds u * total.
int64_t naive_sample(const std::vector<double>& p, double T, double u) {
    std::vector<double> w;
    double total = 0.0;
    for (double v : p) total += w.emplace_back(std::pow(v, 1.0 / T));
    double acc = 0.0;
    for (size_t i = 0; i < w.size(); ++i)
        if (u * total < (acc += w[i])) return static_cast<int64_t>(i);
    return static_cast<int64_t>(w.size()) - 1;
}

}  // namespace

TEST_CASE("choose_word: greedy takes the most probable word (lowest id on ties); sampling follows p^(1/T)") {
    const std::vector<float> p = {0.1f, 0.3f, 0.05f, 0.3f, 0.25f};
    CHECK(text::choose_word(p.data(), V, 0.0, 0.99) == 1);
    const std::vector<double> pd(p.begin(), p.end());
    for (double T : {0.3, 0.5, 1.0, 2.0})
        for (int k = 0; k < 200; ++k) {
            const double u = (k + 0.5) / 200.0;
            INFO("T=" << T << " u=" << u);
            CHECK(text::choose_word(p.data(), V, T, u) == naive_sample(pd, T, u));
        }
    // Words of probability 0 are never sampled, even with u at the top of the range.
    const std::vector<float> q = {0.0f, 0.5f, 0.5f, 0.0f, 0.0f};
    CHECK(text::choose_word(q.data(), V, 1.0, 0.9999999) == 2);
    CHECK(text::choose_word(q.data(), V, 1.0, 0.0) == 1);
}

TEST_CASE("generate, greedy: a model whose next word is a known function of the last word follows it") {
    // next(a)=c, next(b)=a, next(c)=e, next(d)=b, next(e)=d: logits 8 on the successor, 0 elsewhere.
    const std::vector<int> next = {2, 0, 4, 1, 3};
    std::vector<float> kernel(V * V, 0.0f);
    for (int64_t i = 0; i < V; ++i) kernel[i * V + next[i]] = 8.0f;
    auto model = last_word_model(kernel, std::vector<float>(V, 0.0f));
    std::vector<std::string> expected;
    int w = 3;   // the seed's last word, "d"
    for (int k = 0; k < 12; ++k) expected.push_back(kVocabulary[w = next[w]]);
    CHECK(text::generate(*model, kVocabulary, "a  b\td", {.n_words = 12}) == expected);
    CHECK(text::generate(*model, kVocabulary, "d", {.n_words = 12, .max_context = 1}) == expected);
    CHECK(text::generate(*model, kVocabulary, "d", {.n_words = 0}).empty());
    CHECK(text::join_words({"three", ",", "four"}) == "three , four");
}

TEST_CASE("generate with a temperature: seeded, reproducible, and drawing the expected frequencies") {
    const std::vector<double> p = {0.4, 0.3, 0.15, 0.1, 0.05};
    std::vector<float> bias;
    for (double v : p) bias.push_back(static_cast<float>(std::log(v)));
    auto model = last_word_model(std::vector<float>(V * V, 0.0f), bias);   // the same p after every word
    constexpr int draws = 2000;
    for (double T : {1.0, 0.5}) {
        INFO("temperature " << T);
        const auto words = text::generate(*model, kVocabulary, "a", {.n_words = draws, .temperature = T, .seed = 5, .max_context = 1});
        std::map<std::string, int> counts;
        for (const auto& word : words) ++counts[word];
        double total = 0.0;
        for (double v : p) total += std::pow(v, 1.0 / T);
        for (int64_t i = 0; i < V; ++i) {
            const double expected = std::pow(p[i], 1.0 / T) / total;
            const double sd = std::sqrt(expected * (1.0 - expected) / draws);
            INFO("word " << kVocabulary[i] << " expected " << expected);
            CHECK(std::abs(counts[kVocabulary[i]] / static_cast<double>(draws) - expected) < 4.5 * sd);
        }
        const auto again = text::generate(*model, kVocabulary, "a", {.n_words = 50, .temperature = T, .seed = 5, .max_context = 1});
        CHECK(std::vector<std::string>(words.begin(), words.begin() + 50) == again);
        const auto other = text::generate(*model, kVocabulary, "a", {.n_words = 50, .temperature = T, .seed = 6, .max_context = 1});
        CHECK(other != again);
    }
}

TEST_CASE("generate: invalid seeds, options and models give clear errors") {
    auto model = last_word_model(std::vector<float>(V * V, 0.0f), std::vector<float>(V, 0.0f));
    using E = keras::ValueError;
    CHECK(message_of<E>([&] { text::generate(*model, kVocabulary, "a zebra"); }) ==
          "generate: the seed word \"zebra\" is not in the vocabulary (5 words)");
    CHECK(message_of<E>([&] { text::generate(*model, kVocabulary, "  "); }) ==
          "generate: seed_text must contain at least one word, received \"  \"");
    CHECK(message_of<E>([&] { text::generate(*model, kVocabulary, "a", {.n_words = -1}); }) ==
          "generate: n_words must be >= 0, received -1");
    CHECK(message_of<E>([&] { text::generate(*model, kVocabulary, "a", {.temperature = -0.5}); }) ==
          "generate: temperature must be a finite number >= 0 (0 = greedy), received -0.5");
    CHECK(message_of<E>([&] { text::generate(*model, kVocabulary, "a", {.max_context = -2}); }) ==
          "generate: max_context must be >= 0 (0 = all words), received -2");
    const std::vector<std::string> longer = {"a", "b", "c", "d", "e", "f"};
    CHECK(message_of<E>([&] { text::generate(*model, longer, "a", {.n_words = 1}); }) ==
          "generate: the model's output has shape (1, 1, 5), expected probabilities over the 6 words of the "
          "vocabulary in its last axis");
}

TEST_CASE("sparse categorical crossentropy and accuracy over (N, T, V) predictions with (N, T) targets") {
    constexpr int64_t N = 3, T = 4;
    keras::utils::set_random_seed(9);
    keras::Sequential model;
    model.add(kl::Input({-1}, {.dtype = DType::int32}));   // any number of steps
    model.add(kl::Embedding(V, 4));
    model.add(kl::LSTM(6, {.return_sequences = true}));
    model.add(kl::Dense(V, "softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
    const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1};
    const std::vector<float> targets = {1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 0};
    const Tensor x(ids, {N, T}), y(targets, {N, T});
    const Tensor probs = model.predict(x, {.verbose = 0});
    REQUIRE(probs.shape() == Shape{N, T, V});

    // Naive: Keras normalises the probabilities of each row, then -log of the target's.
    const float* p = probs.data<float>();
    double loss = 0.0, hits = 0.0;
    std::vector<double> grad(N * T * V);
    for (int64_t r = 0; r < N * T; ++r) {
        double sum = 0.0;
        int64_t best = 0;
        for (int64_t j = 0; j < V; ++j) {
            sum += p[r * V + j];
            if (p[r * V + j] > p[r * V + best]) best = j;
        }
        const auto t = static_cast<int64_t>(targets[r]);
        loss -= std::log(p[r * V + t] / sum) / (N * T);
        hits += best == t;
        for (int64_t j = 0; j < V; ++j) grad[r * V + j] = (1.0 / sum - (j == t ? 1.0 / p[r * V + t] : 0.0)) / (N * T);
    }
    const auto result = model.evaluate(x, y, {.verbose = 0});
    CHECK(result.loss() == doctest::Approx(loss).epsilon(1e-5));
    CHECK(result["accuracy"] == doctest::Approx(hits / (N * T)).epsilon(1e-6));

    Tensor g;
    const double direct = keras::losses::SparseCategoricalCrossentropy().compute(y, probs, &g);
    CHECK(direct == doctest::Approx(loss).epsilon(1e-6));
    REQUIRE(g.shape() == probs.shape());
    const auto gv = test_helpers::values_of(g);
    for (size_t i = 0; i < grad.size(); ++i) CHECK(gv[i] == doctest::Approx(grad[i]).epsilon(1e-5));

    // The targets must match the predictions' steps.
    CHECK(message_of<keras::ValueError>([&] { model.evaluate(x, Tensor::zeros({N, T + 1}), {.verbose = 0}); }) ==
          "Arguments `target` and `output` must have the same shape up until the last dimension: target.shape=(3, 5), "
          "output.shape=(3, 4, 5)");
}
