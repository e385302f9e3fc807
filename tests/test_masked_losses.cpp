// Losses and metrics that skip masked steps (Keras's apply_mask), and compile()'s loss_weights and
// per-output metrics. Checked against REAL Keras 3 (tests/fixtures/masked_losses_keras.json, written
// by gen_masked_loss_fixtures.py), against naive double-precision formulas written here, and against
// finite differences for the gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

namespace {

nlohmann::json fixture() {
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/masked_losses_keras.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

Tensor tensor_of(const nlohmann::json& a, DType dtype = DType::float32) {
    Shape shape = a["shape"].get<Shape>();
    const auto values = a["values"].get<std::vector<double>>();
    if (dtype == DType::int32) return Tensor(std::vector<int32_t>(values.begin(), values.end()), shape);
    return floats(values, shape);
}

std::vector<Tensor> tensors_of(const nlohmann::json& list) {
    std::vector<Tensor> out;
    for (const auto& a : list) out.push_back(tensor_of(a));
    return out;
}

void check_logs(const Logs& ours, const nlohmann::json& keras_logs, double tol) {
    for (const auto& [k, value] : keras_logs.items()) {
        const std::string key = k;   // INFO's lambda cannot capture a structured binding in clang 14
        INFO(key);
        CHECK(ours.at(key) == doctest::Approx(value.get<double>()).epsilon(tol));
    }
}

void check_weights(const Model& model, const nlohmann::json& expected, double tol) {
    const auto ours = model.get_weights();
    REQUIRE(ours.size() == expected.size());
    for (size_t i = 0; i < ours.size(); ++i) {
        const auto want = expected[i]["values"].get<std::vector<double>>();
        const auto got = values_of(ours[i]);
        REQUIRE(got.size() == want.size());
        for (size_t j = 0; j < got.size(); ++j) CHECK(std::fabs(got[j] - want[j]) < tol);
    }
}

// The fixture's three models (see gen_masked_loss_fixtures.py).
std::shared_ptr<Sequential> masked_model(const std::string& name) {
    auto model = std::make_shared<Sequential>();
    if (name == "mse") {
        model->add(layers::Input({4, 2}));
        model->add(std::make_shared<layers::Masking>(0.0f));
        model->add(std::make_shared<layers::Dense>(2));
        return model;
    }
    model->add(layers::Input({4}, {.dtype = DType::int32}));
    model->add(std::make_shared<layers::Embedding>(6, 3, layers::EmbeddingOptions{.mask_zero = true}));
    model->add(std::make_shared<layers::Dense>(name == "sparse" ? 3 : 1,
                                               layers::DenseOptions{.activation = name == "sparse" ? "softmax" : "sigmoid"}));
    return model;
}

struct Case {
    std::string name, loss, metric;
    Tensor x, y;
    std::vector<Tensor> weights;
};

Case case_of(const nlohmann::json& c) {
    const std::string name = c["name"];
    const bool ids = name != "mse";
    return {name, name == "sparse" ? "sparse_categorical_crossentropy" : (name == "binary" ? "binary_crossentropy" : "mse"),
            name == "mse" ? "mae" : "accuracy", tensor_of(c["x"], ids ? DType::int32 : DType::float32),
            tensor_of(c["y"], name == "sparse" ? DType::int32 : DType::float32), tensors_of(c["weights"])};
}

std::shared_ptr<Sequential> compiled(const Case& c) {
    auto model = masked_model(c.name);
    model->build(c.x.shape());
    model->set_weights(c.weights);
    model->compile(optimizers::SGD(0.5f), c.loss, {c.metric});
    return model;
}

}  // namespace

TEST_CASE("masked outputs: train_on_batch, evaluate and fit match real Keras 3 (loss, metrics, weights)") {
    const auto fx = fixture();
    for (const auto& c : fx["cases"]) {
        const Case k = case_of(c);
        INFO(k.name << " (Keras " << fx["keras_version"].get<std::string>() << ")");
        auto model = compiled(k);
        // Rows 0..2: the third row is fully masked.
        const Logs step = model->train_on_batch(k.x.slice_rows(0, 3), k.y.slice_rows(0, 3));
        check_logs(step, c["train_on_batch"], 1e-6);
        check_weights(*model, c["weights_after_step"], 1e-6);
        // Batches of 2, 2 and 1 rows: the batch losses weigh by batch size, the metric by real steps.
        model = compiled(k);
        check_logs(model->evaluate(k.x, k.y, {.batch_size = 2, .verbose = 0}), c["evaluate"], 1e-6);
        model = compiled(k);
        const auto history = model->fit(k.x, k.y, {.batch_size = 2, .epochs = 1, .shuffle = false, .verbose = 0});
        for (const auto& [k, value] : c["fit"].items()) {
            const std::string key = k;   // INFO's lambda cannot capture a structured binding in clang 14
            INFO(key);
            CHECK(history[key].at(0) == doctest::Approx(value.get<double>()).epsilon(1e-6));
        }
        check_weights(*model, c["weights_after_fit"], 1e-6);
    }
}

TEST_CASE("masked steps' targets change nothing: garbage there gives the same loss, metrics and weights") {
    const auto fx = fixture();
    for (const auto& c : fx["cases"]) {
        const Case k = case_of(c);
        INFO(k.name);
        // Garbage at every masked step (valid class ids for the sparse loss, as its id check covers all).
        Tensor garbage = k.y.clone();
        const Tensor x = k.x;
        const int64_t steps = x.dim(0) * x.dim(1);
        const int64_t per_step = garbage.numel() / steps;
        for (int64_t s = 0; s < steps; ++s) {
            bool masked = true;
            const int64_t features = x.numel() / steps;
            for (int64_t f = 0; f < features; ++f) masked = masked && x.item(s * features + f) == 0.0;
            if (!masked) continue;
            for (int64_t j = 0; j < per_step; ++j) {
                if (garbage.dtype() == DType::int32) garbage.data<int32_t>()[s * per_step + j] = 2 - static_cast<int32_t>(x.item(s) + s % 3) % 3;
                else garbage.data<float>()[s * per_step + j] = 37.5f + static_cast<float>(j);
            }
        }
        REQUIRE(values_of(garbage) != values_of(k.y));
        auto a = compiled(k), b = compiled(k);
        const Logs la = a->train_on_batch(x, k.y), lb = b->train_on_batch(x, garbage);
        CHECK(la.at("loss") == lb.at("loss"));
        CHECK(la.at(k.metric) == lb.at(k.metric));
        CHECK(values_of(a->get_weights()[0]) == values_of(b->get_weights()[0]));
        CHECK(values_of(a->get_weights()[1]) == values_of(b->get_weights()[1]));
    }
}

namespace {

// Naive per-step losses in double (one step = the last axis of K values), written from Keras's formulas.
double clip(double p) { return std::min(std::max(p, double(1e-7f)), double(1.0f - 1e-7f)); }
double naive_step_loss(const std::string& loss, const std::vector<double>& y, const std::vector<double>& p) {
    const size_t K = p.size();
    double sum = 0.0;
    if (loss == "sparse_categorical_crossentropy" || loss == "categorical_crossentropy") {
        double S = 0.0;
        for (double v : p) S += v;
        for (size_t j = 0; j < K; ++j) {
            const double t = loss == "sparse_categorical_crossentropy" ? (static_cast<size_t>(y[0]) == j) : y[j];
            sum -= t * std::log(clip(p[j] / S));
        }
        return sum;
    }
    for (size_t j = 0; j < K; ++j) {
        if (loss == "binary_crossentropy") sum -= y[j] * std::log(clip(p[j])) + (1 - y[j]) * std::log(1 - clip(p[j]));
        else if (loss == "mean_squared_error") sum += (p[j] - y[j]) * (p[j] - y[j]);
        else sum += std::fabs(p[j] - y[j]);
    }
    return sum / static_cast<double>(K);
}

// sum over real steps of the step loss / number of real steps (0 when there are none).
double naive_masked_mean(const std::string& loss, const Tensor& y, const Tensor& p, const std::vector<double>& mask) {
    const int64_t K = p.dim(-1), steps = p.numel() / K, ky = y.numel() / steps;
    double sum = 0.0, valid = 0.0;
    for (int64_t s = 0; s < steps; ++s) {
        if (mask[s] == 0.0) continue;
        std::vector<double> ys, ps;
        for (int64_t j = 0; j < ky; ++j) ys.push_back(y.item(s * ky + j));
        for (int64_t j = 0; j < K; ++j) ps.push_back(p.item(s * K + j));
        sum += naive_step_loss(loss, ys, ps);
        valid += 1.0;
    }
    return valid > 0 ? sum / valid : 0.0;
}

}  // namespace

TEST_CASE("every loss's masked mean and gradient match naive double formulas and finite differences") {
    const Shape shape{3, 4, 3};
    const std::vector<double> mask_values = {1, 1, 0, 1, /* fully masked row: */ 0, 0, 0, 0, /**/ 0, 1, 1, 1};
    const Tensor mask = floats(mask_values, {3, 4});
    std::vector<double> probs, targets, ids;
    for (int i = 0; i < 36; ++i) {
        probs.push_back(0.1 + 0.8 * std::fabs(std::sin(1.3 * i + 0.4)));
        targets.push_back(i % 5 == 0 ? 1.0 : 0.0);
    }
    for (int s = 0; s < 12; ++s) ids.push_back(s % 3);
    for (const std::string name : {"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
                                   "mean_squared_error", "mean_absolute_error"}) {
        INFO(name);
        const auto loss = losses::get(name);
        const Tensor y = name == "sparse_categorical_crossentropy" ? Tensor(std::vector<int32_t>(ids.begin(), ids.end()), {3, 4})
                                                                     : floats(targets, shape);
        Tensor p = floats(probs, shape);
        Tensor grad;
        const double value = loss->compute_masked(y, p, mask, &grad);
        CHECK(value == doctest::Approx(naive_masked_mean(name, y, p, mask_values)).epsilon(1e-12));
        // Masked steps get no gradient; the rest match central differences of the naive masked mean.
        for (int64_t i = 0; i < p.numel(); ++i) {
            const float original = p.data<float>()[i];
            const double h = 1e-3;
            p.data<float>()[i] = original + static_cast<float>(h);
            const double up = naive_masked_mean(name, y, p, mask_values);
            p.data<float>()[i] = original - static_cast<float>(h);
            const double down = naive_masked_mean(name, y, p, mask_values);
            p.data<float>()[i] = original;
            const double fd = (up - down) / (2 * h);
            if (mask_values[i / 3] == 0.0) CHECK(grad.item(i) == 0.0);
            else CHECK(grad.item(i) == doctest::Approx(fd).epsilon(2e-3).scale(1e-3));
        }
        // A fully masked batch: Keras's divide_no_nan gives 0, with zero gradient.
        const double none = loss->compute_masked(y, p, floats(std::vector<double>(12, 0.0), {3, 4}), &grad);
        CHECK(none == 0.0);
        for (double g : values_of(grad)) CHECK(g == 0.0);
        // No mask = the plain mean.
        CHECK(loss->compute_masked(y, p, Tensor(), nullptr) == doctest::Approx(loss->compute(y, p, nullptr)).epsilon(1e-15));
        CHECK(loss->compute(y, p, nullptr) ==
              doctest::Approx(naive_masked_mean(name, y, p, std::vector<double>(12, 1.0))).epsilon(1e-12));
    }
}

TEST_CASE("masked metrics: the mean over real steps, binary_accuracy averaging a step's elements; metric_sum agrees") {
    // Two steps per sample, two samples; sample 1's second step is masked.
    const Tensor mask = floats({1, 1, 1, 0}, {2, 2});
    const Tensor y = floats({1, 0, /**/ 1, 1, /**/ 0, 0, /**/ 1, 1}, {2, 2, 2});
    const Tensor p = floats({0.9, 0.2, /**/ 0.1, 0.7, /**/ 0.6, 0.3, /**/ 0.0, 0.0}, {2, 2, 2});
    metrics::BinaryAccuracy acc;
    acc.update_state_masked(y, p, mask);
    // Step matches: (1 + 1) / 2, (0 + 1) / 2, (0 + 1) / 2; the masked step (0 / 2) is skipped.
    CHECK(acc.result() == doctest::Approx((1.0 + 0.5 + 0.5) / 3).epsilon(1e-12));
    metrics::MeanAbsoluteError mae;
    mae.update_state_masked(y, p, mask);
    CHECK(mae.result() == doctest::Approx(((0.1 + 0.2) / 2 + (0.9 + 0.3) / 2 + (0.6 + 0.3) / 2) / 3).epsilon(1e-6));
    // The backend's masked sum, turned into the running mean, gives the same.
    auto& cpu = backend::get(Device::cpu());
    metrics::BinaryAccuracy acc2;
    acc2.add_masked_position_sum(cpu.metric_sum(*acc2.device_spec(), y, p, mask).item(0), mask);
    CHECK(acc2.result() == doctest::Approx(acc.result()).epsilon(1e-6));
    metrics::MeanAbsoluteError mae2;
    mae2.add_masked_position_sum(cpu.metric_sum(*mae2.device_spec(), y, p, mask).item(0), mask);
    CHECK(mae2.result() == doctest::Approx(mae.result()).epsilon(1e-6));
    // And Backend::loss with a mask is the host's masked loss.
    const auto bce = losses::get("binary_crossentropy");
    Tensor g1, g2;
    CHECK(cpu.loss(*bce->device_spec(), y, p, mask, &g1).item(0) ==
          doctest::Approx(bce->compute_masked(y, p, mask, &g2)).epsilon(1e-6));
    CHECK(values_of(g1) == values_of(g2));
}

TEST_CASE("a mask of the wrong shape, and losses / metrics without a masked form, are ValueErrors") {
    const Tensor y = floats({1, 0, 1, 0}, {2, 2}), p = floats({0.5, 0.5, 0.5, 0.5}, {2, 2});
    CHECK(message_of<ValueError>([&] { losses::get("mse")->compute_masked(y, p, floats({1, 1, 0, 1}, {2, 2}), nullptr); }) ==
          "The output's mask has shape (2, 2), but a loss or metric needs one mask value per step of the output (2, 2) "
          "(its shape without the last axis, (2,))");
    struct Custom : losses::Loss {
        std::string name() const override { return "custom"; }
        double compute(const Tensor&, const Tensor&, Tensor*) const override { return 0.0; }
    };
    CHECK(message_of<ValueError>([&] { Custom().compute_masked(y, p, floats({1, 0}, {2}), nullptr); }) ==
          "Loss 'custom' cannot skip masked steps: it only implements compute(y_true, y_pred, grad). Override "
          "compute_masked(), or drop the mask before the output (e.g. no mask_zero / Masking)");
    CHECK(Custom().compute_masked(y, p, Tensor(), nullptr) == 0.0);
    metrics::Mean mean("m");
    CHECK(message_of<ValueError>([&] { mean.update_state_masked(y, p, floats({1, 0}, {2})); }) ==
          "Metric 'm' cannot skip masked steps: it only implements update_state(y_true, y_pred). Override "
          "update_state_masked(), or drop the mask before the output");
}

namespace {

std::shared_ptr<Model> two_heads(const nlohmann::json& f) {
    const auto features = Input({3}, {.name = "features"});
    const auto cls = (*share(layers::Dense(1, {.activation = "sigmoid", .name = "cls"})))(features);
    const auto reg = (*share(layers::Dense(2, {.name = "reg"})))(features);
    auto model = std::make_shared<Model>(std::vector<KerasTensor>{features}, std::vector<KerasTensor>{cls, reg}, "two_heads");
    model->set_weights(tensors_of(f["weights"]));
    return model;
}

}  // namespace

TEST_CASE("compile(loss_weights, one metric list per output) matches Keras 3: weighted total, unweighted per-output logs") {
    const auto f = fixture()["loss_weights"];
    const std::vector<Tensor> x{tensor_of(f["x"])}, y = tensors_of(f["y"]);
    auto model = two_heads(f);
    model->compile(optimizers::SGD(0.5f), std::vector<std::string>{"binary_crossentropy", "mse"},
                   CompileOptions{.per_output_metrics = {{"accuracy"}, {"mae"}}, .loss_weights = {0.3, 2.0}});
    check_logs(model->evaluate(x, y, {.batch_size = 4, .verbose = 0}), f["evaluate"], 1e-6);
    model = two_heads(f);
    model->compile(optimizers::SGD(0.5f), std::vector<std::string>{"binary_crossentropy", "mse"},
                   CompileOptions{.metrics_by_output = {{"cls", {"accuracy"}}, {"reg", {"mae"}}},
                                  .loss_weights_by_output = {{"reg", 2.0}, {"cls", 0.3}}});
    CHECK(model->loss_weights() == std::vector<double>{0.3, 2.0});
    model->fit(x, y, {.batch_size = 6, .epochs = 1, .shuffle = false, .verbose = 0});
    check_weights(*model, f["weights_after_step"], 1e-6);
}

TEST_CASE("a Keras 3 .h5 file with loss_weights and per-output metrics loads compiled the same; ours round-trips") {
    const auto f = fixture()["loss_weights"];
    const std::vector<Tensor> x{tensor_of(f["x"])}, y = tensors_of(f["y"]);
    const auto loaded = models::load_model(std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/keras3_loss_weights.h5");
    CHECK(loaded->loss_weights() == std::vector<double>{0.3, 2.0});
    CHECK(loaded->compile_options().per_output_metrics == std::vector<std::vector<std::string>>{{"accuracy"}, {"mae"}});
    check_logs(loaded->evaluate(x, y, {.batch_size = 4, .verbose = 0}), f["evaluate"], 1e-6);

    const auto path = std::filesystem::temp_directory_path() / "kerascpp_loss_weights_by_name.h5";
    auto model = two_heads(f);
    model->compile("sgd", std::vector<std::string>{"binary_crossentropy", "mse"},
                   CompileOptions{.metrics_by_output = {{"reg", {"mae", "mse"}}}, .loss_weights_by_output = {{"cls", 0.5}, {"reg", 4.0}}});
    model->save(path.string());
    const auto back = models::load_model(path.string());
    CHECK(back->loss_weights() == std::vector<double>{0.5, 4.0});
    CHECK(back->compile_options().metrics_by_output == std::map<std::string, std::vector<std::string>>{{"reg", {"mae", "mse"}}});
    const auto logs = back->evaluate(x, y, {.verbose = 0});
    CHECK(logs.at("loss") == doctest::Approx(0.5 * logs.at("cls_loss") + 4.0 * logs.at("reg_loss")).epsilon(1e-6));
    CHECK(logs.items().size() == 5);   // loss, cls_loss, reg_loss, reg_mae, reg_mse
    std::filesystem::remove(path);
}

TEST_CASE("compile() options: wrong lengths, unknown output names and two forms at once are Keras-style ValueErrors") {
    const auto f = fixture()["loss_weights"];
    auto model = two_heads(f);
    const std::vector<std::string> losses{"binary_crossentropy", "mse"};
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.loss_weights = {1.0}}); }) ==
          "`loss_weights` must match the number of losses, got 2 losses and 1 weights.");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.loss_weights_by_output = {{"cls", 1.0}, {"head", 2.0}}}); }) ==
          "Expected keys ['cls', 'reg'] in loss_weights dict, but found loss_weights.keys()=['cls', 'head']");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.per_output_metrics = {{"mae"}}}); }) ==
          "Invalid `metrics`: model \"two_heads\" has 2 output(s) ['cls', 'reg'], but `per_output_metrics` holds 1 list(s) "
          "(one list of metrics per output, in order)");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.metrics_by_output = {{"head", {"mae"}}}}); }) ==
          "Invalid `metrics`: 'head' is not an output of model \"two_heads\". The outputs are ['cls', 'reg']");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.metrics = {"mae"}, .per_output_metrics = {{"mae"}, {}}}); }) ==
          "compile(): give the metrics in one form: `metrics` (every output), `per_output_metrics` (one list per output) "
          "or `metrics_by_output` (by output name)");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.loss_weights = {1, 2}, .loss_weights_by_output = {{"cls", 1.0}}}); }) ==
          "compile(): give `loss_weights` (a list, one per output) or `loss_weights_by_output` (by output name), not both");
    CHECK(message_of<ValueError>([&] { model->compile("sgd", losses, CompileOptions{.per_output_metrics = {{"mae"}, {"nope"}}}); }) ==
          "Could not interpret metric identifier: nope");
}
