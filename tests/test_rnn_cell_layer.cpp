// Keras's RNN(cell) over the built-in cells: the same call as LSTM / GRU / SimpleRNN over that cell
// (the fused primitive, the same outputs and gradients), saved and loaded as Keras writes it, and
// files written by real Keras 3 predicting what Keras predicted.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "h5_test_helpers.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

// The built-in layer and the RNN over the same kind of cell, with the same options.
struct Pair {
    std::shared_ptr<Layer> layer, rnn;
};

Pair make_pair(const std::string& kind, const layers::RNNOptions& o) {
    const layers::LSTMOptions lo{.return_sequences = o.return_sequences, .return_state = o.return_state,
                                 .go_backwards = o.go_backwards};
    if (kind == "lstm")
        return {std::make_shared<layers::LSTM>(3, lo), std::make_shared<layers::RNN>(std::make_shared<layers::LSTMCell>(3), o)};
    if (kind == "gru")
        return {std::make_shared<layers::GRU>(3, layers::GRUOptions{.return_sequences = o.return_sequences,
                                                                     .return_state = o.return_state,
                                                                     .go_backwards = o.go_backwards}),
                std::make_shared<layers::RNN>(std::make_shared<layers::GRUCell>(3), o)};
    return {std::make_shared<layers::SimpleRNN>(3, layers::SimpleRNNOptions{.return_sequences = o.return_sequences,
                                                                             .return_state = o.return_state,
                                                                             .go_backwards = o.go_backwards}),
            std::make_shared<layers::RNN>(std::make_shared<layers::SimpleRNNCell>(3), o)};
}

std::string saved_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("kerascpp_test_rnn_cell_" + name)).string();
}

}  // namespace

TEST_CASE("RNN(LSTMCell / GRUCell / SimpleRNNCell) runs the fused path and computes what LSTM / GRU / SimpleRNN do") {
    const Tensor x = wavy({4, 6, 2}, 0.3, 0.7, 1.0);
    // A mask with left padding and a hole, as a masked Embedding gives.
    Tensor mask({4, 6}, DType::float32);
    for (int64_t i = 0; i < mask.numel(); ++i) mask.data<float>()[i] = (i % 6 == 0 && i / 6 != 1) || i == 15 ? 0.0f : 1.0f;
    for (const std::string kind : {"lstm", "gru", "simple"}) {
        for (const bool sequences : {false, true})
            for (const bool backwards : {false, true})
                for (const bool masked : {false, true}) {
                    INFO(kind << " return_sequences=" << sequences << " go_backwards=" << backwards << " masked=" << masked);
                    auto [layer, rnn] = make_pair(kind, {.return_sequences = sequences, .return_state = true,
                                                         .go_backwards = backwards});
                    layer->build_for({-1, 6, 2});
                    rnn->build_for({-1, 6, 2});
                    REQUIRE(rnn->weights().size() == layer->weights().size());
                    for (size_t k = 0; k < layer->weights().size(); ++k) {
                        CHECK(rnn->weights()[k]->value.shape() == layer->weights()[k]->value.shape());
                        rnn->weights()[k]->value = layer->weights()[k]->value.clone();
                    }
                    CHECK(rnn->implementation_note() == layer->implementation_note());
                    CHECK(rnn->implementation_note().find("oneDNN") != std::string::npos);
                    CallContext a{.training = true}, b{.training = true};
                    if (masked) a.mask = mask, b.mask = mask;
                    const auto ya = layer->call_outputs(x, {}, a), yb = rnn->call_outputs(x, {}, b);
                    REQUIRE(ya.size() == yb.size());
                    for (size_t k = 0; k < ya.size(); ++k) CHECK(values_of(yb[k]) == values_of(ya[k]));
                    std::vector<Tensor> dys;
                    for (size_t k = 0; k < ya.size(); ++k) dys.push_back(wavy(ya[k].shape(), 0.2 * double(k), 0.9, 1.0));
                    const auto ga = layer->backward_outputs(dys, a), gb = rnn->backward_outputs(dys, b);
                    CHECK(values_of(gb.at(0)) == values_of(ga.at(0)));
                    for (size_t k = 0; k < layer->weights().size(); ++k)
                        CHECK(values_of(rnn->weights()[k]->grad) == values_of(layer->weights()[k]->grad));
                }
    }
}

TEST_CASE("RNN(cell) over a built-in cell: trains, shares the user's cell, saves and loads as Keras writes it") {
    utils::set_random_seed(3);
    auto cell = std::make_shared<layers::GRUCell>(4, layers::GRUCellOptions{.name = "my_gru_cell"});
    Sequential model("rnn_cell_model");
    model.add(layers::Input({5, 2}));
    model.add(layers::RNN(std::make_shared<layers::LSTMCell>(3), {.return_sequences = true, .name = "first"}));
    model.add(layers::RNN(cell, {.name = "second"}));
    model.add(layers::Dense(1));
    model.compile(optimizers::Adam(0.02f), "mse");
    const Tensor x = wavy({16, 5, 2}, 0.1, 0.6, 1.0), y = wavy({16, 1}, 0.5, 0.3, 0.5);
    const double before = model.evaluate(x, y, {.verbose = 0}).loss();
    model.fit(x, y, {.batch_size = 8, .epochs = 20, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).loss() < 0.5 * before);
    // The user's cell holds the trained weights: they are the layer's Variables.
    REQUIRE(cell->weights().size() == 3);
    CHECK(cell->weights()[0] == model.get_layer("second")->weights()[0]);

    const auto config = model.get_layer("second")->get_config();
    CHECK(config["cell"]["class_name"] == "GRUCell");
    CHECK(config["cell"]["config"]["name"] == "my_gru_cell");
    CHECK(config["cell"]["config"]["reset_after"] == true);
    CHECK(config["return_sequences"] == false);

    const auto path = saved_path("model.h5"), weights_path = saved_path("model.weights.h5");
    model.save(path);
    model.save_weights(weights_path);
    auto loaded = models::load_model(path);
    CHECK(loaded->get_layer("second")->class_name() == "RNN");
    CHECK(loaded->get_layer("second")->get_config() == config);
    CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(model.predict(x, {.verbose = 0})));
    std::filesystem::remove(path);
    std::filesystem::remove(weights_path);
}

TEST_CASE("RNN(cell) files written by real Keras 3 load and predict what Keras predicted, both layouts") {
    const std::string dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";
    std::ifstream in(dir + "rnn_cell_fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    REQUIRE(fixtures.size() == 2);
    for (const auto& c : fixtures) {
        const std::string file = c["file"];
        INFO(file << " (Keras " << c["keras"].get<std::string>() << ")");
        auto model = models::load_model(dir + file, {.compile = false});
        const Tensor x = test_helpers::floats(c["x"].get<std::vector<double>>(), c["x_shape"].get<Shape>());
        const auto want = c["y"].get<std::vector<double>>();
        const auto got = values_of(model->predict(x, {.verbose = 0}));
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1.0));
        for (const auto& layer : model->layers())
            if (layer->class_name() == "RNN") CHECK(layer->implementation_note().find("oneDNN") != std::string::npos);

        // Keras 3's .weights.h5 of the same model, into a fresh copy of the architecture.
        auto fresh = models::load_model(dir + file, {.compile = false});
        for (const auto& w : fresh->weights()) w->value = Tensor::zeros(w->value.shape());
        fresh->load_weights(dir + c["weights_file"].get<std::string>());
        const auto again = values_of(fresh->predict(x, {.verbose = 0}));
        for (size_t i = 0; i < again.size(); ++i) CHECK(again[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("RNN(cell) errors name the layer and the problem") {
    CHECK(message_of<ValueError>([] { layers::RNN(std::shared_ptr<layers::LSTMCell>{}); }) == "RNN: the cell is null");
    auto stateful = share(layers::RNN(std::make_shared<layers::LSTMCell>(2), {.stateful = true, .name = "kept"}));
    CHECK(message_of<ValueError>([&] { (*stateful)(Input({4, 3})); }).find("Layer \"kept\": When using `stateful=True`") !=
          std::string::npos);
    layers::RNN rnn(std::make_shared<layers::SimpleRNNCell>(2), {.name = "flat"});
    CHECK(message_of<ValueError>([&] { rnn.build_for({-1, 3}); }).find("Input 0 of layer \"flat\"") != std::string::npos);

    // A file whose RNN holds a list of cells (Keras's StackedRNNCells) is refused by name.
    Sequential model("stacked");
    model.add(layers::Input({4, 2}));
    model.add(layers::RNN(std::make_shared<layers::LSTMCell>(2), {.name = "rnn_layer"}));
    const auto path = saved_path("stacked.h5");
    model.save(path);
    auto config = nlohmann::json::parse(test_helpers::read_model_config(path));
    auto& rnn_config = config["config"]["layers"][1]["config"];
    REQUIRE(rnn_config["name"] == "rnn_layer");
    rnn_config["cell"] = nlohmann::json::array({rnn_config["cell"], rnn_config["cell"]});
    test_helpers::rewrite_model_config(path, config);
    CHECK(message_of<ValueError>([&] { models::load_model(path); }) ==
          "Layer \"rnn_layer\" (RNN) in file '" + path +
              "', field `cell`: a list of cells (StackedRNNCells) is not supported: stack RNN layers instead");
    std::filesystem::remove(path);
}
