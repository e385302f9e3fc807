// Learning-rate schedules (keras::optimizers::schedules): each schedule's value against its formula
// written out independently here in double and against REAL Keras 3's values
// (tests/fixtures/gen_lr_schedule_fixtures.py), Keras's configs both ways, an optimizer stepping with a
// schedule, a real Keras 3 file with Adam(learning_rate=PolynomialDecay(...)) loaded, resumed and
// saved again, and Keras's messages for bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>

#include <nlohmann/json.hpp>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/dense.hpp"
#include "keras/model.hpp"
#include "keras/models.hpp"
#include "keras/optimizers.hpp"
#include "saving/training_config.hpp"
#include "test_helpers.hpp"

using namespace keras;
using namespace keras::optimizers;
using namespace keras::optimizers::schedules;
using nlohmann::json;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "schedules";

const json& fixtures() {
    static const json data = [] {
        std::ifstream in(kFixtures / "lr_schedules_keras.json");
        REQUIRE(in.good());
        return json::parse(in);
    }();
    return data;
}

std::string temp_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / "kerascpp_test_schedules";
    fs::create_directories(dir);
    return (dir / name).string();
}

bool close(double got, double want, double rtol) { return std::abs(got - want) <= rtol * std::abs(want); }

// ---- the formulas of learning_rate_schedule.py, written step by step (no shared code with the library)

using Formula = std::function<double(double step)>;

double cosine_restarts_by_walking(double lr, double first, double t_mul, double m_mul, double alpha, double step) {
    // Walk the periods one by one rather than use the closed form the library uses.
    double start = 0.0, length = first, factor = 1.0;
    while (step >= start + length) {
        start += length;
        length *= t_mul;
        factor *= m_mul;
    }
    const double fraction = (step - start) / length;
    const double cosine = 0.5 * factor * (1.0 + std::cos(std::numbers::pi * fraction));
    return lr * ((1.0 - alpha) * cosine + alpha);
}

double cosine(double lr, double decay_steps, double alpha, double step) {
    const double s = std::min(step, decay_steps);
    return lr * ((1.0 - alpha) * 0.5 * (1.0 + std::cos(std::numbers::pi * s / decay_steps)) + alpha);
}

double polynomial(double lr, double end, double decay_steps, double power, bool cycle, double step) {
    if (cycle) {
        const double periods = step == 0 ? 1.0 : std::ceil(step / decay_steps);
        return (lr - end) * std::pow(1.0 - step / (decay_steps * periods), power) + end;
    }
    return (lr - end) * std::pow(1.0 - std::min(step, decay_steps) / decay_steps, power) + end;
}

// The independent formula for each case of the fixture file (same arguments as the generator's).
const std::map<std::string, Formula>& formulas() {
    static const std::map<std::string, Formula> table = {
        {"exponential", [](double s) { return 0.1 * std::pow(0.5, s / 10); }},
        {"exponential_staircase", [](double s) { return 0.1 * std::pow(0.5, std::floor(s / 10)); }},
        {"inverse_time", [](double s) { return 0.2 / (1 + 0.3 * s / 5); }},
        {"inverse_time_staircase", [](double s) { return 0.2 / (1 + 0.3 * std::floor(s / 5)); }},
        {"polynomial", [](double s) { return polynomial(0.1, 0.0001, 100, 1.0, false, s); }},
        {"polynomial_power_end", [](double s) { return polynomial(0.1, 0.01, 40, 2.0, false, s); }},
        {"polynomial_cycle", [](double s) { return polynomial(0.1, 0.01, 30, 0.5, true, s); }},
        {"piecewise", [](double s) { return s <= 10 ? 1.0 : s <= 50 ? 0.5 : s <= 100 ? 0.1 : 0.01; }},
        {"cosine", [](double s) { return cosine(0.1, 100, 0.1, s); }},
        {"cosine_warmup", [](double s) { return s < 20 ? 0.2 * s / 20 : cosine(0.2, 80, 0.05, s - 20); }},
        {"cosine_restarts", [](double s) { return cosine_restarts_by_walking(0.1, 10, 2.0, 1.0, 0.1, s); }},
        {"cosine_restarts_mul", [](double s) { return cosine_restarts_by_walking(0.1, 10, 1.5, 0.8, 0.1, s); }},
        {"cosine_restarts_t1", [](double s) { return cosine_restarts_by_walking(0.1, 8, 1.0, 0.9, 0.2, s); }},
    };
    return table;
}

// The fixture's schedules built with the C++ options (the same arguments as the generator's).
const std::map<std::string, SchedulePtr>& built_schedules() {
    static const std::map<std::string, SchedulePtr> table = {
        {"exponential", std::make_shared<ExponentialDecay>(ExponentialDecayOptions{0.1, 10, 0.5})},
        {"exponential_staircase", std::make_shared<ExponentialDecay>(ExponentialDecayOptions{
             .initial_learning_rate = 0.1, .decay_steps = 10, .decay_rate = 0.5, .staircase = true})},
        {"inverse_time", std::make_shared<InverseTimeDecay>(InverseTimeDecayOptions{0.2, 5, 0.3})},
        {"inverse_time_staircase", std::make_shared<InverseTimeDecay>(InverseTimeDecayOptions{
             .initial_learning_rate = 0.2, .decay_steps = 5, .decay_rate = 0.3, .staircase = true})},
        {"polynomial", std::make_shared<PolynomialDecay>(PolynomialDecayOptions{.initial_learning_rate = 0.1,
                                                                                .decay_steps = 100})},
        {"polynomial_power_end", std::make_shared<PolynomialDecay>(PolynomialDecayOptions{
             .initial_learning_rate = 0.1, .decay_steps = 40, .end_learning_rate = 0.01, .power = 2.0})},
        {"polynomial_cycle", std::make_shared<PolynomialDecay>(PolynomialDecayOptions{
             .initial_learning_rate = 0.1, .decay_steps = 30, .end_learning_rate = 0.01, .power = 0.5,
             .cycle = true})},
        {"piecewise", std::make_shared<PiecewiseConstantDecay>(PiecewiseConstantDecayOptions{
             .boundaries = {10, 50, 100}, .values = {1.0, 0.5, 0.1, 0.01}})},
        {"cosine", std::make_shared<CosineDecay>(CosineDecayOptions{.initial_learning_rate = 0.1,
                                                                    .decay_steps = 100, .alpha = 0.1})},
        {"cosine_warmup", std::make_shared<CosineDecay>(CosineDecayOptions{
             .initial_learning_rate = 0.0, .decay_steps = 80, .alpha = 0.05, .warmup_target = 0.2,
             .warmup_steps = 20})},
        {"cosine_restarts", std::make_shared<CosineDecayRestarts>(CosineDecayRestartsOptions{
             .initial_learning_rate = 0.1, .first_decay_steps = 10, .alpha = 0.1})},
        {"cosine_restarts_mul", std::make_shared<CosineDecayRestarts>(CosineDecayRestartsOptions{
             .initial_learning_rate = 0.1, .first_decay_steps = 10, .t_mul = 1.5, .m_mul = 0.8, .alpha = 0.1})},
        {"cosine_restarts_t1", std::make_shared<CosineDecayRestarts>(CosineDecayRestartsOptions{
             .initial_learning_rate = 0.1, .first_decay_steps = 8, .t_mul = 1.0, .m_mul = 0.9, .alpha = 0.2})},
    };
    return table;
}

// Dense(1) on 3 features, as the generator's model ("sched" / "dense").
std::shared_ptr<Sequential> keras_fixture_model() {
    auto model = std::make_shared<Sequential>("sched");
    model->add(layers::Input({3}));
    model->add(layers::Dense(1, {.name = "dense"}));
    return model;
}

SchedulePtr fixture_polynomial() {
    return std::make_shared<PolynomialDecay>(PolynomialDecayOptions{
        .initial_learning_rate = 0.05, .decay_steps = 4, .end_learning_rate = 0.005, .power = 2.0});
}

Tensor tensor_of(const json& rows) {
    std::vector<double> values;
    for (const auto& row : rows) for (double v : row) values.push_back(v);
    return floats(values, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

// The model's weights against a list of nested lists, within rtol (plus a tiny atol for zeros).
void check_weights(const Model& model, const json& expected, double rtol) {
    const auto weights = model.get_weights();
    REQUIRE(weights.size() == expected.size());
    for (size_t i = 0; i < weights.size(); ++i) {
        const json flat = expected[i].flatten();
        const auto got = values_of(weights[i]);
        REQUIRE(got.size() == flat.size());
        size_t k = 0;
        for (const auto& [path, want] : flat.items()) {
            const double w = want.get<double>();
            CHECK_MESSAGE(std::abs(got[k] - w) <= rtol * std::abs(w) + 1e-7, "weight " << i << "[" << k << "] " << got[k]
                                                                               << " vs Keras " << w);
            ++k;
        }
    }
}

}  // namespace

TEST_CASE("every schedule matches its formula in double and Keras 3's values within 1e-6") {
    const json& cases = fixtures()["schedules"];
    REQUIRE(cases.size() == formulas().size());
    for (const auto& [name, entry] : cases.items()) {
        CAPTURE(name);
        const SchedulePtr built = built_schedules().at(name);
        const SchedulePtr loaded = deserialize(entry["config"]);
        const Formula& formula = formulas().at(name);
        const auto steps = entry["steps"].get<std::vector<double>>();
        const auto keras_values = entry["values"].get<std::vector<double>>();
        for (size_t i = 0; i < steps.size(); ++i) {
            CAPTURE(steps[i]);
            const double want = formula(steps[i]);
            CHECK(close((*built)(steps[i]), want, 1e-12));
            CHECK((*loaded)(steps[i]) == (*built)(steps[i]));
            // Keras computes in float32: its values agree to float32's precision.
            CHECK_MESSAGE(close((*built)(steps[i]), keras_values[i], 1e-6),
                          (*built)(steps[i]) << " vs Keras " << keras_values[i]);
        }
        // The C++ options give Keras's config, and Keras's config reads back to the same one.
        CHECK(serialize(*built) == entry["config"]);
        CHECK(serialize(*loaded) == entry["config"]);
    }
}

TEST_CASE("Keras 3's and tf-keras's serialized forms both load; an unknown class is named") {
    const json keras3 = serialize(*fixture_polynomial());
    CHECK(keras3["module"] == "keras.optimizers.schedules");
    CHECK(keras3["registered_name"].is_null());
    const json tf_keras = {{"class_name", "PolynomialDecay"}, {"config", keras3["config"]}};
    CHECK(serialize(*deserialize(tf_keras)) == keras3);
    // Defaults fill the fields a config leaves out, as Keras's constructor does.
    const auto minimal = deserialize({{"class_name", "CosineDecayRestarts"},
                                      {"config", {{"initial_learning_rate", 1.0}, {"first_decay_steps", 5}}}});
    CHECK(minimal->get_config()["t_mul"] == 2.0);
    CHECK(minimal->get_config()["name"] == "SGDRDecay");

    const std::string unknown = message_of<ValueError>([] {
        deserialize({{"class_name", "OneCycleDecay"}, {"config", json::object()}});
    });
    CHECK(unknown.find("Unknown learning-rate schedule 'OneCycleDecay'") != std::string::npos);
    CHECK(unknown.find("PolynomialDecay") != std::string::npos);
    CHECK(message_of<ValueError>([] {
              deserialize({{"class_name", "ExponentialDecay"}, {"config", {{"initial_learning_rate", 0.1}}}});
          }) == "Learning-rate schedule ExponentialDecay: its config has no `decay_steps`");
    CHECK(message_of<ValueError>([] {
              deserialize({{"class_name", "PiecewiseConstantDecay"},
                           {"config", {{"boundaries", "10"}, {"values", {1.0}}}}});
          }) == "Learning-rate schedule PiecewiseConstantDecay: `boundaries` should be a list of numbers, got \"10\"");

    // In a model file's optimizer config, the error names the file and the field.
    const json optimizer = {{"class_name", "Adam"},
                            {"config", {{"learning_rate", {{"class_name", "OneCycleDecay"}, {"config", json::object()}}}}}};
    const std::string in_file = message_of<ValueError>([&] { saving::optimizer_from_config(optimizer, "m.h5"); });
    CHECK(in_file.find("m.h5: optimizer field `learning_rate`: Unknown learning-rate schedule 'OneCycleDecay'") == 0);
}

TEST_CASE("bad arguments give Keras's messages") {
    CHECK(message_of<ValueError>([] { ExponentialDecay({.initial_learning_rate = 0.1, .decay_steps = -5}); }) ==
          "Argument `decay_steps` must be > 0. Received: decay_steps=-5");
    CHECK(message_of<ValueError>([] { InverseTimeDecay({.initial_learning_rate = 0.1, .decay_steps = 0}); }) ==
          "Argument `decay_steps` must be > 0. Received: decay_steps=0");
    CHECK(message_of<ValueError>([] { PolynomialDecay({.initial_learning_rate = 0.1, .decay_steps = -1}); }) ==
          "Argument `decay_steps` must be > 0. Received: decay_steps=-1");
    CHECK(message_of<ValueError>([] { CosineDecay({.initial_learning_rate = 0.1, .decay_steps = -2.5}); }) ==
          "Argument `decay_steps` must be > 0. Received: decay_steps=-2.5");
    CHECK(message_of<ValueError>([] { CosineDecayRestarts({.initial_learning_rate = 0.1, .first_decay_steps = 0}); }) ==
          "Argument `first_decay_steps` must be > 0. Received: first_decay_steps=0");
    CHECK(message_of<ValueError>([] { PiecewiseConstantDecay({.boundaries = {10, 50}, .values = {1.0, 0.5}}); }) ==
          "The length of boundaries should be 1 less than the length of values. Received: boundaries=[10, 50] of "
          "length 2, and values=[1.0, 0.5] of length 2.");
    // A config from a file goes through the same checks.
    CHECK(message_of<ValueError>([] {
              deserialize({{"class_name", "PolynomialDecay"},
                           {"config", {{"initial_learning_rate", 0.1}, {"decay_steps", -3}}}});
          }) == "Argument `decay_steps` must be > 0. Received: decay_steps=-3");
}

TEST_CASE("SGD with a schedule: the weight change of step k is -schedule(k) * grad") {
    // One weight w, no bias, x = 1, y = 0, mse: the gradient is 2 * w.
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({1}));
    model->add(layers::Dense(1, {.use_bias = false}));
    const auto schedule = std::make_shared<PiecewiseConstantDecay>(
        PiecewiseConstantDecayOptions{.boundaries = {1, 3}, .values = {0.1, 0.05, 0.02}});
    model->compile(SGD(schedule), "mse");
    model->set_weights({floats({1.0}, {1, 1})});
    const Tensor x = floats({1.0}, {1, 1}), y = floats({0.0}, {1, 1});
    CHECK(model->optimizer().learning_rate == 0.1f);   // Keras's optimizer.learning_rate: schedule(0)
    for (int k = 0; k < 6; ++k) {
        CAPTURE(k);
        const double w = model->get_weights()[0].item(0);
        model->train_on_batch(x, y);
        const double change = model->get_weights()[0].item(0) - w;
        CHECK(change == doctest::Approx(-(*schedule)(k) * 2.0 * w).epsilon(1e-6));
        CHECK(model->optimizer().iterations == k + 1);
        CHECK(model->optimizer().learning_rate == static_cast<float>((*schedule)(k + 1)));
    }
    CHECK(model->optimizer().get_config()["learning_rate"] == serialize(*schedule));
}

TEST_CASE("a scheduled learning rate is not settable by callbacks (Keras's error)") {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({1}));
    model->add(layers::Dense(1));
    model->compile(SGD(fixture_polynomial()), "mse");
    callbacks::LearningRateScheduler scheduler([](int, double lr) { return lr; });
    scheduler.set_model(model.get());
    Logs logs;
    const std::string message = message_of<RuntimeError>([&] { scheduler.on_epoch_begin(0, logs); });
    CHECK(message.find("created with a `LearningRateSchedule` object as its `learning_rate`") != std::string::npos);
}

TEST_CASE("a real Keras 3 .h5 with Adam(PolynomialDecay) loads, resumes at step 1 and saves the same config") {
    const json& f = fixtures()["model"];
    auto model = models::load_model((kFixtures / "adam_polynomial_k3.h5").string());
    auto& opt = model->optimizer();
    REQUIRE(opt.learning_rate_schedule());
    CHECK(opt.learning_rate_schedule()->class_name() == "PolynomialDecay");
    CHECK(opt.get_config() == f["optimizer_config"]);
    CHECK(opt.iterations == 1);
    CHECK(close(opt.learning_rate, f["lr_step_1"].get<double>(), 1e-6));
    check_weights(*model, f["weights_saved"], 0.0);

    // Saved again, loaded again: the same config and step count.
    const std::string path = temp_path("adam_polynomial_resaved.h5");
    model->save(path);
    auto reloaded = models::load_model(path);
    CHECK(reloaded->optimizer().get_config() == f["optimizer_config"]);
    CHECK(reloaded->optimizer().iterations == 1);

    // The next step uses schedule(1), as Keras's did.
    const Tensor x = tensor_of(f["x"]), y = tensor_of(f["y"]);
    for (auto* m : {model.get(), reloaded.get()}) {
        m->train_on_batch(x, y);
        CHECK(m->optimizer().iterations == f["iterations_after_next_step"].get<int64_t>());
        check_weights(*m, f["weights_after_next_step"], 1e-5);
    }
}

TEST_CASE("Keras 3 .weights.h5 with a scheduled Adam: iterations but no learning-rate variable, both ways") {
    const json& f = fixtures()["model"];
    auto model = keras_fixture_model();
    model->compile(Adam(fixture_polynomial()), "mse");
    model->load_weights((kFixtures / "adam_polynomial_k3.weights.h5").string());
    CHECK(model->optimizer().iterations == 1);
    check_weights(*model, f["weights_saved"], 0.0);

    const std::string path = temp_path("adam_polynomial_resaved.weights.h5");
    model->save_weights(path);
    auto again = keras_fixture_model();
    again->compile(Adam(fixture_polynomial()), "mse");
    again->load_weights(path);
    CHECK(again->optimizer().iterations == 1);

    const Tensor x = tensor_of(f["x"]), y = tensor_of(f["y"]);
    for (auto* m : {model.get(), again.get()}) {
        m->train_on_batch(x, y);
        check_weights(*m, f["weights_after_next_step"], 1e-5);
    }
}

TEST_CASE("every optimizer's learning_rate option takes a number or a schedule (docs/optimizers.md's forms)") {
    auto schedule = std::make_shared<PolynomialDecay>(PolynomialDecayOptions{
        .initial_learning_rate = 0.05, .decay_steps = 1000, .end_learning_rate = 0.001, .power = 2.0});
    const std::vector<OptimizerPtr> scheduled = {
        std::make_shared<Adam>(schedule), std::make_shared<SGD>(SGDOptions{.learning_rate = schedule, .momentum = 0.9}),
        std::make_shared<RMSprop>(RMSpropOptions{.learning_rate = schedule}),
        std::make_shared<Adagrad>(AdagradOptions{.learning_rate = schedule})};
    for (const auto& opt : scheduled) {
        CAPTURE(opt->name());
        CHECK(opt->learning_rate_schedule() == schedule);
        CHECK(opt->learning_rate == 0.05f);
        CHECK(opt->get_config()["learning_rate"] == serialize(*schedule));
    }
    // Numbers as before: no schedule, the rate as given.
    const Adam plain(0.001);
    CHECK(!plain.learning_rate_schedule());
    CHECK(plain.get_config()["learning_rate"] == 0.001);
    CHECK_NOTHROW(plain.check_learning_rate_settable());
}
