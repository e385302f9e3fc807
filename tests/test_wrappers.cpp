// RepeatVector and TimeDistributed: forward and backward against naive loops written here, shapes,
// configs, error messages, and a save / load_model round trip.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "keras/models.hpp"
#include "h5_test_helpers.hpp"
#include "test_helpers.hpp"

using test_helpers::message_of;
using test_helpers::values_of;
using namespace keras;

namespace {

Tensor wavy(const Shape& shape, double phase) { return test_helpers::wavy(shape, phase, 0.37, 1.3); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

}  // namespace

TEST_CASE("RepeatVector copies each row n times and sums the gradient over time") {
    layers::RepeatVector rv(4);
    CHECK(rv.name().rfind("repeat_vector", 0) == 0);
    CHECK(rv.build_for({-1, 3}) == Shape{-1, 4, 3});
    const Tensor x = wavy({2, 3}, 0.1);
    CallContext ctx;
    const Tensor y = rv.call(x, ctx);
    REQUIRE(y.shape() == Shape{2, 4, 3});
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < 4; ++t)
            for (int64_t f = 0; f < 3; ++f) CHECK(y.item((b * 4 + t) * 3 + f) == x.item(b * 3 + f));

    const Tensor dy = wavy({2, 4, 3}, 0.7);
    const Tensor dx = rv.backward(dy, ctx);
    REQUIRE(dx.shape() == Shape{2, 3});
    std::vector<double> want(6, 0.0);
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < 4; ++t)
            for (int64_t f = 0; f < 3; ++f) want[static_cast<size_t>(b * 3 + f)] += dy.item((b * 4 + t) * 3 + f);
    check_close(values_of(dx), want, 1e-6);
}

TEST_CASE("RepeatVector config and errors") {
    layers::RepeatVector rv(5, {.name = "rep"});
    const auto config = rv.get_config();
    CHECK(config["n"] == 5);
    CHECK(config["name"] == "rep");
    CHECK(message_of<ValueError>([] { layers::RepeatVector(0); }) == "Argument `n` should be a positive integer. Received: n=0");
    const std::string msg = message_of<ValueError>([&] { rv.build_for({-1, 5, 2}); });
    CHECK(msg.find("Input 0 of layer \"rep\" is incompatible with the layer: expected ndim=2, found ndim=3") !=
          std::string::npos);
    CHECK(msg.find("(None, 5, 2)") != std::string::npos);
}

TEST_CASE("TimeDistributed(Dense) equals the Dense applied to every step, forward and backward") {
    layers::TimeDistributed td(layers::Dense(4, {.activation = "linear", .bias_initializer = "glorot_uniform"}));
    CHECK(td.name().rfind("time_distributed", 0) == 0);
    CHECK(td.build_for({-1, 5, 3}) == Shape{-1, 5, 4});
    // The wrapper's weights are the wrapped Dense's own Variables.
    REQUIRE(td.weights().size() == 2);
    CHECK(td.weights()[0] == td.layer()->weights()[0]);
    CHECK(td.weights()[1] == td.layer()->weights()[1]);
    CHECK(td.count_params() == 3 * 4 + 4);

    const int64_t N = 2, T = 5, C = 3, U = 4;
    const Tensor x = wavy({N, T, C}, 0.3);
    const Tensor w = td.weights()[0]->value, bias = td.weights()[1]->value;
    CallContext ctx;
    ctx.training = true;
    const Tensor y = td.call(x, ctx);
    REQUIRE(y.shape() == Shape{N, T, U});
    std::vector<double> want_y(N * T * U);
    for (int64_t r = 0; r < N * T; ++r)
        for (int64_t u = 0; u < U; ++u) {
            double s = bias.item(u);
            for (int64_t c = 0; c < C; ++c) s += double(x.item(r * C + c)) * w.item(c * U + u);
            want_y[r * U + u] = s;
        }
    check_close(values_of(y), want_y, 1e-5);

    const Tensor dy = wavy({N, T, U}, 1.1);
    const Tensor dx = td.backward(dy, ctx);
    REQUIRE(dx.shape() == Shape{N, T, C});
    std::vector<double> want_dx(N * T * C, 0.0), want_dw(C * U, 0.0), want_db(U, 0.0);
    for (int64_t r = 0; r < N * T; ++r)
        for (int64_t u = 0; u < U; ++u) {
            want_db[u] += dy.item(r * U + u);
            for (int64_t c = 0; c < C; ++c) {
                want_dx[r * C + c] += double(dy.item(r * U + u)) * w.item(c * U + u);
                want_dw[c * U + u] += double(x.item(r * C + c)) * dy.item(r * U + u);
            }
        }
    check_close(values_of(dx), want_dx, 1e-5);
    check_close(values_of(td.weights()[0]->grad), want_dw, 1e-5);
    check_close(values_of(td.weights()[1]->grad), want_db, 1e-5);
}

TEST_CASE("TimeDistributed keeps the extra axes of a 4-D input") {
    layers::TimeDistributed td{layers::Flatten()};
    CHECK(td.build_for({-1, 3, 2, 4}) == Shape{-1, 3, 8});
    const Tensor x = wavy({2, 3, 2, 4}, 0.5);
    CallContext ctx;
    const Tensor y = td.call(x, ctx);
    REQUIRE(y.shape() == Shape{2, 3, 8});
    CHECK(values_of(y) == values_of(x));   // Flatten per step keeps the row-major order
    CHECK(td.backward(y, ctx).shape() == Shape{2, 3, 2, 4});
}

TEST_CASE("TimeDistributed config and errors") {
    auto dense = std::make_shared<layers::Dense>(3, layers::DenseOptions{.name = "inner"});
    layers::TimeDistributed td(dense, {.name = "td"});
    const auto config = td.get_config();
    CHECK(config["name"] == "td");
    CHECK(config["layer"]["class_name"] == "Dense");
    CHECK(config["layer"]["module"] == "keras.layers");
    CHECK(config["layer"]["config"] == dense->get_config());
    CHECK(message_of<ValueError>([&] { td.build_for({-1, 7}); }) ==
          "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, received: (None, 7)");
    CHECK(message_of<ValueError>([] { layers::TimeDistributed td{LayerPtr()}; }) ==
          "Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. Received: None");
    td.build_for({-1, 4, 5});
    CHECK(message_of<ValueError>([&] { td.build_for({-1, 4, 6}); }).find(
              "expected axis -1 of input shape to have value 5") != std::string::npos);
}

TEST_CASE("A model with RepeatVector and TimeDistributed trains, saves and loads back identically") {
    utils::set_random_seed(3);
    auto model_ptr = std::make_shared<Sequential>("seq2seq");
    Sequential& model = *model_ptr;
    model.add(layers::Input({3}));
    model.add(layers::Dense(4, {.activation = "tanh", .name = "encode"}));
    model.add(layers::RepeatVector(5, {.name = "repeat"}));
    model.add(layers::LSTM(6, {.return_sequences = true, .name = "decode"}));
    model.add(layers::TimeDistributed(layers::Dense(2, {.name = "per_step"}), {.name = "td"}));
    model.compile(optimizers::Adam(0.01f), "mse");
    const Tensor x = wavy({8, 3}, 0.2), y = wavy({8, 5, 2}, 0.9);
    const double before = model.evaluate(x, y, {.verbose = 0}).at("loss");
    model.fit(x, y, {.batch_size = 4, .epochs = 5, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).at("loss") < before);   // the wrapped Dense's weights train

    const auto path = (std::filesystem::temp_directory_path() / "kerascpp_test_wrappers.h5").string();
    model.save(path);
    auto loaded = models::load_model(path);
    REQUIRE(loaded->layers().size() == model.layers().size());
    for (size_t i = 0; i < model.layers().size(); ++i)
        CHECK(loaded->layers()[i]->get_config() == model.layers()[i]->get_config());
    CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(model.predict(x, {.verbose = 0})));
    std::filesystem::remove(path);
}

TEST_CASE("load_model: a TimeDistributed entry without a valid wrapped layer is a clear error") {
    auto model = std::make_shared<Sequential>("bad");
    model->add(layers::Input({4, 3}));
    model->add(layers::TimeDistributed(layers::Dense(2), {.name = "td"}));
    const auto path = (std::filesystem::temp_directory_path() / "kerascpp_test_wrappers_bad.h5").string();
    model->save(path);
    auto config = nlohmann::json::parse(test_helpers::read_model_config(path));
    auto& td = config["config"]["layers"][1]["config"];
    REQUIRE(td["name"] == "td");

    td["layer"] = 7;
    test_helpers::rewrite_model_config(path, config);
    CHECK(message_of<ValueError>([&] { models::load_model(path); }) ==
          "Layer \"td\" (TimeDistributed) in file '" + path +
              "', field `layer`: expected a layer entry {\"class_name\": ..., \"config\": ...}, got 7");

    td.erase("layer");
    test_helpers::rewrite_model_config(path, config);
    CHECK(message_of<ValueError>([&] { models::load_model(path); }) ==
          "Layer \"td\" (TimeDistributed) in file '" + path + "', field `layer`: missing");

    // The wrapped layer's own errors name it.
    td["layer"] = {{"class_name", "Dense"}, {"config", {{"name", "inner"}, {"units", 0}}}};
    test_helpers::rewrite_model_config(path, config);
    CHECK(message_of<ValueError>([&] { models::load_model(path); }).find(
              "Layer \"inner\" (Dense) in file '" + path + "', field `units`: expected a positive integer, got 0") !=
          std::string::npos);
    std::filesystem::remove(path);
}

TEST_CASE("Models with RepeatVector, TimeDistributed and Bidirectional saved by real Keras 3 and Keras 2 load "
          "and predict what Keras predicted") {
    const std::string dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";
    std::ifstream in(dir + "wrappers_fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    REQUIRE(fixtures.size() == 8);
    for (const auto& c : fixtures) {
        const std::string file = c["file"];
        INFO(file << " (Keras " << c["keras"].get<std::string>() << ")");
        auto model = models::load_model(dir + file, {.compile = false});
        const Tensor x = test_helpers::floats(c["x"].get<std::vector<double>>(), c["x_shape"].get<Shape>());
        check_close(values_of(model->predict(x, {.verbose = 0})), c["y"].get<std::vector<double>>(), 2e-5);
    }
}
