// Model API pieces Keras users reach for (issue 14 item 8): Sequential.layers without its
// InputLayer, model / layer reset_states(), per-layer get_weights / set_weights with Keras's
// messages, compile() with one metric name. Expected messages are Keras 3's (keras/src/layers/layer.py).
#include <doctest/doctest.h>

#include <filesystem>

#include <keras/keras.hpp>
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using namespace keras;

TEST_CASE("Sequential::layers() leaves the InputLayer out, as Keras 3's model.layers") {
    Sequential model;
    model.add(layers::Input({5}, {.dtype = DType::int32}));
    model.add(layers::Embedding(12, 4, {.name = "emb"}));
    model.add(layers::LSTM(3, {.name = "lstm"}));
    model.add(layers::Dense(1, {.name = "out"}));
    REQUIRE(model.layers().size() == 3);
    CHECK(model.layers()[0]->name() == "emb");   // what user code indexing layers()[0] expects
    CHECK(model.layers().back()->name() == "out");
    CHECK(model.all_layers().size() == 4);
    CHECK(model.all_layers()[0]->class_name() == "InputLayer");

    // Saved and loaded back: the config still lists the InputLayer, layers() still does not.
    const auto path = std::filesystem::temp_directory_path() / "kerascpp_test_model_api.h5";
    model.compile("adam", "mse");
    model.save(path.string());
    auto loaded = models::load_model(path.string());
    std::filesystem::remove(path);
    REQUIRE(loaded->layers().size() == 3);
    CHECK(loaded->layers()[0]->name() == "emb");
    CHECK(loaded->all_layers()[0]->get_config()["batch_shape"] == nlohmann::json::parse("[null, 5]"));
}

TEST_CASE("a Sequential model built without an Input layer lists all its layers") {
    Sequential model;
    model.add(layers::Dense(2, {.name = "d"}));
    model.build({-1, 3});
    REQUIRE(model.layers().size() == 1);
    CHECK(model.layers()[0]->name() == "d");
}

TEST_CASE("a functional model's layers() keeps its InputLayer, as Keras's Functional.layers") {
    const auto x = Input({3});
    Model model(x, (*keras::share(layers::Dense(1)))(x));
    REQUIRE(model.layers().size() == 2);
    CHECK(model.layers()[0]->class_name() == "InputLayer");
}

TEST_CASE("model.reset_states() zeroes every stateful layer's states and leaves the others alone") {
    Sequential model;
    model.add(layers::Input({2, 1}, {.batch_size = 2}));
    model.add(layers::LSTM(3, {.return_sequences = true, .stateful = true, .name = "kept"}));
    model.add(layers::GRU(2, {.name = "plain"}));   // not stateful: reset_states() must skip it
    model.add(layers::Dense(1));
    const Tensor x = floats({0.5, -1, 0.25, 2}, {2, 2, 1});
    const auto first = values_of(model.predict(x, {.batch_size = 2, .verbose = 0}));
    const auto second = values_of(model.predict(x, {.batch_size = 2, .verbose = 0}));
    CHECK(first != second);   // the second call started from the first one's states
    auto lstm = std::dynamic_pointer_cast<layers::RNNBase>(model.get_layer("kept"));
    CHECK_FALSE(lstm->states().empty());

    model.reset_states();
    CHECK(lstm->states().empty());
    CHECK(values_of(model.predict(x, {.batch_size = 2, .verbose = 0})) == first);
    model.reset_state();   // Keras 3's name
    CHECK(lstm->states().empty());

    // The layer-level calls: Keras 3's reset_state() and the tf-keras reset_states().
    model.predict(x, {.batch_size = 2, .verbose = 0});
    model.layers()[0]->reset_state();
    CHECK(lstm->states().empty());
    CHECK(message_of<ValueError>([&] { model.layers().back()->reset_states(); }) ==
          "Layer \"" + model.layers().back()->name() + "\" is not stateful: reset_states() needs stateful=true");
}

TEST_CASE("reset_states() reaches the layers inside Bidirectional") {
    Sequential model;
    model.add(layers::Input({2, 1}, {.batch_size = 2}));
    model.add(layers::Bidirectional(layers::LSTM(2, {.stateful = true})));
    const Tensor x = floats({0.5, -1, 0.25, 2}, {2, 2, 1});
    const auto first = values_of(model.predict(x, {.batch_size = 2, .verbose = 0}));
    CHECK(values_of(model.predict(x, {.batch_size = 2, .verbose = 0})) != first);
    CHECK(model.layers()[0]->stateful());
    model.reset_states();
    CHECK(values_of(model.predict(x, {.batch_size = 2, .verbose = 0})) == first);
}

TEST_CASE("layer get_weights / set_weights: Keras's order, a round trip and Keras's messages") {
    auto dense = keras::share(layers::Dense(2, {.name = "dense_w"}));
    dense->build_for({-1, 3});
    const auto weights = dense->get_weights();
    REQUIRE(weights.size() == 2);
    CHECK(weights[0].shape() == Shape{3, 2});   // kernel, then bias, as Keras
    CHECK(weights[1].shape() == Shape{2});

    const Tensor kernel = floats({1, 2, 3, 4, 5, 6}, {3, 2});
    const Tensor bias = floats({-1, 1}, {2});
    dense->set_weights({kernel, bias});
    CHECK(values_of(dense->get_weights()[0]) == values_of(kernel));
    CHECK(values_of(dense->get_weights()[1]) == values_of(bias));
    // get_weights() copies: changing the copy leaves the layer alone.
    auto copy = dense->get_weights();
    copy[1].fill(7);
    CHECK(values_of(dense->get_weights()[1]) == values_of(bias));

    CHECK(message_of<ValueError>([&] { dense->set_weights({kernel}); }) ==
          "You called `set_weights(weights)` on layer 'dense_w' with a weight list of length 1, but the layer was "
          "expecting 2 weights.");
    // A bad shape anywhere in the list leaves every weight as it was.
    CHECK(message_of<ValueError>([&] { dense->set_weights({floats({0, 0, 0, 0, 0, 0}, {3, 2}), floats({0, 0, 0}, {3})}); }) ==
          "Layer dense_w weight shape (2,) is not compatible with provided weight shape (3,).");
    CHECK(values_of(dense->get_weights()[0]) == values_of(kernel));

    // An LSTM's: kernel, recurrent_kernel, bias, as Keras lists them.
    auto lstm = keras::share(layers::LSTM(2));
    lstm->build_for({-1, 4, 3});
    const auto lw = lstm->get_weights();
    REQUIRE(lw.size() == 3);
    CHECK(lw[0].shape() == Shape{3, 8});
    CHECK(lw[1].shape() == Shape{2, 8});
    CHECK(lw[2].shape() == Shape{8});
}

TEST_CASE("compile() takes one metric name, as a string or in braces") {
    auto [x, y] = std::pair{floats({0, 1, 1, 0}, {4, 1}), floats({0, 1, 1, 0}, {4, 1})};
    Sequential model;
    model.add(layers::Input({1}));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile("adam", "binary_crossentropy", "accuracy");
    CHECK(model.metric_names() == std::vector<std::string>{"accuracy"});
    const auto result = model.evaluate(x, y, {.verbose = 0});
    CHECK(result["accuracy"] >= 0);
    model.compile(optimizers::Adam(0.01), "binary_crossentropy", {"accuracy"});
    CHECK(model.metric_names() == std::vector<std::string>{"accuracy"});
    model.compile("adam", "binary_crossentropy", {"accuracy", "mae"});
    CHECK(model.metric_names() == std::vector<std::string>{"accuracy", "mae"});
}

TEST_CASE("predict_on_batch gives predict()'s values for the whole batch at once, on the host") {
    keras::utils::set_random_seed(3);
    Sequential model;
    model.add(layers::Input({4}));
    model.add(layers::Embedding(10, 3));
    model.add(layers::LSTM(5));
    model.add(layers::Dense(2, "softmax"));
    const Tensor x(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2}, {3, 4});
    const Tensor x5(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, {5, 4});
    const Tensor y = model.predict_on_batch(x5);
    CHECK(y.shape() == Shape{5, 2});
    CHECK(y.device().is_cpu());
    // predict() in batches of 2 sees the same rows: same values (no work crosses rows).
    const auto batched = values_of(model.predict(x5, {.batch_size = 2, .verbose = 0}));
    const auto whole = values_of(y);
    REQUIRE(batched.size() == whole.size());
    for (size_t i = 0; i < whole.size(); ++i) CHECK(whole[i] == doctest::Approx(batched[i]).epsilon(1e-6));
    CHECK(values_of(model.predict_on_batch(x)).size() == 6);
}
