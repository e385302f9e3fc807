// End-to-end training: the models must actually learn, and one seed must reproduce a run exactly.
#include <doctest/doctest.h>

#include <string>

#include <keras/keras.hpp>

using namespace keras;

namespace {
// The seeds' next-character task on "hi?hello!!": x = text[:-1], y = text[1:], one-hot.
struct CharTask {
    std::string text = "hi?hello!!";
    std::string chars = "hi?elo!";
    Tensor x, y;
    CharTask() {
        const int64_t steps = static_cast<int64_t>(text.size()) - 1, classes = static_cast<int64_t>(chars.size());
        x = Tensor::zeros({1, steps, classes});
        y = Tensor::zeros({1, steps, classes});
        for (int64_t t = 0; t < steps; ++t) {
            x.data<float>()[t * classes + chars.find(text[t])] = 1.0f;
            y.data<float>()[t * classes + chars.find(text[t + 1])] = 1.0f;
        }
    }
};

std::vector<float> flat_weights(const Model& model) {
    std::vector<float> out;
    for (const auto& w : model.get_weights()) {
        auto v = w.to_vector<float>();
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

std::vector<float> train_small_sentiment_model(uint64_t seed) {
    auto [train, test] = datasets::synthetic_sentiment::load_data({.num_train = 600, .num_test = 10, .num_words = 300,
                                                                   .min_length = 10, .max_length = 30});
    utils::set_random_seed(seed);
    Sequential model;
    model.add(layers::Input({30}));
    model.add(layers::Embedding(300, 8));
    model.add(layers::Dropout(0.2f));
    model.add(layers::LSTM(6, {.dropout = 0.1f}));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.01f), "binary_crossentropy", {"accuracy"});
    model.fit(utils::pad_sequences(train.x, {.maxlen = 30}), train.y,
              {.batch_size = 50, .epochs = 2, .validation_split = 0.1, .shuffle = true, .verbose = 0});
    return flat_weights(model);
}
}  // namespace

TEST_CASE("LSTM(4) + Dense softmax learns every transition of 'hi?hello!!'") {
    CharTask task;
    utils::set_random_seed(7);
    Sequential model;
    model.add(layers::Input({task.x.dim(1), task.x.dim(2)}));
    model.add(layers::LSTM(4, {.return_sequences = true}));
    model.add(layers::Dense(static_cast<int64_t>(task.chars.size()), "softmax"));
    model.compile(optimizers::Adam(0.1f), "categorical_crossentropy", {"accuracy"});
    model.fit(task.x, task.y, {.batch_size = 1, .epochs = 150, .verbose = 0});
    const auto result = model.evaluate(task.x, task.y, {.verbose = 0});
    CHECK(result["accuracy"] == 1.0);
    CHECK(result.loss() < 0.2);
}

TEST_CASE("SimpleRNN sentiment model exceeds 95% test accuracy on the generated corpus") {
    auto [train, test] = datasets::synthetic_sentiment::load_data({.num_train = 20000, .num_test = 2000});
    const Tensor x_train = utils::pad_sequences(train.x, {.maxlen = 130});
    const Tensor x_test = utils::pad_sequences(test.x, {.maxlen = 130});
    utils::set_random_seed(42);
    Sequential model;
    model.add(layers::Input({130}));
    model.add(layers::Embedding(6000, 32));
    model.add(layers::SimpleRNN(16));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.001f), "binary_crossentropy", {"accuracy"});
    model.fit(x_train, train.y, {.batch_size = 100, .epochs = 5, .validation_split = 0.2, .verbose = 0});
    const auto result = model.evaluate(x_test, test.y, {.batch_size = 200, .verbose = 0});
    MESSAGE("generated sentiment: test accuracy " << result["accuracy"] << ", loss " << result.loss());
    CHECK(result["accuracy"] > 0.95);
}

TEST_CASE("the same seed gives bit-identical weights; another seed does not") {
    const auto a = train_small_sentiment_model(1234);
    const auto b = train_small_sentiment_model(1234);
    const auto c = train_small_sentiment_model(4321);
    REQUIRE(a.size() == b.size());
    CHECK(a == b);   // exact equality, not approximate
    CHECK(a != c);
}
