// Files saved by REAL tf.keras 2 (the tf_keras package, Keras 2.21; tests/fixtures/gen_tfkeras2_fixtures.py):
// a Sequential model of the issue-12 layers (convolution, pooling, normalization with moving statistics,
// noise, regularizers, constraints, shape layers) loads and predicts what tf.keras predicted, with and
// without its optimizer state in the file; optimizer state of tf.keras 2's legacy and current optimizers
// resumes training as tf.keras does; and a Keras 3 file whose InputLayer fixes batch_shape runs on
// other batch sizes and lengths (tests/fixtures/gen_input_batch_shape_fixtures.py).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::values_of;

namespace {

const std::string fixture_dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/tfkeras2/";

nlohmann::json fixtures() {
    std::ifstream in(fixture_dir + "fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

Tensor from_json(const nlohmann::json& a) {
    return test_helpers::floats(a["values"].get<std::vector<double>>(), a["shape"].get<Shape>());
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

// What f writes to stderr (the C stream the library's warnings go to).
template <typename F>
std::string stderr_of(F&& f) {
    std::fflush(stderr);
    const std::string path = "tfkeras2_stderr.txt";
    const int saved = dup(2);
    std::FILE* file = std::fopen(path.c_str(), "w");
    dup2(fileno(file), 2);
    f();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    std::fclose(file);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::remove(path.c_str());
    return text.str();
}

}  // namespace

TEST_CASE("A tf.keras 2 Sequential of the issue-12 layers predicts what tf.keras predicted") {
    const auto c = fixtures().at("stack_k2");
    const Tensor x = from_json(c["inputs"][0]);
    for (const std::string file : {"stack_k2.h5", "stack_k2_adam.h5"}) {
        INFO(file);
        auto model = models::load_model(fixture_dir + file);
        const Tensor y = model->predict(x, {.verbose = 0});
        CHECK(y.shape() == c["outputs"][0]["shape"].get<Shape>());
        check_close(values_of(y), c["outputs"][0]["values"].get<std::vector<double>>(), 1e-5);
    }
}

TEST_CASE("tf.keras 2's regularizers and constraints of Conv1D, SeparableConv1D and the normalizations are read") {
    auto model = models::load_model(fixture_dir + "stack_k2.h5");
    // tf.keras 2.21 writes {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}}
    const auto conv = model->get_layer("conv")->get_config();
    CHECK(conv["kernel_regularizer"]["class_name"] == "L2");
    CHECK(conv["kernel_regularizer"]["config"]["l2"].get<double>() == doctest::Approx(0.01));
    CHECK(conv["bias_constraint"]["class_name"] == "MaxNorm");
    const auto sep = model->get_layer("sep")->get_config();
    CHECK(sep["depthwise_regularizer"]["class_name"] == "L1");
    CHECK(sep["pointwise_constraint"]["class_name"] == "UnitNorm");
    CHECK(sep["bias_regularizer"].is_null());
    const auto out = model->get_layer("out")->get_config();
    CHECK(out["kernel_regularizer"]["class_name"] == "L1L2");
    CHECK(out["bias_constraint"]["class_name"] == "MinMaxNorm");
    // the penalties reach the weights: the conv kernel's joins the loss, its bias is projected
    auto conv_layer = model->get_layer("conv");
    bool kernel_penalized = false, bias_constrained = false;
    for (const auto& w : conv_layer->weights()) {
        if (w->name.find("kernel") != std::string::npos) kernel_penalized = w->regularizer.has_value();
        if (w->name.find("bias") != std::string::npos) bias_constrained = w->constraint.has_value();
    }
    CHECK(kernel_penalized);
    CHECK(bias_constrained);
    // and our own file of it loads back to the same predictions
    const auto c = fixtures().at("stack_k2");
    const Tensor x = from_json(c["inputs"][0]);
    const std::string path = "tfkeras2_stack_roundtrip.h5";
    model->save(path);
    auto again = models::load_model(path);
    check_close(values_of(again->predict(x, {.verbose = 0})), values_of(model->predict(x, {.verbose = 0})), 1e-6);
    CHECK(again->get_layer("sep")->get_config() == sep);
    std::remove(path.c_str());
}


TEST_CASE("A Keras 3 file whose InputLayer says batch_shape runs on another batch size and length, with tf.keras's warning") {
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/input_batch_shape.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    for (const std::string name : {"seq", "fn"}) {
        INFO(name);
        const auto& c = fixtures.at(name);
        Tensor x = test_helpers::floats(c["x"].get<std::vector<double>>(), c["x_shape"].get<Shape>());
        if (name == "seq") x = ops::cast(x, DType::int32);
        auto model = models::load_model(std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/input_batch_shape_" + name +
                                        "_k3.h5", {.compile = false});
        Tensor y;
        const std::string warning = stderr_of([&] { y = model->predict(x, {.verbose = 0}); });
        check_close(values_of(y), c["y"].get<std::vector<double>>(), 1e-5);
        const std::string expected = name == "seq" ? "shape (32, 500)" : "shape (8, 12, 3)";
        CHECK(warning.find("WARNING: Model was constructed with " + expected + " for input '") != std::string::npos);
        CHECK(warning.find("but it was called on an input with incompatible shape") != std::string::npos);
    }
}

TEST_CASE("Optimizer state in tf.keras 2 files (legacy 'Adam/iter:0', 'Adam/dense/kernel/m:0' and 2.11+ names): "
          "one more step matches tf.keras's") {
    const auto all = fixtures();
    for (const std::string name : {"legacy_adam", "legacy_rmsprop", "legacy_sgd", "adam", "rmsprop", "sgd"}) {
        INFO(name);
        const auto& c = all.at("opt_" + name);
        auto model = models::load_model(fixture_dir + "opt_" + name + ".h5");
        CHECK(model->optimizer().iterations == 2);   // two steps of fit before the save
        model->train_on_batch(from_json(c["inputs"][0]), from_json(c["inputs"][1]));
        const auto weights = model->trainable_weights();
        REQUIRE(weights.size() == c["outputs"].size());
        for (size_t k = 0; k < weights.size(); ++k) {
            INFO(weights[k]->name);
            check_close(values_of(weights[k]->value), c["outputs"][k]["values"].get<std::vector<double>>(), 1e-5);
        }
    }
}

TEST_CASE("Keras 2.2's positional optimizer state ('training/Adam/Variable:0', ...) resumes training") {
    // files built with h5py in Keras 2.2.4's layout from the legacy ones (gen_keras22_optimizer_fixtures.py)
    const auto all = fixtures();
    for (const std::string name : {"adam", "sgd", "rmsprop"}) {
        INFO(name);
        const auto& c = all.at("opt_legacy_" + name);
        auto model = models::load_model(fixture_dir + "opt_k22_" + name + ".h5");
        CHECK(model->optimizer().iterations == (name == "rmsprop" ? 0 : 2));   // Keras 2.2's RMSprop keeps no count
        model->train_on_batch(from_json(c["inputs"][0]), from_json(c["inputs"][1]));
        const auto weights = model->trainable_weights();
        REQUIRE(weights.size() == c["outputs"].size());
        for (size_t k = 0; k < weights.size(); ++k) {
            INFO(weights[k]->name);
            check_close(values_of(weights[k]->value), c["outputs"][k]["values"].get<std::vector<double>>(), 1e-5);
        }
    }
}
