// Optimizers against Keras 3's update formulas computed here in double precision over several steps
// (with every clipping mode and option), Keras's own golden values, the backend's element-wise
// helpers, string resolution, configs and every error message.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <vector>

#include "keras/backend.hpp"
#include "keras/config.hpp"
#include "keras/errors.hpp"
#include "keras/optimizers.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using namespace keras;
using namespace keras::optimizers;
using Vec = std::vector<double>;

namespace {

void check_close(const Vec& got, const Vec& want, double atol, double rtol) {
    const double err = ref::max_rel_err(got, want, atol, rtol);
    CHECK_MESSAGE(err <= 1.0, "max relative error " << err);
}

VariablePtr make_variable(const std::string& name, const Vec& value, Shape shape) {
    auto v = std::make_shared<Variable>();
    v->name = name;
    v->value = floats(value, shape);
    v->grad = Tensor::zeros(shape);
    return v;
}

// ---- the reference: Keras 3's formulas in double, one state vector per variable and slot

struct RefState {
    Vec p, m, v, vhat, mg, mom, acc;
};

using RefUpdate = std::function<void(RefState&, const Vec& g, int step)>;

// Keras's clipping of a list of gradients (only one option may be set).
std::vector<Vec> ref_clip(std::vector<Vec> grads, const Clipping& c) {
    auto norm_of = [](const Vec& g) {
        double s = 0.0;
        for (double x : g) s += x * x;
        return s;
    };
    if (c.clipnorm) {
        const double cn = *c.clipnorm;
        for (Vec& g : grads) {
            const double n = std::sqrt(norm_of(g));
            for (double& x : g) x = x * cn / std::max(n, cn);
        }
    } else if (c.global_clipnorm) {
        const double cn = *c.global_clipnorm;
        double total = 0.0;
        for (const Vec& g : grads) total += norm_of(g);
        const double scale = std::min(1.0, cn / std::sqrt(total));
        for (Vec& g : grads)
            for (double& x : g) x *= scale;
    } else if (c.clipvalue) {
        const double cv = *c.clipvalue;
        for (Vec& g : grads)
            for (double& x : g) x = std::clamp(x, -cv, cv);
    }
    return grads;
}

RefUpdate ref_sgd(double lr, double momentum, bool nesterov) {
    return [=](RefState& s, const Vec& g, int) {
        for (size_t i = 0; i < g.size(); ++i) {
            if (momentum == 0.0) {
                s.p[i] -= lr * g[i];
                continue;
            }
            s.m[i] = momentum * s.m[i] - lr * g[i];
            s.p[i] += nesterov ? momentum * s.m[i] - lr * g[i] : s.m[i];
        }
    };
}

// Keras's Adam: moments as exponential averages, bias correction folded into the step size, epsilon
// added to sqrt(v) (not to the bias-corrected v).
RefUpdate ref_adam(double lr, double b1, double b2, double eps, bool amsgrad) {
    return [=](RefState& s, const Vec& g, int t) {
        const double alpha = lr * std::sqrt(1.0 - std::pow(b2, t)) / (1.0 - std::pow(b1, t));
        for (size_t i = 0; i < g.size(); ++i) {
            s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i];
            s.v[i] = b2 * s.v[i] + (1.0 - b2) * g[i] * g[i];
            s.vhat[i] = std::max(s.vhat[i], s.v[i]);
            const double denom = std::sqrt(amsgrad ? s.vhat[i] : s.v[i]) + eps;
            s.p[i] -= alpha * s.m[i] / denom;
        }
    };
}

RefUpdate ref_rmsprop(double lr, double rho, double momentum, double eps, bool centered) {
    return [=](RefState& s, const Vec& g, int) {
        for (size_t i = 0; i < g.size(); ++i) {
            s.v[i] = rho * s.v[i] + (1.0 - rho) * g[i] * g[i];
            s.mg[i] = rho * s.mg[i] + (1.0 - rho) * g[i];
            const double denom = centered ? s.v[i] - s.mg[i] * s.mg[i] + eps : s.v[i] + eps;
            const double increment = lr * g[i] / std::sqrt(denom);
            if (momentum > 0.0) {
                s.mom[i] = momentum * s.mom[i] + increment;
                s.p[i] -= s.mom[i];
            } else {
                s.p[i] -= increment;
            }
        }
    };
}

RefUpdate ref_adagrad(double lr, double eps) {
    return [=](RefState& s, const Vec& g, int) {
        for (size_t i = 0; i < g.size(); ++i) {
            s.acc[i] += g[i] * g[i];
            s.p[i] -= lr * g[i] / std::sqrt(s.acc[i] + eps);
        }
    };
}

// Two variables, (3, 4) and (5,), trained for `steps` steps on deterministic gradients (scaled by
// grad_scale(step), so magnitudes can shrink or grow), by the optimizer and by the reference.
struct Comparison {
    std::vector<VariablePtr> vars;
    std::vector<RefState> ref;
    std::vector<Vec> initial;
};

Comparison compare(Optimizer& opt, const RefUpdate& ref_update, int steps,
                   const std::function<double(int)>& grad_scale = [](int) { return 1.0; },
                   double initial_accumulator = 0.0) {
    Comparison c;
    const std::vector<Shape> shapes = {{3, 4}, {5}};
    for (size_t k = 0; k < shapes.size(); ++k) {
        Vec p = ref::random_vec(static_cast<size_t>(num_elements(shapes[k])), 7 + k, -1.0, 1.0);
        for (double& x : p) x = static_cast<float>(x);
        c.vars.push_back(make_variable(k == 0 ? "kernel" : "bias", p, shapes[k]));
        const Vec zeros(p.size(), 0.0);
        c.ref.push_back({p, zeros, zeros, zeros, zeros, zeros, Vec(p.size(), initial_accumulator)});
        c.initial.push_back(p);
    }
    for (int step = 1; step <= steps; ++step) {
        std::vector<Vec> grads;
        for (size_t k = 0; k < c.vars.size(); ++k) {
            Vec g = ref::random_vec(c.ref[k].p.size(), 100 * step + k, -1.0, 1.0);
            for (double& x : g) x = static_cast<float>(x * grad_scale(step));
            c.vars[k]->grad = floats(g, c.vars[k]->value.shape());
            grads.push_back(g);
        }
        opt.apply_gradients(c.vars);
        const std::vector<Vec> clipped = ref_clip(grads, opt.clipping);
        for (size_t k = 0; k < c.vars.size(); ++k) {
            ref_update(c.ref[k], clipped[k], step);
            // The variables' own gradients are left as they were (clipping works on copies).
            CHECK(values_of(c.vars[k]->grad) == grads[k]);
        }
        CHECK(opt.iterations == step);
    }
    // Compare the change of each parameter: a relative check of the whole update.
    for (size_t k = 0; k < c.vars.size(); ++k) {
        Vec got = values_of(c.vars[k]->value), want = c.ref[k].p;
        for (size_t i = 0; i < got.size(); ++i) {
            got[i] -= c.initial[k][i];
            want[i] -= c.initial[k][i];
        }
        check_close(got, want, 1e-6, 1e-4);
    }
    return c;
}

// Runs `steps` updates of a single variable of value `start` with constant gradient `g` after a first
// gradient `first` (the setting of Keras's golden tests) and returns the values after each step.
std::vector<Vec> golden_run(Optimizer& opt, const Vec& start, const Vec& first, const Vec& g, int steps) {
    auto var = make_variable("x", start, {static_cast<int64_t>(start.size())});
    std::vector<Vec> out;
    var->grad = floats(first, var->value.shape());
    opt.apply_gradients({var});
    for (int i = 0; i < steps; ++i) {
        out.push_back(values_of(var->value));
        var->grad = floats(g, var->value.shape());
        opt.apply_gradients({var});
    }
    return out;
}

Vec arange_01_to_1() {
    Vec g;
    for (int i = 1; i <= 10; ++i) g.push_back(0.1 * i);
    return g;
}

}  // namespace

// ============================================================================ update formulas

TEST_CASE("SGD: plain, momentum and nesterov over several steps") {
    SUBCASE("plain") {
        SGD opt(0.1f);
        const Comparison c = compare(opt, ref_sgd(double{0.1f}, 0.0, false), 4);
        CHECK(opt.slot_specs().empty());
        CHECK(opt.slots(*c.vars[0]).empty());
    }
    SUBCASE("momentum") {
        SGD opt({.learning_rate = 0.05f, .momentum = 0.9f});
        const Comparison c = compare(opt, ref_sgd(double{0.05f}, double{0.9f}, false), 5);
        const std::vector<Tensor> slots = opt.slots(*c.vars[0]);
        REQUIRE(slots.size() == 1);
        check_close(values_of(slots[0]), c.ref[0].m, 1e-7, 1e-5);
    }
    SUBCASE("nesterov") {
        SGD opt({.learning_rate = 0.05f, .momentum = 0.8f, .nesterov = true});
        const Comparison c = compare(opt, ref_sgd(double{0.05f}, double{0.8f}, true), 5);
        check_close(values_of(opt.slots(*c.vars[1])[0]), c.ref[1].m, 1e-7, 1e-5);
    }
}

TEST_CASE("Adam: defaults, custom betas with a large epsilon, amsgrad") {
    SUBCASE("defaults") {
        Adam opt;
        const Comparison c = compare(opt, ref_adam(double{0.001f}, double{0.9f}, double{0.999f}, double{1e-7f}, false), 6);
        const std::vector<Tensor> slots = opt.slots(*c.vars[0]);
        REQUIRE(slots.size() == 2);
        check_close(values_of(slots[0]), c.ref[0].m, 1e-7, 1e-5);
        check_close(values_of(slots[1]), c.ref[0].v, 1e-9, 1e-5);
    }
    SUBCASE("custom betas and a large epsilon (placement outside the sqrt matters)") {
        Adam opt({.learning_rate = 0.01f, .beta_1 = 0.8f, .beta_2 = 0.95f, .epsilon = 0.05f});
        compare(opt, ref_adam(double{0.01f}, double{0.8f}, double{0.95f}, double{0.05f}, false), 5);
    }
    SUBCASE("amsgrad with shrinking gradients (v falls below its running maximum)") {
        auto shrinking = [](int step) { return step == 1 ? 3.0 : 0.2; };
        // beta_2 = 0.9 lets v decay quickly after the first large gradient.
        Adam opt({.learning_rate = 0.01f, .beta_2 = 0.9f, .amsgrad = true});
        const Comparison c = compare(opt, ref_adam(double{0.01f}, double{0.9f}, double{0.9f}, double{1e-7f}, true),
                                     5, shrinking);
        const std::vector<Tensor> slots = opt.slots(*c.vars[0]);
        REQUIRE(slots.size() == 3);
        check_close(values_of(slots[2]), c.ref[0].vhat, 1e-9, 1e-5);
        // The test exercises amsgrad: the running maximum differs from v.
        CHECK(ref::max_abs_diff(c.ref[0].vhat, c.ref[0].v) > 0.1);
    }
}

TEST_CASE("Adam on arrays big enough to split across threads: the same bits on 1 and 2 threads, and the reference") {
    // 300,017 floats: above the size the CPU backend splits across its threads, and not a multiple of
    // the ranges' 16-float alignment.
    const int64_t n = 300017;
    auto run = [&](int threads, bool amsgrad) {
        keras::config::set_intra_op_parallelism_threads(threads);
        Tensor p = test_helpers::wavy({n}, 0.3, 0.01, 1.0), g = test_helpers::wavy({n}, 1.1, 0.017, 0.5);
        Tensor m = Tensor::zeros({n}), v = Tensor::zeros({n}), vhat = amsgrad ? Tensor::zeros({n}) : Tensor();
        for (int64_t step = 1; step <= 3; ++step)
            keras::backend::get(keras::Device::cpu()).adam_update(p, g, m, v, vhat, 0.01f, 0.9f, 0.999f, 1e-7f, step);
        keras::config::set_intra_op_parallelism_threads(0);
        return std::array{values_of(p), values_of(m), values_of(v)};
    };
    for (bool amsgrad : {false, true}) {
        const auto one = run(1, amsgrad), two = run(2, amsgrad);
        CHECK(one == two);
        // Three steps of one constant gradient, in double: m and v after three steps, then p moved by
        // the three bias-corrected steps.
        const Vec g0 = values_of(test_helpers::wavy({n}, 1.1, 0.017, 0.5)), p0 = values_of(test_helpers::wavy({n}, 0.3, 0.01, 1.0));
        for (int64_t i = 0; i < n; i += 997) {
            double m = 0, v = 0, p = p0[i];
            for (int step = 1; step <= 3; ++step) {
                m += (g0[i] - m) * (1 - double{0.9f});
                v += (g0[i] * g0[i] - v) * (1 - double{0.999f});
                const double alpha = double{0.01f} * std::sqrt(1 - std::pow(double{0.999f}, step)) / (1 - std::pow(double{0.9f}, step));
                p -= m * alpha / (std::sqrt(v) + double{1e-7f});   // v only grows here: amsgrad's maximum is v
            }
            CHECK(one[0][i] == doctest::Approx(p).epsilon(1e-5));
            CHECK(one[1][i] == doctest::Approx(m).epsilon(1e-5));
        }
    }
}

TEST_CASE("SGD, RMSprop and Adagrad on arrays split across threads: the same bits on 1 and 2 threads") {
    const int64_t n = 300017;
    using Update = std::function<void(Tensor& p, const Tensor& g, Tensor& s1, Tensor& s2, Tensor& s3)>;
    auto& cpu = keras::backend::get(keras::Device::cpu());
    const std::vector<std::pair<const char*, Update>> updates = {
        {"sgd nesterov", [&](Tensor& p, const Tensor& g, Tensor& m, Tensor&, Tensor&) { cpu.sgd_update(p, g, m, 0.1f, 0.9f, true); }},
        {"sgd momentum", [&](Tensor& p, const Tensor& g, Tensor& m, Tensor&, Tensor&) { cpu.sgd_update(p, g, m, 0.1f, 0.9f, false); }},
        {"rmsprop centered, momentum",
         [&](Tensor& p, const Tensor& g, Tensor& v, Tensor& mom, Tensor& mg) { cpu.rmsprop_update(p, g, v, mom, mg, 0.01f, 0.9f, 0.5f, 1e-7f); }},
        {"adagrad", [&](Tensor& p, const Tensor& g, Tensor& acc, Tensor&, Tensor&) { cpu.adagrad_update(p, g, acc, 0.01f, 1e-7f); }}};
    for (const auto& [name, update] : updates) {
        INFO(name);
        auto run = [&](int threads) {
            keras::config::set_intra_op_parallelism_threads(threads);
            Tensor p = test_helpers::wavy({n}, 0.3, 0.01, 1.0), g = test_helpers::wavy({n}, 1.1, 0.017, 0.5);
            Tensor s1 = Tensor::zeros({n}), s2 = Tensor::zeros({n}), s3 = Tensor::zeros({n});
            for (int step = 0; step < 3; ++step) update(p, g, s1, s2, s3);
            keras::config::set_intra_op_parallelism_threads(0);
            return std::array{values_of(p), values_of(s1), values_of(s2), values_of(s3)};
        };
        CHECK(run(1) == run(2));
    }
}

TEST_CASE("RMSprop: plain, momentum, centered, centered with momentum") {
    SUBCASE("plain with a large epsilon") {
        RMSprop opt({.learning_rate = 0.01f, .epsilon = 0.01f});
        const Comparison c = compare(opt, ref_rmsprop(double{0.01f}, double{0.9f}, 0.0, double{0.01f}, false), 5);
        REQUIRE(opt.slots(*c.vars[0]).size() == 1);
        check_close(values_of(opt.slots(*c.vars[0])[0]), c.ref[0].v, 1e-9, 1e-5);
    }
    SUBCASE("momentum") {
        RMSprop opt({.learning_rate = 0.01f, .rho = 0.8f, .momentum = 0.5f});
        const Comparison c = compare(opt, ref_rmsprop(double{0.01f}, double{0.8f}, 0.5, double{1e-7f}, false), 5);
        REQUIRE(opt.slots(*c.vars[1]).size() == 2);
        check_close(values_of(opt.slots(*c.vars[1])[1]), c.ref[1].mom, 1e-7, 1e-4);
    }
    SUBCASE("centered") {
        RMSprop opt({.learning_rate = 0.01f, .centered = true});
        const Comparison c = compare(opt, ref_rmsprop(double{0.01f}, double{0.9f}, 0.0, double{1e-7f}, true), 5);
        REQUIRE(opt.slots(*c.vars[0]).size() == 2);
        check_close(values_of(opt.slots(*c.vars[0])[1]), c.ref[0].mg, 1e-7, 1e-5);
    }
    SUBCASE("centered with momentum") {
        RMSprop opt({.learning_rate = 0.01f, .momentum = 0.9f, .centered = true});
        const Comparison c = compare(opt, ref_rmsprop(double{0.01f}, double{0.9f}, double{0.9f}, double{1e-7f}, true), 5);
        const std::vector<Tensor> slots = opt.slots(*c.vars[0]);
        REQUIRE(slots.size() == 3);   // velocity, momentum, average_gradient
        check_close(values_of(slots[1]), c.ref[0].mom, 1e-7, 1e-4);
        check_close(values_of(slots[2]), c.ref[0].mg, 1e-7, 1e-5);
    }
}

TEST_CASE("Adagrad: the accumulator starts at initial_accumulator_value") {
    SUBCASE("defaults") {
        Adagrad opt;
        const Comparison c = compare(opt, ref_adagrad(double{0.001f}, double{1e-7f}), 5, [](int) { return 1.0; },
                                     double{0.1f});
        check_close(values_of(opt.slots(*c.vars[0])[0]), c.ref[0].acc, 1e-7, 1e-6);
    }
    SUBCASE("custom initial value and a large epsilon") {
        Adagrad opt({.learning_rate = 0.05f, .initial_accumulator_value = 0.5f, .epsilon = 0.02f});
        const Comparison c = compare(opt, ref_adagrad(double{0.05f}, double{0.02f}), 5, [](int) { return 1.0; },
                                     double{0.5f});
        check_close(values_of(opt.slots(*c.vars[1])[0]), c.ref[1].acc, 1e-7, 1e-6);
    }
}

// ============================================================================ clipping

TEST_CASE("clipnorm scales each gradient whose norm exceeds it, independently") {
    // Gradients in [-3, 3): the (3, 4) kernel's norm is above 2.5, the (5,) bias's may be either side.
    SGD opt({.learning_rate = 0.1f, .clipnorm = 2.5f});
    compare(opt, ref_sgd(double{0.1f}, 0.0, false), 4, [](int step) { return step % 2 ? 3.0 : 0.5; });
    Adam adam({.learning_rate = 0.01f, .clipnorm = 1.0f});
    compare(adam, ref_adam(double{0.01f}, double{0.9f}, double{0.999f}, double{1e-7f}, false), 4,
            [](int step) { return step % 2 ? 3.0 : 0.2; });
}

TEST_CASE("global_clipnorm scales all gradients by one factor") {
    SGD opt({.learning_rate = 0.1f, .global_clipnorm = 2.0f});
    compare(opt, ref_sgd(double{0.1f}, 0.0, false), 4, [](int step) { return step % 2 ? 3.0 : 0.2; });
    RMSprop rms({.learning_rate = 0.01f, .momentum = 0.3f, .global_clipnorm = 1.5f});
    compare(rms, ref_rmsprop(double{0.01f}, double{0.9f}, double{0.3f}, double{1e-7f}, false), 4,
            [](int step) { return step % 2 ? 2.0 : 0.1; });
}

TEST_CASE("clipvalue clips element-wise") {
    SGD opt({.learning_rate = 0.1f, .momentum = 0.5f, .clipvalue = 0.3f});
    compare(opt, ref_sgd(double{0.1f}, double{0.5f}, false), 4);
    Adagrad ada({.learning_rate = 0.1f, .clipvalue = 0.25f});
    compare(ada, ref_adagrad(double{0.1f}, double{1e-7f}), 4, [](int) { return 1.0; }, double{0.1f});
}

TEST_CASE("clipping by hand: Keras's examples") {
    // Keras: clipnorm=1 turns [100, 100] into [sqrt(2)/2, sqrt(2)/2]; clipvalue=1 into [1, 1].
    for (auto clipping : {Clipping{.clipnorm = 1.0f}, Clipping{.global_clipnorm = 1.0f}, Clipping{.clipvalue = 1.0f}}) {
        SGD opt({.learning_rate = 1.0f, .clipnorm = clipping.clipnorm, .clipvalue = clipping.clipvalue,
                 .global_clipnorm = clipping.global_clipnorm});
        auto var = make_variable("w", {0.0, 0.0}, {2});
        var->grad = floats({100.0, 100.0}, {2});
        opt.apply_gradients({var});
        const double want = clipping.clipvalue ? -1.0 : -std::sqrt(2.0) / 2;
        check_close(values_of(var->value), {want, want}, 1e-7, 1e-6);
    }
    // A gradient within the norm is untouched; the global norm combines variables: |(3, 4)| = 5.
    SGD opt({.learning_rate = 1.0f, .global_clipnorm = 2.5f});
    auto a = make_variable("a", {0.0}, {1}), b = make_variable("b", {0.0}, {1});
    a->grad = floats({3.0}, {1});
    b->grad = floats({4.0}, {1});
    opt.apply_gradients({a, b});
    CHECK(a->value.item() == doctest::Approx(-1.5));
    CHECK(b->value.item() == doctest::Approx(-2.0));
    SGD loose({.learning_rate = 1.0f, .clipnorm = 10.0f});
    a->grad = floats({3.0}, {1});
    loose.apply_gradients({a});
    CHECK(a->value.item() == doctest::Approx(-4.5));
}

// ============================================================================ Keras's golden values

TEST_CASE("Keras's single-step and golden values") {
    const Vec start = {1, 2, 3, 4}, grads = {1, 6, 7, 2};
    auto single = [&](Optimizer& opt) {
        auto var = make_variable("w", start, {4});
        var->grad = floats(grads, {4});
        opt.apply_gradients({var});
        return values_of(var->value);
    };
    SGD sgd(0.5f);
    check_close(single(sgd), {0.5, -1.0, -0.5, 3.0}, 1e-4, 1e-4);
    Adam adam(0.5f);
    check_close(single(adam), {0.5, 1.5, 2.5, 3.5}, 1e-4, 1e-4);
    RMSprop rms(0.5f);
    check_close(single(rms), {-0.5811, 0.4189, 1.4189, 2.4189}, 1e-4, 1e-4);
    Adagrad ada(0.5f);
    check_close(single(ada), {0.5233, 1.5007, 2.5005, 3.5061}, 1e-4, 1e-4);

    // RMSprop docstring: lr 0.1 on loss var^2 / 2 from var = 10 gives 9.683772.
    RMSprop doc(0.1f);
    auto var = make_variable("v", {10.0}, {1});
    var->grad = floats({10.0}, {1});
    doc.apply_gradients({var});
    CHECK(var->value.item() == doctest::Approx(9.683772).epsilon(1e-6));

    // Golden runs from Keras's tests: x = ones(10), first gradient 0.01, then 0.1 ... 1.0.
    const Vec ones(10, 1.0), first(10, 0.01), g = arange_01_to_1();
    SGD nesterov({.nesterov = true});
    const std::vector<Vec> sgd_golden = golden_run(nesterov, ones, first, g, 5);
    for (int i = 0; i < 5; ++i) {
        Vec want(10);
        for (int j = 0; j < 10; ++j) want[j] = 0.9999 - 0.001 * (j + 1) * i;
        check_close(sgd_golden[i], want, 5e-4, 5e-4);
    }
    Adam ams({.amsgrad = true});
    const std::vector<Vec> adam_golden = golden_run(ams, ones, first, g, 5);
    const Vec adam_rows = {0.999, 0.9982, 0.9974, 0.9965, 0.9955};
    for (int i = 0; i < 5; ++i) check_close(adam_golden[i], Vec(10, adam_rows[i]), 5e-4, 5e-4);
    RMSprop centered({.centered = true});
    const std::vector<Vec> rms_golden = golden_run(centered, ones, first, g, 5);
    const Vec rms_rows = {0.9967, 0.9933, 0.9908, 0.9885, 0.9864};
    for (int i = 0; i < 5; ++i) check_close(rms_golden[i], Vec(10, rms_rows[i]), 5e-4, 5e-4);
    Adagrad adagrad({.learning_rate = 0.2f, .initial_accumulator_value = 0.3f, .epsilon = 1e-6f});
    const std::vector<Vec> ada_golden = golden_run(adagrad, ones, first, g, 5);
    CHECK(ada_golden[0] == Vec(10, ada_golden[0][0]));
    check_close(ada_golden[0], Vec(10, 0.9963), 5e-4, 5e-4);
    check_close(ada_golden[4], {0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825},
                5e-4, 5e-4);
}

// ============================================================================ bookkeeping

TEST_CASE("apply_gradients skips frozen variables and missing gradients") {
    Adam opt(0.1f);
    auto trained = make_variable("kernel", {1.0, 2.0}, {2});
    auto frozen = make_variable("frozen", {1.0, 2.0}, {2});
    auto no_grad = make_variable("unused", {1.0, 2.0}, {2});
    frozen->trainable = false;
    no_grad->grad = Tensor();
    trained->grad = frozen->grad = floats({0.5, -0.5}, {2});
    opt.apply_gradients({trained, frozen, no_grad});
    CHECK(opt.iterations == 1);
    CHECK(values_of(frozen->value) == Vec{1.0, 2.0});
    CHECK(values_of(no_grad->value) == Vec{1.0, 2.0});
    CHECK(opt.slots(*frozen).empty());
    // Adam's first step moves each weight by lr against the gradient's sign.
    check_close(values_of(trained->value), {0.9, 2.1}, 1e-6, 1e-5);
    // Nothing to update: no step is counted.
    opt.apply_gradients({frozen, no_grad});
    CHECK(opt.iterations == 1);
}

TEST_CASE("slots follow the options and start at their initial values") {
    CHECK(SGD().slot_specs().empty());
    CHECK(SGD({.momentum = 0.5f}).slot_specs().size() == 1);
    auto names = [](const Optimizer& o) {
        std::vector<std::string> n;
        for (const SlotSpec& s : o.slot_specs()) n.push_back(s.name);
        return n;
    };
    CHECK(names(Adam()) == std::vector<std::string>{"momentum", "velocity"});
    CHECK(names(Adam({.amsgrad = true})) == std::vector<std::string>{"momentum", "velocity", "velocity_hat"});
    CHECK(names(RMSprop()) == std::vector<std::string>{"velocity"});
    CHECK(names(RMSprop({.momentum = 0.1f, .centered = true})) ==
          std::vector<std::string>{"velocity", "momentum", "average_gradient"});
    CHECK(names(Adagrad()) == std::vector<std::string>{"accumulator"});
    CHECK(Adagrad({.initial_accumulator_value = 0.25f}).slot_specs()[0].initial_value == 0.25f);

    // A zero gradient leaves Adagrad's accumulator at its initial value.
    Adagrad opt({.initial_accumulator_value = 0.25f});
    auto var = make_variable("w", {1.0, 2.0, 3.0}, {3});
    opt.apply_gradients({var});
    CHECK(values_of(opt.slots(*var)[0]) == Vec(3, 0.25));
    CHECK(values_of(var->value) == Vec{1.0, 2.0, 3.0});
}

TEST_CASE("optimizer errors") {
    CHECK_THROWS_WITH_AS(SGD({.clipnorm = 1.0f, .global_clipnorm = 2.0f}),
                         "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                         "clipnorm=1.0, clipvalue=None, global_clipnorm=2.0", ValueError);
    CHECK_THROWS_WITH_AS(Adam({.clipnorm = 0.5f, .clipvalue = 0.25f}),
                         "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                         "clipnorm=0.5, clipvalue=0.25, global_clipnorm=None", ValueError);
    CHECK_THROWS_WITH_AS(RMSprop({.clipvalue = 3.0f, .global_clipnorm = 1.5f}),
                         "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                         "clipnorm=None, clipvalue=3.0, global_clipnorm=1.5", ValueError);
    CHECK_THROWS_WITH_AS(SGD({.momentum = 1.5f}), "`momentum` must be a float between [0, 1].", ValueError);
    CHECK_THROWS_WITH_AS(SGD({.momentum = -0.1f}), "`momentum` must be a float between [0, 1].", ValueError);

    Adam opt;
    auto var = make_variable("kernel", {1, 2, 3}, {3});
    var->grad = Tensor::zeros({2});
    CHECK_THROWS_WITH_AS(opt.apply_gradients({var}),
                         "Gradient of variable 'kernel' has shape (2,), expected the variable's shape (3,)",
                         ValueError);

    // Changing the options after the slots exist is refused rather than silently misread.
    var->grad = Tensor::zeros({3});
    opt.apply_gradients({var});
    opt.amsgrad = true;
    CHECK_THROWS_WITH_AS(opt.apply_gradients({var}),
                         "Adam options changed after its slots were created (variable 'kernel' has 2 slots, the "
                         "options need 3)", RuntimeError);
}

TEST_CASE("optimizers::get resolves names in any case, with Keras's defaults") {
    CHECK(optimizers::get("sgd")->name() == "SGD");
    CHECK(optimizers::get("SGD")->learning_rate == 0.01f);
    CHECK(optimizers::get("adam")->name() == "Adam");
    CHECK(optimizers::get("Adam")->learning_rate == 0.001f);
    CHECK(optimizers::get("ADAM")->name() == "Adam");
    CHECK(optimizers::get("rmsprop")->name() == "RMSprop");
    CHECK(optimizers::get("RMSprop")->learning_rate == 0.001f);
    CHECK(optimizers::get("adagrad")->name() == "Adagrad");
    const auto adam = std::dynamic_pointer_cast<Adam>(optimizers::get("adam"));
    REQUIRE(adam);
    CHECK(adam->beta_1 == 0.9f);
    CHECK(adam->beta_2 == 0.999f);
    CHECK(adam->epsilon == 1e-7f);
    CHECK_FALSE(adam->amsgrad);
    const auto adagrad = std::dynamic_pointer_cast<Adagrad>(optimizers::get("Adagrad"));
    REQUIRE(adagrad);
    CHECK(adagrad->initial_accumulator_value == 0.1f);
    CHECK_THROWS_WITH_AS(optimizers::get("adamx"), "Could not interpret optimizer identifier: adamx", ValueError);
}

TEST_CASE("optimizer configs carry Keras 3's keys") {
    using nlohmann::json;
    const json base = {{"weight_decay", nullptr}, {"clipnorm", nullptr}, {"global_clipnorm", nullptr},
                       {"clipvalue", nullptr}, {"use_ema", false}, {"ema_momentum", 0.99},
                       {"ema_overwrite_frequency", nullptr}, {"loss_scale_factor", nullptr},
                       {"gradient_accumulation_steps", nullptr}};
    auto with = [&](json extra) {
        json c = base;
        c.update(extra);
        return c;
    };
    CHECK(Adam().get_config() == with({{"name", "adam"}, {"learning_rate", 0.001}, {"beta_1", 0.9},
                                       {"beta_2", 0.999}, {"epsilon", 1e-7}, {"amsgrad", false}}));
    CHECK(SGD({.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true, .clipnorm = 1.0f}).get_config() ==
          with({{"name", "sgd"}, {"learning_rate", 0.1}, {"momentum", 0.9}, {"nesterov", true}, {"clipnorm", 1.0}}));
    // Keras's auto-name for RMSprop is its snake-cased class name.
    CHECK(RMSprop({.global_clipnorm = 2.0f}).get_config() ==
          with({{"name", "rm_sprop"}, {"learning_rate", 0.001}, {"rho", 0.9}, {"momentum", 0.0}, {"epsilon", 1e-7},
                {"centered", false}, {"global_clipnorm", 2.0}}));
    CHECK(Adagrad({.clipvalue = 0.5f}).get_config() ==
          with({{"name", "adagrad"}, {"learning_rate", 0.001}, {"initial_accumulator_value", 0.1},
                {"epsilon", 1e-7}, {"clipvalue", 0.5}}));
}

// ============================================================================ backend helpers

TEST_CASE("CPU backend element-wise helpers") {
    backend::Backend& be = backend::get(Device::cpu());
    const Vec a = ref::random_vec(6, 1, -2.0, 2.0), b = ref::random_vec(6, 2, -2.0, 2.0);
    const Tensor ta = floats(a, {2, 3}), tb = floats(b, {2, 3});
    const Vec fa = values_of(ta), fb = values_of(tb);
    Vec prod(6), sum(6), clipped(6);
    double squares = 0.0;
    for (int i = 0; i < 6; ++i) {
        prod[i] = static_cast<float>(fa[i] * fb[i]);
        sum[i] = static_cast<float>(fa[i] + fb[i]);
        clipped[i] = std::clamp(fa[i], -0.5, 1.0);
        squares += fa[i] * fa[i];
    }
    const Tensor p = be.multiply(ta, tb), s = be.add(ta, tb);
    CHECK(p.shape() == Shape{2, 3});
    CHECK(values_of(p) == prod);
    CHECK(values_of(s) == sum);
    CHECK(be.sum_squares(ta) == doctest::Approx(squares).epsilon(1e-12));
    Tensor c = ta.clone();
    be.clip_(c, -0.5f, 1.0f);
    CHECK(values_of(c) == clipped);
    be.scale_(c, 2.0f);
    for (double& x : clipped) x *= 2.0;
    CHECK(values_of(c) == clipped);
    CHECK_THROWS_WITH_AS(be.multiply(ta, floats(b, {3, 2})), "multiply: shapes (2, 3) and (3, 2) do not match",
                         ValueError);
    CHECK_THROWS_WITH_AS(be.add(ta, Tensor::zeros({6})), "add: shapes (2, 3) and (6,) do not match", ValueError);
    Tensor param = Tensor::zeros({3}), mom;
    CHECK_THROWS_WITH_AS(be.sgd_update(param, Tensor::zeros({4}), mom, 0.1f, 0.0f, false),
                         "sgd_update: shapes (3,) and (4,) do not match", ValueError);
}

TEST_CASE("a new variable never inherits the slots of a freed one, even at the same address") {
    Adam adam(AdamOptions{.learning_rate = 0.1f});
    const Variable* old_address = nullptr;
    {
        auto first = make_variable("w", {1.0, 2.0}, {2});
        first->grad = floats({5.0, 5.0}, {2});
        adam.apply_gradients({first});
        old_address = first.get();
    }
    // Allocate until a variable lands where the freed one was (usually the first try).
    std::vector<VariablePtr> keep;
    VariablePtr second;
    for (int i = 0; i < 64 && (!second || second.get() != old_address); ++i) {
        if (second) keep.push_back(second);
        second = make_variable("w", {1.0, 2.0}, {2});
    }
    second->grad = floats({1.0, 1.0}, {2});
    adam.apply_gradients({second});
    // Fresh slots: after one step m = (1 - beta_1) * g and v = (1 - beta_2) * g^2.
    const auto slots = adam.slots(*second);
    REQUIRE(slots.size() == 2);
    CHECK(values_of(slots[0])[0] == doctest::Approx(0.1).epsilon(1e-6));
    CHECK(values_of(slots[1])[0] == doctest::Approx(0.001).epsilon(1e-5));
}
