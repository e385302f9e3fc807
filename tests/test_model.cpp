// Sequential / Model: building, summary, the fit / evaluate / predict contract, and every bad input
// the issue lists getting a clear error.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include <keras/keras.hpp>
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using namespace keras;

namespace {
// A small float regression set: y = sum of x's features.
std::pair<Tensor, Tensor> regression_data(int64_t n, int64_t features) {
    std::vector<float> x(n * features), y(n);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < features; ++j) {
            x[i * features + j] = static_cast<float>(std::sin(0.37 * (i * features + j)));
            y[i] += x[i * features + j];
        }
    return {Tensor(x, {n, features}), Tensor(y, {n, 1})};
}

Tensor token_ids(int64_t n, int64_t steps, int64_t vocab) {
    std::vector<int32_t> ids(n * steps);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % vocab);
    return Tensor(ids, {n, steps});
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("summary prints Keras's table with output shapes, parameter counts and the RNN path") {
    utils::clear_session();
    Sequential model;
    model.add(layers::Input({130}));
    model.add(layers::Embedding(6000, 100));
    model.add(layers::SimpleRNN(16));
    model.add(layers::Dense(1, "sigmoid"));
    std::ostringstream out;
    model.summary(&out);
    const std::string s = out.str();
    CHECK(contains(s, "Model: \"sequential\""));
    CHECK(contains(s, " Layer (type)                Output Shape              Param #"));
    CHECK(contains(s, " embedding (Embedding)       (None, 130, 100)          600000"));
    CHECK(contains(s, " simple_rnn (SimpleRNN)      (None, 16)                1872"));
    CHECK(contains(s, " dense (Dense)               (None, 1)                 17"));
    CHECK(contains(s, "runs on: small-RNN kernel (tanh)"));   // SimpleRNN(16): the kernel, not oneDNN
    CHECK(contains(s, "Total params: 601889 (2.30 MB)"));
    CHECK(contains(s, "Trainable params: 601889 (2.30 MB)"));
    CHECK(contains(s, "Non-trainable params: 0 (0.00 Byte)"));
    CHECK(model.count_params() == 600000 + 16 * (100 + 16 + 1) + 17);
}

TEST_CASE("an unbuilt model's summary says so instead of guessing") {
    Sequential model;
    model.add(layers::Embedding(10, 4, {.name = "emb"}));
    std::ostringstream out;
    model.summary(&out);
    CHECK(contains(out.str(), " emb (Embedding)             ?                         0 (unbuilt)"));
}

TEST_CASE("layers get Keras's automatic unique names") {
    utils::clear_session();
    layers::Dense a(1), b(1);
    layers::SimpleRNN r(2);
    layers::GlobalAveragePooling1D g;
    CHECK(a.name() == "dense");
    CHECK(b.name() == "dense_1");
    CHECK(r.name() == "simple_rnn");
    CHECK(g.name() == "global_average_pooling1d");
}

TEST_CASE("incompatible layers fail at add(), naming the layer and both shapes") {
    Sequential model;
    model.add(layers::Input({130}));
    model.add(layers::Embedding(100, 8));
    model.add(layers::LSTM(4, {.name = "lstm_a"}));
    // LSTM outputs (None, 4); a second LSTM needs 3-D input.
    const auto msg = message_of([&] { model.add(layers::LSTM(4, {.name = "lstm_b"})); });
    CHECK(msg == "Input 0 of layer \"lstm_b\" is incompatible with the layer: expected ndim=3, found ndim=2. "
                 "Full shape received: (None, 4)");
    CHECK(model.layers().size() == 2);   // the bad layer was not kept (layers() leaves the InputLayer out)
}

TEST_CASE("a model without an Input layer is built by its first data, and checks later data") {
    Sequential model;
    model.add(layers::Dense(3, {.name = "d1"}));
    model.add(layers::Dense(1, {.name = "d2"}));
    model.compile("sgd", "mse");
    auto xy = regression_data(8, 5);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    model.fit(x, y, {.epochs = 1, .verbose = 0});
    CHECK(model.built());
    const Tensor x2 = regression_data(8, 6).first;
    CHECK(message_of([&] { model.predict(x2, {.verbose = 0}); }) ==
          "Input 0 of layer \"d1\" is incompatible with the layer: expected axis -1 of input shape to have value 5, "
          "but received input with shape (None, 6). Full shape received: (None, 6)");
}

TEST_CASE("fit / evaluate before compile is an error") {
    Sequential model;
    model.add(layers::Dense(1));
    auto xy = regression_data(4, 2);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    CHECK(contains(message_of([&] { model.fit(x, y); }), "You must call `compile()` before using the model: fit()"));
    CHECK(contains(message_of([&] { model.evaluate(x, y); }), "evaluate() was called"));
    CHECK(contains(message_of([&] { model.train_on_batch(x, y); }), "train_on_batch()"));
}

TEST_CASE("unknown loss, optimizer, metric and activation strings are errors") {
    Sequential model;
    model.add(layers::Dense(1));
    CHECK(message_of([&] { model.compile("adam", "binary_crossentropyy"); }) ==
          "Could not interpret loss identifier: binary_crossentropyy");
    CHECK(message_of([&] { model.compile("adamm", "mse"); }) == "Could not interpret optimizer identifier: adamm");
    CHECK(message_of([&] { model.compile("adam", "mse", {"acuracy"}); }) ==
          "Could not interpret metric identifier: acuracy");
    CHECK(message_of([] { layers::Dense(1, "sigmoidd"); }) ==
          "Could not interpret activation function identifier: sigmoidd");
    CHECK_FALSE(model.compiled());
}

TEST_CASE("x and y of different lengths") {
    Sequential model;
    model.add(layers::Dense(1));
    model.compile("sgd", "mse");
    auto xy = regression_data(10, 2);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    const auto msg = message_of([&] { model.fit(x, y.slice_rows(0, 9), {.verbose = 0}); });
    CHECK(msg == "Data cardinality is ambiguous:\n  x sizes: 10\n  y sizes: 9\nMake sure all arrays contain the same "
                 "number of samples.");
}

TEST_CASE("y of the wrong shape for the model's output") {
    Sequential model;
    model.add(layers::Dense(2));
    model.compile("sgd", "categorical_crossentropy");
    const Tensor x = regression_data(6, 3).first;
    CHECK(contains(message_of([&] { model.fit(x, Tensor::zeros({6, 3}), {.verbose = 0}); }), "(6, 3)"));
}

TEST_CASE("batch_size 0, validation_split outside [0, 1) and too little data to split") {
    Sequential model;
    model.add(layers::Dense(1));
    model.compile("sgd", "mse");
    auto xy = regression_data(10, 2);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    CHECK(message_of([&] { model.fit(x, y, {.batch_size = 0}); }) ==
          "Invalid `batch_size`: 0. It must be a positive integer.");
    CHECK(message_of([&] { model.predict(x, {.batch_size = -3}); }) ==
          "Invalid `batch_size`: -3. It must be a positive integer.");
    CHECK(message_of([&] { model.fit(x, y, {.validation_split = 1.0}); }) ==
          "`validation_split` must be in the range [0, 1). Received: validation_split=1");
    CHECK(message_of([&] { model.fit(x, y, {.validation_split = -0.1}); }) ==
          "`validation_split` must be in the range [0, 1). Received: validation_split=-0.1");
    CHECK(contains(message_of([&] { model.fit(x.slice_rows(0, 1), y.slice_rows(0, 1), {.validation_split = 0.5}); }),
                   "Training data contains 1 samples, which is not sufficient to split it"));
}

TEST_CASE("an embedding index outside [0, input_dim) is an error naming the value and its position") {
    Sequential model;
    model.add(layers::Input({4}));
    model.add(layers::Embedding(10, 3, {.name = "emb"}));
    model.add(layers::GlobalAveragePooling1D());
    model.add(layers::Dense(1, "sigmoid"));
    model.compile("adam", "binary_crossentropy");
    Tensor x(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 10, 7}, {2, 4});
    Tensor y(std::vector<float>{0, 1}, {2});
    CHECK(message_of([&] { model.fit(x, y, {.verbose = 0}); }) ==
          "Embedding layer \"emb\": input id 10 at position [1, 2] is outside [0, 10) (input_dim=10)");
    Tensor negative(std::vector<int32_t>{1, -1, 3, 4}, {1, 4});
    CHECK(contains(message_of([&] { model.predict(negative, {.verbose = 0}); }), "input id -1 at position [0, 1]"));
}

TEST_CASE("validation_split takes the LAST fraction of the data, before shuffling") {
    // A model that always predicts 0 (zero kernel, lr 0): val_loss is then the mean of y^2 over the
    // validation rows, which tells exactly which rows were used.
    Sequential model;
    model.add(layers::Dense(1, {.kernel_initializer = "zeros"}));
    model.compile(optimizers::SGD(0.0f), "mse");
    const int64_t n = 10;
    std::vector<float> xs(n, 1.0f), ys(n);
    for (int64_t i = 0; i < n; ++i) ys[i] = static_cast<float>(i);
    auto history = model.fit(Tensor(xs, {n, 1}), Tensor(ys, {n, 1}),
                             {.batch_size = 3, .epochs = 1, .validation_split = 0.2, .shuffle = true, .verbose = 0});
    CHECK(history["val_loss"][0] == doctest::Approx((8.0 * 8 + 9.0 * 9) / 2));   // rows 8 and 9
    CHECK(history["loss"][0] == doctest::Approx((0 + 1 + 4 + 9 + 16 + 25 + 36 + 49) / 8.0));
}

TEST_CASE("validation_data, History keys and evaluate's named result") {
    Sequential model;
    model.add(layers::Dense(1, "sigmoid"));
    model.compile("adam", "binary_crossentropy", {"accuracy"});
    auto xy = regression_data(20, 3);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    std::vector<float> labels(20);
    for (int i = 0; i < 20; ++i) labels[i] = y.data<float>()[i] > 0 ? 1.0f : 0.0f;
    Tensor y01(labels, {20});
    auto history = model.fit(x, y01, {.epochs = 3, .validation_data = std::pair{x, y01}, .verbose = 0});
    CHECK(history.epoch == std::vector<int>{0, 1, 2});
    std::vector<std::string> keys;
    for (const auto& kv : history.history) keys.push_back(kv.first);
    CHECK(keys == std::vector<std::string>{"loss", "accuracy", "val_loss", "val_accuracy"});
    const auto result = model.evaluate(x, y01, {.verbose = 0});
    auto [loss, acc] = result;
    CHECK(loss == doctest::Approx(history["val_loss"][2]));
    CHECK(acc == doctest::Approx(history["val_accuracy"][2]));
    CHECK(result["accuracy"] == acc);
    CHECK(contains(message_of([&] { (void)result["auc"]; }), "No value named 'auc'"));
}

TEST_CASE("predict returns one row per sample whatever the batch size, and equals train-free forward") {
    Sequential model;
    model.add(layers::Input({5}));
    model.add(layers::Embedding(50, 4));
    model.add(layers::GRU(3));
    model.add(layers::Dense(2, "softmax"));
    const Tensor x = token_ids(7, 5, 50);
    const Tensor a = model.predict(x, {.batch_size = 7, .verbose = 0});
    const Tensor b = model.predict(x, {.batch_size = 2, .verbose = 0});
    REQUIRE(a.shape() == Shape{7, 2});
    for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.data<float>()[i] == doctest::Approx(b.data<float>()[i]).epsilon(1e-6));
    for (int64_t i = 0; i < 7; ++i) CHECK(a.data<float>()[2 * i] + a.data<float>()[2 * i + 1] == doctest::Approx(1.0));
}

TEST_CASE("train_on_batch takes one step and test_on_batch none") {
    Sequential model;
    model.add(layers::Dense(1));
    model.compile(optimizers::SGD(0.1f), "mse");
    auto xy = regression_data(16, 4);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    const auto before = model.test_on_batch(x, y).at("loss");
    CHECK(model.test_on_batch(x, y).at("loss") == before);
    const auto during = model.train_on_batch(x, y).at("loss");
    CHECK(during == doctest::Approx(before));   // the loss reported is the one before the step
    CHECK(model.test_on_batch(x, y).at("loss") < before);
    CHECK(model.optimizer().iterations == 1);
}

TEST_CASE("a NaN loss is reported, and TerminateOnNaN stops at the first bad batch") {
    Sequential model;
    model.add(layers::Dense(1));
    model.compile(optimizers::SGD(1e30f), "mse");
    auto xy = regression_data(64, 4);   // not structured bindings: clang 14 cannot capture those in lambdas
    Tensor& x = xy.first;
    Tensor& y = xy.second;
    auto history = model.fit(x, y, {.batch_size = 8, .epochs = 3, .verbose = 0});
    CHECK(std::isnan(history["loss"].back()));   // diverged, reported on stderr, training went on

    Sequential model2;
    model2.add(layers::Dense(1));
    model2.compile(optimizers::SGD(1e30f), "mse");
    int batches = 0;
    auto count = std::make_shared<callbacks::LambdaCallback>(
        callbacks::LambdaCallbackOptions{.on_batch_end = [&](int64_t, Logs&) { ++batches; }});
    auto history2 = model2.fit(x, y, {.batch_size = 8, .epochs = 3, .verbose = 0,
                                      .callbacks = {std::make_shared<callbacks::TerminateOnNaN>(), count}});
    CHECK(history2.epoch.size() == 1);
    CHECK(batches < 8);
}

TEST_CASE("set_weights / get_weights round trip and reject wrong shapes") {
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(2, {.name = "d"}));
    auto w = model.get_weights();
    REQUIRE(w.size() == 2);
    w[0].fill(0.5f);
    model.set_weights(w);
    CHECK(model.get_weights()[0].data<float>()[3] == 0.5f);
    CHECK(message_of([&] { model.set_weights({w[0]}); }) == "set_weights(): model \"" + model.name() +
                                                               "\" has 2 weights, but 1 were given");
    CHECK(contains(message_of([&] { model.set_weights({Tensor::zeros({2, 2}), w[1]}); }),
                   "weight 0 ('kernel') has shape (3, 2), but the given value has shape (2, 2)"));
}

TEST_CASE("Sequential rejects duplicate layer names and a misplaced Input") {
    Sequential model;
    model.add(layers::Dense(1, {.name = "same"}));
    CHECK(contains(message_of([&] { model.add(layers::Dense(1, {.name = "same"})); }),
                   "Name \"same\" is already the name of a layer in this model"));
    CHECK(contains(message_of([&] { model.add(layers::Input({3})); }), "can only be the first layer"));
}
