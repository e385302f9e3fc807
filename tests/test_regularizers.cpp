// Regularizers (L1, L2, L1L2, activity regularizers, ActivityRegularization) and constraints (MaxNorm,
// NonNeg, UnitNorm, MinMaxNorm): their values, gradients and projections against naive double-precision
// code, their configs in Keras 2's and 3's forms, and REAL Keras 3's numbers (tests/fixtures/
// gen_regularizer_fixtures.py): the loss with the penalties as evaluate and train_on_batch log it, and
// the weights after one SGD step with the constraints applied.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "keras/regularizers.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;
using Vec = std::vector<double>;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/norm/";

nlohmann::json fixture(const std::string& name) {
    std::ifstream in(kFixtures + "regularizer_fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in).at(name);
}

Tensor from_json(const nlohmann::json& a, DType dtype = DType::float32) {
    const Tensor t = floats(a["values"].get<std::vector<double>>(), a["shape"].get<Shape>());
    return dtype == DType::float32 ? t : t.astype(dtype);
}

void check_close(const Vec& got, const Vec& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
}

// The models of gen_regularizer_fixtures.py, built with the C++ API.
std::shared_ptr<Sequential> build_fixture_model(const std::string& name) {
    auto m = std::make_shared<Sequential>();
    if (name == "reg_dense") {
        m->add(layers::Input({5, 3}));
        layers::Dense d1(4, {.kernel_regularizer = regularizers::L2(0.01f), .bias_regularizer = regularizers::L1(0.02f),
                             .kernel_constraint = constraints::MaxNorm(0.8f), .name = "d1"});
        d1.activity_regularizer = regularizers::L1L2(0.001f, 0.002f);
        m->add(d1);
        m->add(layers::LSTM(3, {.kernel_regularizer = regularizers::L1L2(0.01f, 0.02f),
                                .recurrent_regularizer = regularizers::L2(0.03f), .bias_regularizer = regularizers::L1(0.01f),
                                .recurrent_constraint = constraints::UnitNorm(), .bias_constraint = "non_neg", .name = "lstm"}));
        m->add(layers::Dense(1, {.kernel_constraint = constraints::MinMaxNorm(0.1f, 0.5f, 0.7f), .name = "out"}));
        m->add(layers::ActivityRegularization(0.01f, 0.02f, {.name = "act"}));
    } else {
        m->add(layers::Input({6}, {.dtype = DType::int32}));
        m->add(layers::Embedding(9, 4, {.embeddings_regularizer = regularizers::L2(0.05f),
                                        .embeddings_constraint = constraints::NonNeg(), .name = "emb"}));
        m->add(layers::GRU(3, {.bias_regularizer = regularizers::L2(0.1f), .kernel_constraint = constraints::MaxNorm(1.0f),
                               .name = "gru"}));
        m->add(layers::Dense(1, {.bias_constraint = constraints::NonNeg(), .name = "out"}));
    }
    return m;
}

void check_against_keras(Model& model, const std::string& name) {
    const auto data = fixture(name);
    const Tensor x = from_json(data["x"], name == "reg_embed" ? DType::int32 : DType::float32), y = from_json(data["y"]);
    check_close(values_of(model.predict(x, {.verbose = 0})), data["predict"]["values"].get<Vec>(), 1e-5);
    model.compile(optimizers::SGD(0.1f), "mse");
    // Keras's evaluate loss holds the penalties: far above the plain mse.
    const double test_loss = model.test_on_batch(x, y).at("loss");
    CHECK(test_loss == doctest::Approx(data["test_loss"].get<double>()).epsilon(1e-5));
    CHECK(test_loss > data["plain_mse"].get<double>() + 0.5);
    CHECK(model.train_on_batch(x, y).at("loss") == doctest::Approx(data["loss"].get<double>()).epsilon(1e-5));
    for (const auto& [layer, weights] : data["after"].items()) {
        INFO(name << " layer " << layer);
        const auto got = model.get_layer(layer)->get_weights();
        REQUIRE(got.size() == weights.size());
        for (size_t i = 0; i < got.size(); ++i) check_close(values_of(got[i]), weights[i]["values"].get<Vec>(), 1e-5);
    }
}

}  // namespace

TEST_CASE("Keras 3 files with regularizers and constraints: the loss with the penalties and a step as Keras's") {
    for (const std::string name : {"reg_dense", "reg_embed"}) {
        INFO(name);
        check_against_keras(*models::load_model(kFixtures + name + ".h5"), name);
        auto built = build_fixture_model(name);
        built->load_weights(kFixtures + name + ".weights.h5");
        check_against_keras(*built, name);
    }
}

TEST_CASE("fit logs the loss with the penalties; a model saved and loaded keeps its regularizers and constraints") {
    const auto data = fixture("reg_dense");
    const Tensor x = from_json(data["x"]), y = from_json(data["y"]);
    auto model = models::load_model(kFixtures + "reg_dense.h5");
    model->compile(optimizers::SGD(0.1f), "mse");
    const auto history = model->fit(x, y, {.batch_size = 4, .epochs = 1, .verbose = 0});
    CHECK(history["loss"].at(0) == doctest::Approx(data["loss"].get<double>()).epsilon(1e-5));

    const auto path = std::filesystem::temp_directory_path() / ("kerascpp_reg_" + std::to_string(::getpid()) + ".h5");
    model->save(path.string());
    auto loaded = models::load_model(path.string());
    std::filesystem::remove(path);
    for (const auto& layer : model->layers()) CHECK(loaded->get_layer(layer->name())->get_config() == layer->get_config());
    const auto d1 = loaded->get_layer("d1");
    REQUIRE(d1->activity_regularizer);
    CHECK(*d1->activity_regularizer == regularizers::L1L2(0.001f, 0.002f));
    CHECK(d1->weights()[0]->regularizer == regularizers::L2(0.01f));
    CHECK(d1->weights()[0]->constraint == constraints::MaxNorm(0.8f));
    CHECK(loaded->get_layer("lstm")->weights()[1]->constraint == constraints::UnitNorm());
    CHECK(loaded->get_layer("act")->get_config() ==
          nlohmann::json::parse(R"({"name": "act", "trainable": true, "l1": 0.01, "l2": 0.02,
              "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}})"));
}

TEST_CASE("regularizers: value and gradient against the naive sums; Keras's names and messages") {
    const Tensor w = wavy({3, 4}, 0.4, 1.1, 1.3);
    const Vec v = values_of(w);
    double abs_sum = 0, sq_sum = 0;
    for (double e : v) abs_sum += std::abs(e), sq_sum += e * e;
    const auto r = regularizers::L1L2(0.03f, 0.2f);
    CHECK(r(w).item(0) == doctest::Approx(0.03 * abs_sum + 0.2 * sq_sum).epsilon(1e-6));
    Vec want;
    for (double e : v) want.push_back(0.03 * (e > 0 ? 1 : -1) + 0.4 * e);
    check_close(values_of(r.gradient(w)), want, 1e-6);

    CHECK(regularizers::Regularizer("l2") == regularizers::L2(0.01f));
    CHECK(regularizers::Regularizer("l1") == regularizers::L1(0.01f));
    CHECK(regularizers::Regularizer("l1_l2") == regularizers::L1L2(0.01f, 0.01f));   // Keras 2's l1_l2()
    CHECK(layers::Dense(2, {.kernel_regularizer = "l2"}).options.kernel_regularizer == regularizers::L2(0.01f));
    CHECK(message_of([] { regularizers::Regularizer("l3"); }) == "Could not interpret regularizer identifier: l3");
    CHECK(message_of([] { regularizers::L2(-1.0f); }) ==
          "Invalid value for argument l2: expected a non-negative float.Received: l2=-1");
    CHECK(message_of([] { constraints::Constraint("maxnorm"); }) == "Could not interpret constraint identifier: maxnorm");
    CHECK(regularizers::serialize(regularizers::L2(0.01f)) ==
          nlohmann::json::parse(R"({"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01},
                                   "registered_name": null})"));
}

TEST_CASE("constraints: the projections against naive column norms, over axis 0 and 1") {
    const Tensor w = wavy({3, 4}, 0.9, 0.7, 1.5);
    const Vec v = values_of(w);
    auto norms = [&](int axis) {   // norm of each column (axis 0) or row (axis 1), per element
        Vec n(12);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 4; ++j) {
                double s = 0;
                for (int k = 0; k < (axis == 0 ? 3 : 4); ++k) s += std::pow(axis == 0 ? v[k * 4 + j] : v[i * 4 + k], 2);
                n[i * 4 + j] = std::sqrt(s);
            }
        return n;
    };
    for (int axis : {0, 1}) {
        INFO("axis " << axis);
        const Vec n = norms(axis);
        Vec max_norm, unit, min_max, non_neg;
        for (size_t i = 0; i < v.size(); ++i) {
            max_norm.push_back(v[i] * std::min(n[i], 1.2) / (1e-7 + n[i]));
            unit.push_back(v[i] / (1e-7 + n[i]));
            min_max.push_back(v[i] * (0.6 * std::clamp(n[i], 1.5, 2.0) + 0.4 * n[i]) / (1e-7 + n[i]));
            non_neg.push_back(std::max(v[i], 0.0));
        }
        check_close(values_of(constraints::MaxNorm(1.2f, {axis})(w)), max_norm, 1e-5);
        check_close(values_of(constraints::UnitNorm({axis})(w)), unit, 1e-5);
        check_close(values_of(constraints::MinMaxNorm(1.5f, 2.0f, 0.6f, {axis})(w)), min_max, 1e-5);
        check_close(values_of(constraints::NonNeg()(w)), non_neg, 1e-12);
    }
    CHECK(message_of([&] { constraints::MaxNorm(1.0f, {2})(w); }) ==
          "MaxNorm constraint: axis 2 is out of bounds for a weight of shape (3, 4)");
}

TEST_CASE("configs in Keras 2's form load; what kerascpp lacks is refused naming the field") {
    using nlohmann::json;
    const layers::ConfigSource source{2, "model.h5"};
    const json config = {{"name", "d"}, {"units", 2},
                         {"kernel_regularizer", {{"class_name", "L1L2"}, {"config", {{"l1", 0.0}, {"l2", 0.01}}}}},
                         {"bias_regularizer", "l1"},
                         {"kernel_constraint", {{"class_name", "MaxNorm"}, {"config", {{"max_value", 2}, {"axis", 0}}}}},
                         {"activity_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 0.5}}}}}};
    auto dense = std::dynamic_pointer_cast<layers::Dense>(layers::layer_from_config("Dense", config, source));
    REQUIRE(dense);
    CHECK(dense->options.kernel_regularizer == regularizers::L1L2(0.0f, 0.01f));
    CHECK(dense->options.bias_regularizer == regularizers::L1(0.01f));
    CHECK(dense->options.kernel_constraint == constraints::MaxNorm(2.0f));
    CHECK(dense->activity_regularizer == regularizers::L2(0.5f));
    json bad = config;
    bad["kernel_regularizer"] = {{"class_name", "OrthogonalRegularizer"}, {"config", {{"factor", 0.01}}}};
    CHECK(message_of([&] { layers::layer_from_config("Dense", bad, source); }) ==
          "Layer \"d\" (Dense) in file 'model.h5', field `kernel_regularizer`: regularizer 'OrthogonalRegularizer' is "
          "not supported (kerascpp has L1, L2 and L1L2)");
    bad = config;
    bad["kernel_regularizer"] = {{"class_name", "L2"}, {"config", {{"l2", -0.5}}}};
    CHECK(message_of([&] { layers::layer_from_config("Dense", bad, source); }) ==
          "Layer \"d\" (Dense) in file 'model.h5', field `kernel_regularizer`: Invalid value for argument l2: expected a "
          "non-negative float.Received: l2=-0.5");
}

TEST_CASE("pretrained embeddings: Embedding(..., {.weights = matrix, .trainable = false}) keeps GloVe-style vectors fixed") {
    const Tensor vectors = wavy({5, 3}, 0.1, 0.9, 1.0);
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({4}, {.dtype = DType::int32}));
    model->add(layers::Embedding(5, 3, {.weights = vectors, .name = "glove", .trainable = false}));
    model->add(layers::GlobalAveragePooling1D());
    model->add(layers::Dense(1, {.kernel_regularizer = "l2", .name = "out"}));
    const Tensor ids = Tensor::from_rows(std::vector<std::vector<int32_t>>{{1, 2, 3, 4}, {0, 4, 4, 1}});
    const auto glove = model->get_layer("glove");
    CHECK(values_of(glove->get_weights()[0]) == values_of(vectors));
    CHECK(glove->get_config()["trainable"] == false);
    CHECK(glove->trainable_weights().empty());
    // A row of the output is the mean of the ids' vectors.
    const Tensor pooled = (*glove)(ids);
    CHECK(values_of(pooled).at(3) == doctest::Approx(values_of(vectors).at(6)));
    const Tensor dense_before = model->get_layer("out")->get_weights()[0];
    model->compile(optimizers::SGD(0.5f), "mse");
    model->fit(ids, floats({1.0, -1.0}, {2, 1}), {.batch_size = 2, .epochs = 2, .verbose = 0});
    CHECK(values_of(glove->get_weights()[0]) == values_of(vectors));   // frozen
    CHECK(values_of(model->get_layer("out")->get_weights()[0]) != values_of(dense_before));   // the rest trains
    CHECK(message_of([&] { layers::Embedding(6, 3, {.weights = vectors}); }).find(
              "weight shape (6, 3) is not compatible with provided weight shape (5, 3)") != std::string::npos);
}

TEST_CASE("initializers::Constant(value): filled weights, Keras 3's config, read from Keras's configs") {
    layers::Dense dense(3, {.kernel_initializer = initializers::Constant(0.25f), .bias_initializer = initializers::Constant(-1.5f)});
    dense.build_for({-1, 2});
    CHECK(values_of(dense.get_weights()[0]) == Vec(6, 0.25));
    CHECK(values_of(dense.get_weights()[1]) == Vec(3, -1.5));
    CHECK(dense.get_config()["kernel_initializer"] ==
          nlohmann::json::parse(R"({"module": "keras.initializers", "class_name": "Constant", "config": {"value": 0.25},
                                   "registered_name": null})"));
    CHECK(initializers::from_config(nlohmann::json::parse(R"({"class_name": "Constant", "config": {"value": 0.1}})"), "x") ==
          initializers::Constant(0.1f));
    CHECK(message_of([] { initializers::from_config(nlohmann::json::parse(
                              R"({"class_name": "Constant", "config": {"value": [[1, 2]]}})"), "layer \"e\""); }) ==
          "layer \"e\": Constant with value=[[1,2]] is not supported (only a number; give a pretrained matrix to "
          "Embedding's weights instead)");
    CHECK(message_of([] { initializers::check_name("constant(x)"); }) == "Could not interpret initializer identifier: constant(x)");
}
