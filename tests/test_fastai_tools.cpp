// fastai's training tools: lr_find (the exponential sweep, fastai's smoothed loss and early stop, the
// model and optimizer put back bit for bit, the three suggestions against an independent computation
// on fixed curves), the one-cycle schedule against fastai's formulas written out here in double,
// fine_tune's freezing and discriminative rates, `trainable` in the layers' options (summary counts,
// configs, save / load), and the docs/training.md example compiled and run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numbers>
#include <sstream>

#include "keras/keras.hpp"
#include "test_helpers.hpp"

#include "../docs/training/fastai_tools.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
namespace fs = std::filesystem;

namespace {

// y = 2 x0 - x1 + 0.5 on 64 points: a small regression every tool can train.
std::pair<Tensor, Tensor> regression_data(int64_t n = 64) {
    Tensor x({n, 2}, DType::float32), y({n, 1}, DType::float32);
    for (int64_t i = 0; i < n; ++i) {
        const float a = static_cast<float>(std::sin(0.7 * static_cast<double>(i))),
                    b = static_cast<float>(std::cos(1.3 * static_cast<double>(i)));
        x.data<float>()[2 * i] = a;
        x.data<float>()[2 * i + 1] = b;
        y.data<float>()[i] = 2 * a - b + 0.5f;
    }
    return {x, y};
}

std::shared_ptr<Sequential> small_model(optimizers::OptimizerPtr optimizer = std::make_shared<optimizers::Adam>(0.01)) {
    utils::set_random_seed(7);
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({2}));
    model->add(layers::Dense(8, "tanh"));
    model->add(layers::Dense(4, "tanh"));
    model->add(layers::Dense(1));
    model->compile(optimizer, "mse");
    return model;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Everything an optimizer step changes, copied: weights, each weight's slots, iterations, rate.
struct State {
    std::vector<Tensor> weights;
    std::vector<std::vector<Tensor>> slots;
    int64_t iterations;
    float learning_rate;
};

State state_of(const Model& model) {
    State s{model.get_weights(), {}, model.optimizer().iterations, model.optimizer().learning_rate};
    for (const VariablePtr& v : model.weights()) {
        std::vector<Tensor> copies;
        for (const Tensor& t : model.optimizer().slots(*v)) copies.push_back(t.clone());
        s.slots.push_back(copies);
    }
    return s;
}

void check_same_state(const State& a, const State& b) {
    CHECK(a.iterations == b.iterations);
    CHECK(std::memcmp(&a.learning_rate, &b.learning_rate, sizeof(float)) == 0);
    REQUIRE(a.weights.size() == b.weights.size());
    for (size_t i = 0; i < a.weights.size(); ++i) CHECK(same_bits(a.weights[i], b.weights[i]));
    REQUIRE(a.slots.size() == b.slots.size());
    for (size_t i = 0; i < a.slots.size(); ++i) {
        REQUIRE(a.slots[i].size() == b.slots[i].size());
        for (size_t k = 0; k < a.slots[i].size(); ++k) CHECK(same_bits(a.slots[i][k], b.slots[i][k]));
    }
}

// ---- fastai's rules, written out again here (loops over indices, no code shared with the library)

// fastai's valley.
double reference_valley(const std::vector<double>& lrs, const std::vector<double>& losses) {
    const int n = static_cast<int>(losses.size());
    std::vector<int> lds(static_cast<size_t>(n), 1);   // Python's list, indexed from the end when negative
    int max_start = 0, max_end = 0;
    for (int i = 1; i < n; ++i)
        for (int j = 0; j < i; ++j) {
            if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    const double sections = (max_end - max_start) / 3.0;
    const int idx = max_start + static_cast<int>(sections) + static_cast<int>(sections / 2);
    return lrs[static_cast<size_t>(idx >= 0 ? idx : n + idx)];
}

double reference_steep(const std::vector<double>& lrs, const std::vector<double>& losses) {
    double best = INFINITY, lr = NAN;
    for (size_t i = 1; i < losses.size(); ++i) {
        const double g = (losses[i] - losses[i - 1]) / std::log(lrs[i] / lrs[i - 1]);
        if (g < best) best = g, lr = lrs[i - 1];
    }
    return lr;
}

double reference_minimum(const std::vector<double>& lrs, const std::vector<double>& losses) {
    size_t at = 0;
    for (size_t i = 1; i < losses.size(); ++i)
        if (losses[i] < losses[at]) at = i;
    return lrs[at] / 10;
}

// fastai's combined_cos(pct, a, b, c) at pos, from sched_cos's formula.
double reference_one_cycle(double pct, double a, double b, double c, double pos) {
    const auto cos_anneal = [](double from, double to, double p) {
        return from + (1 + std::cos(std::numbers::pi * (1 - p))) * (to - from) / 2;
    };
    return pos < pct ? cos_anneal(a, b, pos / pct) : cos_anneal(b, c, (pos - pct) / (1 - pct));
}

// A model whose training steps return a fixed loss curve (train_step overridden), for the sweep's
// bookkeeping: the rates it was given and the losses it saw.
class ScriptedModel : public Sequential {
public:
    explicit ScriptedModel(std::vector<double> losses) : losses_(std::move(losses)) {
        add(layers::Input({2}));
        add(layers::Dense(1));
        compile(optimizers::SGD(0.1), "mse");
    }
    Logs train_step(const Batch&) override {
        rates.push_back(optimizer().learning_rate);
        Logs logs;
        logs.set("loss", losses_.at(rates.size() - 1));
        return logs;
    }
    std::vector<float> rates;

private:
    std::vector<double> losses_;
};

std::string temp_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / "kerascpp_test_fastai_tools";
    fs::create_directories(dir);
    return (dir / name).string();
}

}  // namespace

// ---------------------------------------------------------------- lr_find

TEST_CASE("lr_find: the rates are fastai's exponential sweep and the losses its debiased moving average") {
    std::vector<double> raw;
    for (int i = 0; i < 40; ++i) raw.push_back(1.0 + 0.25 * std::sin(i * 0.9));
    ScriptedModel model(raw);
    const auto [x, y] = regression_data(16);   // 4 batches of 4: the data is cycled 10 times
    const LRFinderResult r = model.lr_find(x, y, {.start_lr = 1e-5, .end_lr = 1.0, .num_it = 40, .batch_size = 4});
    REQUIRE(r.lrs.size() == 40);
    REQUIRE(r.losses.size() == 40);
    double avg = 0;
    for (int i = 0; i < 40; ++i) {
        const double lr = 1e-5 * std::pow(1e5, i / 40.0);
        CHECK(r.lrs[i] == doctest::Approx(lr).epsilon(1e-12));
        CHECK(model.rates[i] == static_cast<float>(lr));   // what the optimizer was set to
        avg = 0.98 * avg + 0.02 * raw[i];
        CHECK(r.losses[i] == doctest::Approx(avg / (1 - std::pow(0.98, i + 1))).epsilon(1e-12));
    }
    // The optimizer's rate is put back.
    CHECK(model.optimizer().learning_rate == 0.1f);
}

TEST_CASE("lr_find stops once the smoothed loss passes 4x its minimum (and at a NaN), unless stop_div is false") {
    std::vector<double> raw(30, 1.0);
    for (int i = 10; i < 30; ++i) raw[i] = 1.0 + 20.0 * (i - 9);   // diverging from batch 10
    const auto [x, y] = regression_data(8);
    {
        ScriptedModel model(raw);
        const LRFinderResult r = model.lr_find(x, y, {.num_it = 30, .batch_size = 8});
        // The first smoothed loss above 4 is the last one recorded.
        double avg = 0;
        size_t expected = 0;
        for (size_t i = 0; i < raw.size(); ++i) {
            avg = 0.98 * avg + 0.02 * raw[i];
            if (avg / (1 - std::pow(0.98, static_cast<double>(i + 1))) > 4.0) {
                expected = i + 1;
                break;
            }
        }
        REQUIRE(expected > 10);
        CHECK(r.losses.size() == expected);
        CHECK(r.losses.back() > 4.0);
    }
    {
        ScriptedModel model(raw);
        CHECK(model.lr_find(x, y, {.num_it = 30, .batch_size = 8, .stop_div = false}).losses.size() == 30);
    }
    {
        std::vector<double> with_nan(30, 1.0);
        with_nan[12] = NAN;
        ScriptedModel model(with_nan);
        CHECK(model.lr_find(x, y, {.num_it = 30, .batch_size = 8}).losses.size() == 13);
    }
    {
        ScriptedModel model(std::vector<double>(6, 1.0));   // fastai's minimum of 6 batches
        CHECK(model.lr_find(x, y, {.num_it = 2, .batch_size = 8}).lrs.size() == 6);
    }
}

TEST_CASE("lr_find puts the weights and the optimizer state back, bit for bit") {
    const auto [x, y] = regression_data();
    SUBCASE("after some training (Adam's slots exist)") {
        auto model = small_model();
        model->fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0});
        const State before = state_of(*model);
        const LRFinderResult r = model->lr_find(x, y, {.num_it = 30, .batch_size = 16});
        CHECK(r.lrs.size() >= 6);
        check_same_state(before, state_of(*model));
        // Training on from there gives what it gives without the sweep.
        auto twin = small_model();
        twin->fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0});
        model->fit(x, y, {.batch_size = 16, .epochs = 1, .verbose = 0});
        twin->fit(x, y, {.batch_size = 16, .epochs = 1, .verbose = 0});
        check_same_state(state_of(*twin), state_of(*model));
    }
    SUBCASE("before any training: no slots are left behind, SGD with momentum") {
        auto model = small_model(std::make_shared<optimizers::SGD>(optimizers::SGDOptions{.learning_rate = 0.05f, .momentum = 0.9f}));
        model->build({-1, 2});
        const State before = state_of(*model);
        model->lr_find(x, y, {.num_it = 12, .batch_size = 16});
        check_same_state(before, state_of(*model));
        for (const VariablePtr& v : model->weights()) CHECK(model->optimizer().slots(*v).empty());
        CHECK(model->optimizer().iterations == 0);
    }
}

TEST_CASE("lr_find on a real model suggests rates inside the sweep, and checks its options") {
    const auto [x, y] = regression_data();
    auto model = small_model();
    const LRFinderResult r = model->lr_find(x, y, {.batch_size = 8});
    REQUIRE(r.lrs.size() > 20);
    for (double s : {r.valley, r.steepest, r.minimum * 10}) {
        CHECK(s >= r.lrs.front());
        CHECK(s <= r.lrs.back());
    }
    CHECK(message_of<ValueError>([&] { model->lr_find(x, y, {.start_lr = 0}); }).find("start_lr") != std::string::npos);
    CHECK(message_of<ValueError>([&] { model->lr_find(x, y, {.num_it = 0}); }).find("num_it") != std::string::npos);
    // A rate that follows a schedule cannot be swept.
    auto scheduled = small_model(std::make_shared<optimizers::Adam>(
        std::make_shared<optimizers::schedules::ExponentialDecay>(
            optimizers::schedules::ExponentialDecayOptions{.initial_learning_rate = 0.01, .decay_steps = 10, .decay_rate = 0.9})));
    CHECK(message_of<RuntimeError>([&] { scheduled->lr_find(x, y); }).find("not settable") != std::string::npos);
}

TEST_CASE("the suggestions follow fastai's valley / steep / minimum on fixed curves") {
    // Curves with a plateau, a descent with bumps, a minimum and a divergence, and a noisy one.
    std::vector<std::vector<double>> curves;
    {
        std::vector<double> c;
        for (int i = 0; i < 100; ++i) {
            const double t = i / 99.0;
            c.push_back(2.0 - 1.5 / (1 + std::exp(-(t - 0.5) * 14)) + 0.05 * std::sin(i * 1.7) + (t > 0.85 ? (t - 0.85) * 30 : 0));
        }
        curves.push_back(c);
    }
    {
        std::vector<double> c;
        for (int i = 0; i < 73; ++i) c.push_back(1.0 + 0.3 * std::cos(i * 0.37) - 0.004 * i + 0.02 * std::sin(i * 5.1));
        curves.push_back(c);
    }
    for (const std::vector<double>& losses : curves) {
        const int num_it = 100;
        LRFinderResult r;
        for (size_t i = 0; i < losses.size(); ++i) r.lrs.push_back(1e-7 * std::pow(1e8, static_cast<double>(i) / num_it));
        r.losses = losses;
        suggest_learning_rates(r, num_it);
        // fastai looks at lrs[num_it // 10 : -5].
        const std::vector<double> lrs(r.lrs.begin() + num_it / 10, r.lrs.end() - 5);
        const std::vector<double> ls(losses.begin() + num_it / 10, losses.end() - 5);
        CHECK(r.valley == reference_valley(lrs, ls));
        CHECK(r.steepest == reference_steep(lrs, ls));
        CHECK(r.minimum == reference_minimum(lrs, ls));
    }
    // A hand-checked case: lrs 1..20 (num_it 10 skips 1), losses falling 10..3 then rising.
    LRFinderResult r;
    const std::vector<double> losses = {9, 10, 9, 8, 7.5, 6, 5.8, 5, 4, 3, 3.5, 5, 9, 12, 20, 30, 40, 50, 60, 70};
    for (int i = 1; i <= 20; ++i) r.lrs.push_back(i);
    r.losses = losses;
    suggest_learning_rates(r, 10);
    // Seen: losses[1..14] at lrs 2..15; the longest descent is 10 .. 3 (slice indices 0..8, 9
    // points); fastai's max_start = max_end - length = 8 - 9 = -1, sections = 3,
    // idx = -1 + 3 + 1 = 3 -> lr 5.
    CHECK(r.valley == 5);
    CHECK(r.minimum == doctest::Approx(1.0));    // loss 3 at lr 10
    CHECK(r.steepest == 9);                       // 4 -> 3 over log(10/9): -9.5, the steepest fall
    // fastai's index -1 (a two-point valley at the start, then a rise) is Python's last element.
    LRFinderResult edge{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11}};
    suggest_learning_rates(edge, 0);
    CHECK(edge.valley == 6);   // the slice is lrs 1..6 (the last 5 dropped): lrs[-1] = 6
    // A NaN cuts the curve; too short a curve gives NaN suggestions.
    r.losses[8] = NAN;
    suggest_learning_rates(r, 10);
    CHECK(r.minimum == doctest::Approx(0.8));     // loss 5 at lr 8 before the NaN
    LRFinderResult short_curve{{1, 2, 3}, {3, 2, 1}};
    suggest_learning_rates(short_curve, 100);
    CHECK(std::isnan(short_curve.valley));
    CHECK(std::isnan(short_curve.steepest));
    CHECK(std::isnan(short_curve.minimum));
}

// ---------------------------------------------------------------- one cycle

TEST_CASE("OneCycleScheduler's rate and momentum are fastai's combined cosines") {
    const callbacks::OneCycleScheduler one_cycle(0.01);
    for (double pct : {0.0, 0.05, 0.1, 0.2, 0.249, 0.25, 0.3, 0.5, 0.75, 0.9, 0.999}) {
        CHECK(one_cycle.learning_rate_at(pct) == doctest::Approx(reference_one_cycle(0.25, 0.01 / 25, 0.01, 0.01 / 1e5, pct)).epsilon(1e-13));
        CHECK(one_cycle.momentum_at(pct) == doctest::Approx(reference_one_cycle(0.25, 0.95, 0.85, 0.95, pct)).epsilon(1e-13));
    }
    CHECK(one_cycle.learning_rate_at(0.0) == doctest::Approx(0.0004));
    CHECK(one_cycle.learning_rate_at(0.25) == doctest::Approx(0.01));
    CHECK(one_cycle.momentum_at(0.25) == doctest::Approx(0.85));
    const callbacks::OneCycleScheduler custom(3.0, {.div = 10, .div_final = 100, .pct_start = 0.4, .moms = {0.9, 0.8, 0.7}});
    for (double pct : {0.0, 0.13, 0.4, 0.77})
        CHECK(custom.learning_rate_at(pct) == doctest::Approx(reference_one_cycle(0.4, 0.3, 3.0, 0.03, pct)).epsilon(1e-13));
    CHECK(message_of<ValueError>([] { callbacks::OneCycleScheduler(0.0); }).find("lr_max") != std::string::npos);
    CHECK(message_of<ValueError>([] { callbacks::OneCycleScheduler(1.0, {.moms = {0.9}}); }).find("moms") != std::string::npos);
    CHECK(message_of<ValueError>([] { callbacks::OneCycleScheduler(1.0, {.pct_start = 1.5}); }).find("pct_start") != std::string::npos);
}

TEST_CASE("fit_one_cycle sets the rate and momentum before every batch and logs them per epoch") {
    const auto [x, y] = regression_data();   // 64 rows, batches of 16: 4 steps per epoch
    auto model = small_model();
    std::vector<double> applied_lr, applied_beta;
    auto spy = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_batch_begin = [&](int64_t, Logs&) {
            applied_lr.push_back(model->optimizer().learning_rate);
            applied_beta.push_back(dynamic_cast<optimizers::Adam&>(model->optimizer()).beta_1);
        }});
    const callbacks::History history =
        model->fit_one_cycle(x, y, 3, 0.02, {.batch_size = 16, .shuffle = false, .verbose = 0, .callbacks = {spy}});
    REQUIRE(applied_lr.size() == 12);
    for (size_t s = 0; s < 12; ++s) {
        const double pos = static_cast<double>(s) / 12;
        CHECK(applied_lr[s] == doctest::Approx(reference_one_cycle(0.25, 0.02 / 25, 0.02, 0.02 / 1e5, pos)).epsilon(1e-6));
        CHECK(applied_beta[s] == doctest::Approx(reference_one_cycle(0.25, 0.95, 0.85, 0.95, pos)).epsilon(1e-6));
    }
    REQUIRE(history["learning_rate"].size() == 3);
    for (int e = 0; e < 3; ++e) {
        CHECK(history["learning_rate"][e] == doctest::Approx(applied_lr[4 * e + 3]).epsilon(1e-6));
        CHECK(history["momentum"][e] == doctest::Approx(applied_beta[4 * e + 3]).epsilon(1e-6));
    }
    CHECK(history["loss"].back() < history["loss"].front());
    CHECK(message_of<ValueError>([&] { model->fit_one_cycle(x, y, 2, 0.01, {.epochs = 5}); }).find("epochs") != std::string::npos);
    // Plain SGD keeps no momentum; its rate still follows the cycle.
    auto sgd = small_model(std::make_shared<optimizers::SGD>(0.1));
    const auto h = sgd->fit_one_cycle(x, y, 1, 0.1, {.batch_size = 16, .verbose = 0});
    CHECK(dynamic_cast<optimizers::SGD&>(sgd->optimizer()).momentum == 0.0f);
    CHECK_FALSE(std::any_of(h.history.begin(), h.history.end(), [](const auto& kv) { return kv.first == "momentum"; }));
}

// ---------------------------------------------------------------- fine_tune

TEST_CASE("fine_tune trains only the head while frozen, then everything at discriminative rates") {
    const auto [x, y] = regression_data();
    SUBCASE("frozen epochs leave the body's weights and optimizer state untouched") {
        auto model = small_model();
        model->build({-1, 2});
        const std::vector<Tensor> before = model->get_weights();
        model->fine_tune(x, y, 0, {.freeze_epochs = 2}, {.batch_size = 16, .verbose = 0});
        const std::vector<Tensor> after = model->get_weights();
        // Dense 1 and 2 (kernel, bias each) are the body, the last Dense the head.
        for (size_t i = 0; i < 4; ++i) CHECK(same_bits(before[i], after[i]));
        for (size_t i = 4; i < 6; ++i) CHECK_FALSE(same_bits(before[i], after[i]));
        const auto weights = model->weights();
        for (size_t i = 0; i < 4; ++i) CHECK(model->optimizer().slots(*weights[i]).empty());
        for (const LayerPtr& l : model->layers()) CHECK(l->trainable);
        for (const VariablePtr& v : weights) CHECK(v->learning_rate_multiplier == 1.0f);
    }
    SUBCASE("then the body trains too; a layer frozen by its options stays frozen") {
        utils::set_random_seed(3);
        Sequential model;
        model.add(layers::Input({2}));
        model.add(layers::Dense(8, {.activation = "tanh", .trainable = false}));
        model.add(layers::Dense(4, "tanh"));
        model.add(layers::Dense(1, {.name = "head"}));
        model.compile(optimizers::Adam(0.01), "mse");
        model.build({-1, 2});
        const std::vector<Tensor> before = model.get_weights();
        // Per batch: whether the body layer trains, its kernel's rate multiplier, the head's, the rate.
        struct Seen {
            bool body_trainable;
            float body_multiplier, head_multiplier, lr;
        };
        std::vector<Seen> seen;
        auto spy = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
            .on_batch_begin = [&](int64_t, Logs&) {
                seen.push_back({model.layers()[1]->trainable, model.layers()[1]->weights()[0]->learning_rate_multiplier,
                                model.layers()[2]->weights()[0]->learning_rate_multiplier, model.optimizer().learning_rate});
            }});
        const auto history = model.fine_tune(x, y, 2, {.freeze_epochs = 1, .head_name = "head"},
                                             {.batch_size = 16, .verbose = 0, .callbacks = {spy}});
        CHECK(history["loss"].size() == 2);
        // 4 frozen batches peaking at base_lr (pct_start 0.99), then 8 with the body at 1/100 of
        // the head's rate, peaking at base_lr / 2 with div 5.
        REQUIRE(seen.size() == 12);
        for (size_t i = 0; i < 4; ++i) {
            CHECK_FALSE(seen[i].body_trainable);
            CHECK(seen[i].lr == doctest::Approx(reference_one_cycle(0.99, 2e-3 / 25, 2e-3, 2e-3 / 1e5, i / 4.0)).epsilon(1e-6));
        }
        for (size_t i = 4; i < 12; ++i) {
            CHECK(seen[i].body_trainable);
            CHECK(seen[i].body_multiplier == 0.01f);
            CHECK(seen[i].head_multiplier == 1.0f);
            CHECK(seen[i].lr == doctest::Approx(reference_one_cycle(0.3, 1e-3 / 5, 1e-3, 1e-3 / 1e5, (i - 4) / 8.0)).epsilon(1e-6));
        }
        CHECK(model.layers()[1]->weights()[0]->learning_rate_multiplier == 1.0f);
        const std::vector<Tensor> after = model.get_weights();
        for (size_t i = 0; i < 2; ++i) CHECK(same_bits(before[i], after[i]));
        for (size_t i = 2; i < 6; ++i) CHECK_FALSE(same_bits(before[i], after[i]));
        CHECK_FALSE(model.layers()[0]->trainable);
        CHECK(model.layers()[1]->trainable);
        CHECK(message_of<ValueError>([&] { model.fine_tune(x, y, 1, {.head_name = "nope"}); }).find("nope") != std::string::npos);
        CHECK(message_of<ValueError>([&] { model.fine_tune(x, y, 1, {.head_layer = 7}); }).find("head_layer") != std::string::npos);
    }
}

TEST_CASE("a variable's learning_rate_multiplier scales its optimizer step") {
    auto a = std::make_shared<Variable>(Variable{"a", Tensor::full({2}, 1.0f), Tensor::full({2}, 1.0f)});
    auto b = std::make_shared<Variable>(Variable{"b", Tensor::full({2}, 1.0f), Tensor::full({2}, 1.0f)});
    b->learning_rate_multiplier = 0.01f;
    optimizers::SGD sgd(0.5);
    sgd.apply_gradients({a, b});
    CHECK(values_of(a->value)[0] == doctest::Approx(0.5));
    CHECK(values_of(b->value)[0] == doctest::Approx(1.0 - 0.005));
    CHECK(sgd.learning_rate == 0.5f);
}

// ---------------------------------------------------------------- trainable in the options

TEST_CASE("trainable = false in a layer's options freezes it, shows in summary and survives save / load") {
    utils::set_random_seed(1);
    Sequential model;
    model.add(layers::Input({5}, {.dtype = DType::int32}));
    model.add(layers::Embedding(20, 4, {.trainable = false}));
    model.add(layers::Bidirectional(layers::LSTM(3, {.return_sequences = true}), {.trainable = false}));
    model.add(layers::GRU(3, {.return_sequences = true, .trainable = false}));
    model.add(layers::SimpleRNN(2, {.trainable = false}));
    model.add(layers::Dense(1, {.activation = "sigmoid", .trainable = false}));
    model.add(layers::Dense(1));
    model.compile("adam", "binary_crossentropy");
    model.build({-1, 5});
    int64_t frozen = 0;
    for (size_t i = 0; i + 1 < model.layers().size(); ++i) {
        CHECK_FALSE(model.layers()[i]->trainable);
        CHECK(model.layers()[i]->trainable_weights().empty());
        CHECK(model.layers()[i]->get_config()["trainable"] == false);
        frozen += model.layers()[i]->count_params();
    }
    CHECK(model.trainable_weights().size() == 2);
    std::ostringstream summary;
    model.summary(&summary);
    CHECK(summary.str().find("Trainable params: 2 ") != std::string::npos);
    CHECK(summary.str().find(fmt::format("Non-trainable params: {} ", frozen)) != std::string::npos);

    Tensor x({8, 5}, DType::int32), y({8, 1}, DType::float32);
    for (int64_t i = 0; i < 40; ++i) x.data<int32_t>()[i] = static_cast<int32_t>((i * 7) % 20);
    for (int64_t i = 0; i < 8; ++i) y.data<float>()[i] = static_cast<float>(i % 2);
    const std::vector<Tensor> before = model.get_weights();
    model.fit(x, y, {.batch_size = 4, .epochs = 1, .verbose = 0});
    const std::vector<Tensor> after = model.get_weights();
    for (size_t i = 0; i + 2 < before.size(); ++i) CHECK(same_bits(before[i], after[i]));

    const std::string path = temp_path("frozen.h5");
    model.save(path);
    const auto loaded = models::load_model(path);
    REQUIRE(loaded->layers().size() == model.layers().size());
    for (size_t i = 0; i < model.layers().size(); ++i)
        CHECK(loaded->layers()[i]->trainable == model.layers()[i]->trainable);
    CHECK(loaded->trainable_weights().size() == 2);
    const std::vector<Tensor> reloaded = loaded->get_weights();
    for (size_t i = 0; i < after.size(); ++i) CHECK(same_bits(after[i], reloaded[i]));
}

TEST_CASE("every layer's options take trainable") {
    CHECK_FALSE(layers::Dense(1, {.trainable = false}).trainable);
    CHECK_FALSE(layers::Embedding(3, 2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::SimpleRNN(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::LSTM(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::GRU(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::SimpleRNNCell(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::LSTMCell(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::GRUCell(2, {.trainable = false}).trainable);
    CHECK_FALSE(layers::Bidirectional(layers::LSTM(2), {.trainable = false}).trainable);
    CHECK_FALSE(layers::TimeDistributed(layers::Dense(2), {.trainable = false}).trainable);
    CHECK_FALSE(layers::Dropout(0.1f, {.trainable = false}).trainable);
    CHECK_FALSE(layers::Masking(0.0f, {.trainable = false}).trainable);
    CHECK_FALSE(layers::Concatenate({.trainable = false}).trainable);
    CHECK_FALSE(layers::Add({.trainable = false}).trainable);
    CHECK_FALSE(layers::GlobalMaxPooling1D({.trainable = false}).trainable);
    CHECK_FALSE(layers::RNN(std::shared_ptr<layers::RNNCell>(std::make_shared<layers::LSTMCell>(2)), {.trainable = false}).trainable);
    CHECK(layers::Dense(1).trainable);
}

// ---------------------------------------------------------------- docs/training.md

TEST_CASE("docs/training.md quotes the example this test compiles, and it runs") {
    const std::string docs = std::string(KERASCPP_TESTS_DIR) + "/../docs/";
    std::ifstream page_in(docs + "training.md"), example_in(docs + "training/fastai_tools.hpp");
    REQUIRE(page_in.good());
    REQUIRE(example_in.good());
    std::stringstream page, example;
    page << page_in.rdbuf();
    example << example_in.rdbuf();
    CHECK(page.str().find(example.str()) != std::string::npos);

    const auto [x, y] = regression_data();
    auto model = small_model();
    const double before = model->evaluate(x, y, {.verbose = 0}).loss();
    const double lr = train_with_fastai_tools(*model, x, y);
    CHECK(lr > 0);
    CHECK(model->evaluate(x, y, {.verbose = 0}).loss() < before);
}
