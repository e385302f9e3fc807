// Losses and metrics against independent double-precision formulas written here, central finite
// differences of the loss values, hand-checked small cases (Keras's docstring examples) and every
// error message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "keras/errors.hpp"
#include "keras/losses.hpp"
#include "keras/metrics.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using namespace keras;
using Vec = std::vector<double>;

namespace {

// Keras clips probabilities to [epsilon, 1 - epsilon] with epsilon = 1e-7, in float32.
const double kLow = 1e-7f;
const double kHigh = 1.0f - 1e-7f;

// Central finite differences of loss.compute with respect to each element of y_pred. The float32
// perturbation is rounded, so the step actually taken is used as the denominator.
Vec finite_differences(const losses::Loss& loss, const Tensor& y_true, const Tensor& y_pred, double h = 1e-4) {
    Tensor x = y_pred.clone();
    float* p = x.data<float>();
    Vec g(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < g.size(); ++i) {
        const float saved = p[i];
        p[i] = static_cast<float>(saved + h);
        const double up = p[i];
        const double f_up = loss.compute(y_true, x, nullptr);
        p[i] = static_cast<float>(saved - h);
        const double down = p[i];
        const double f_down = loss.compute(y_true, x, nullptr);
        p[i] = saved;
        g[i] = (f_up - f_down) / (up - down);
    }
    return g;
}

struct LossAndGrad {
    double loss;
    Vec grad;
};

// Runs a loss, checks that the gradient has y_pred's shape, returns both as doubles.
LossAndGrad run(const losses::Loss& loss, const Tensor& y_true, const Tensor& y_pred) {
    Tensor grad;
    const double value = loss.compute(y_true, y_pred, &grad);
    REQUIRE(grad.defined());
    CHECK(grad.shape() == y_pred.shape());
    CHECK(loss.compute(y_true, y_pred, nullptr) == value);
    return {value, values_of(grad)};
}

void check_close(const Vec& got, const Vec& want, double atol, double rtol) {
    const double err = ref::max_rel_err(got, want, atol, rtol);
    CHECK_MESSAGE(err <= 1.0, "max relative error " << err);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---- independent reference formulas (double precision, written from Keras's definitions)

// Binary crossentropy averaged over all n elements; probabilities are clipped and the clipped
// positions have zero gradient.
LossAndGrad bce_reference(const Vec& y, const Vec& p, bool from_logits, double ls = 0.0) {
    const double n = static_cast<double>(y.size());
    LossAndGrad r{0.0, Vec(y.size())};
    for (size_t i = 0; i < y.size(); ++i) {
        const double t = y[i] * (1.0 - ls) + 0.5 * ls;
        if (from_logits) {
            const double s = sigmoid(p[i]);
            r.loss += -(t * std::log(s) + (1.0 - t) * std::log(1.0 - s)) / n;
            r.grad[i] = (s - t) / n;
        } else {
            const bool clipped = p[i] < kLow || p[i] > kHigh;
            const double q = std::min(std::max(p[i], kLow), kHigh);
            r.loss += -(t * std::log(q) + (1.0 - t) * std::log(1.0 - q)) / n;
            r.grad[i] = clipped ? 0.0 : (q - t) / (q * (1.0 - q)) / n;
        }
    }
    return r;
}

// Categorical crossentropy averaged over rows of K. Probabilities: q = p / sum(p), clipped; the
// gradient uses the full Jacobian of the normalisation, dq_j/dp_k = (delta_jk * S - p_j) / S^2.
LossAndGrad cce_reference(const Vec& y, const Vec& p, int64_t K, bool from_logits, double ls = 0.0) {
    const int64_t rows = static_cast<int64_t>(p.size()) / K;
    LossAndGrad r{0.0, Vec(p.size(), 0.0)};
    for (int64_t row = 0; row < rows; ++row) {
        const double* x = &p[row * K];
        Vec t(K);
        for (int64_t j = 0; j < K; ++j) t[j] = y[row * K + j] * (1.0 - ls) + ls / static_cast<double>(K);
        if (from_logits) {
            double z = 0.0, sum_t = 0.0;
            for (int64_t j = 0; j < K; ++j) z += std::exp(x[j]);
            for (int64_t j = 0; j < K; ++j) sum_t += t[j];
            for (int64_t j = 0; j < K; ++j) {
                const double softmax = std::exp(x[j]) / z;
                r.loss += -t[j] * std::log(softmax) / rows;
                r.grad[row * K + j] = (softmax * sum_t - t[j]) / rows;
            }
        } else {
            double S = 0.0;
            for (int64_t j = 0; j < K; ++j) S += x[j];
            for (int64_t j = 0; j < K; ++j) {
                const double q = x[j] / S;
                const bool clipped = q < kLow || q > kHigh;
                r.loss += -t[j] * std::log(std::min(std::max(q, kLow), kHigh)) / rows;
                if (clipped) continue;
                for (int64_t k = 0; k < K; ++k)
                    r.grad[row * K + k] += (-t[j] / q) * ((j == k ? S : 0.0) - x[j]) / (S * S) / rows;
            }
        }
    }
    return r;
}

Vec one_hot(const std::vector<int>& ids, int64_t K) {
    Vec out(ids.size() * K, 0.0);
    for (size_t i = 0; i < ids.size(); ++i) out[i * K + ids[i]] = 1.0;
    return out;
}

// Random values in [lo, hi) rounded to float32 (so formula and loss see identical inputs).
Vec random_floats(size_t n, unsigned seed, double lo, double hi) {
    Vec v = ref::random_vec(n, seed, lo, hi);
    for (double& x : v) x = static_cast<float>(x);
    return v;
}

Vec random_labels01(size_t n, unsigned seed) {
    Vec v = ref::random_vec(n, seed, 0.0, 1.0);
    for (double& x : v) x = x < 0.5 ? 0.0 : 1.0;
    return v;
}

}  // namespace

// ============================================================================ losses

TEST_CASE("binary_crossentropy on probabilities: value, gradient, finite differences") {
    const Vec y = random_labels01(12, 1);
    const Vec p = random_floats(12, 2, 0.1, 0.9);
    const Tensor y_true = floats(y, {4, 3}), y_pred = floats(p, {4, 3});
    losses::BinaryCrossentropy loss;
    const LossAndGrad got = run(loss, y_true, y_pred);
    const LossAndGrad want = bce_reference(y, p, false);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(loss, y_true, y_pred), 1e-8, 1e-4);
}

TEST_CASE("binary_crossentropy with soft labels and label smoothing") {
    const Vec y = random_floats(10, 3, 0.0, 1.0);
    const Vec p = random_floats(10, 4, 0.05, 0.95);
    const Tensor y_true = floats(y, {10, 1}), y_pred = floats(p, {10, 1});
    losses::BinaryCrossentropy loss({.label_smoothing = 0.2f});
    const LossAndGrad got = run(loss, y_true, y_pred);
    const LossAndGrad want = bce_reference(y, p, false, double{0.2f});
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(loss, y_true, y_pred), 1e-8, 1e-4);
}

TEST_CASE("binary_crossentropy clips saturated probabilities and gives them zero gradient") {
    const Vec y = {1, 0, 1, 0, 1, 0};
    const Vec p = {0.0, 1.0, 1e-9, 0.99999999, 0.3, 0.6};   // 0.99999999 rounds to 1.0f
    const Tensor y_true = floats(y, {6}), y_pred = floats(p, {6});
    const LossAndGrad got = run(losses::BinaryCrossentropy(), y_true, y_pred);
    // Hand-checked: p = 0 and 1e-9 (label 1) cost -log(1e-7); p = 1 (label 0) costs -log(1 - (1 - 1e-7)),
    // where 1 - 1e-7 is rounded to float32 (0.99999988) as Keras computes in float32.
    const double low = -std::log(1e-7), high = -std::log(1.0 - 0.99999988079071044921875);
    const double expected = (2 * low + 2 * high - std::log(0.3f) - std::log(1.0 - 0.6f)) / 6.0;
    CHECK(got.loss == doctest::Approx(expected).epsilon(1e-6));
    CHECK(got.loss == doctest::Approx(bce_reference(y, values_of(y_pred), false).loss).epsilon(1e-12));
    for (int i = 0; i < 4; ++i) CHECK(got.grad[i] == 0.0);
    CHECK(got.grad[4] == doctest::Approx(-1.0 / 0.3f / 6.0).epsilon(1e-6));
    CHECK(got.grad[5] == doctest::Approx(1.0 / (1.0 - 0.6f) / 6.0).epsilon(1e-6));
}

TEST_CASE("binary_crossentropy from logits: formula, finite differences, and equals the sigmoid form") {
    const Vec y = random_labels01(8, 5);
    const Vec x = random_floats(8, 6, -4.0, 4.0);
    const Tensor y_true = floats(y, {2, 4}), logits = floats(x, {2, 4});
    losses::BinaryCrossentropy loss({.from_logits = true});
    const LossAndGrad got = run(loss, y_true, logits);
    const LossAndGrad want = bce_reference(y, x, true);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(loss, y_true, logits), 1e-8, 1e-4);

    // Same loss on probabilities sigmoid(x); the gradient maps back through sigmoid'(x) = s(1 - s).
    Vec probs(x.size());
    for (size_t i = 0; i < x.size(); ++i) probs[i] = sigmoid(x[i]);
    const LossAndGrad via_probs = run(losses::BinaryCrossentropy(), y_true, floats(probs, {2, 4}));
    CHECK(got.loss == doctest::Approx(via_probs.loss).epsilon(1e-6));
    Vec chained(x.size());
    for (size_t i = 0; i < x.size(); ++i) chained[i] = via_probs.grad[i] * probs[i] * (1.0 - probs[i]);
    check_close(got.grad, chained, 1e-7, 1e-5);
}

TEST_CASE("binary_crossentropy from logits stays finite for large logits and smooths labels") {
    const Vec y = {1, 0, 1, 0};
    const Vec x = {80.0, -80.0, -80.0, 80.0};
    const Tensor y_true = floats(y, {4, 1}), logits = floats(x, {4, 1});
    const LossAndGrad got = run(losses::BinaryCrossentropy({.from_logits = true}), y_true, logits);
    // Correct confident predictions cost ~0; wrong ones cost |x| = 80 each.
    CHECK(got.loss == doctest::Approx(80.0 * 2 / 4).epsilon(1e-12));
    check_close(got.grad, {0.0, 0.0, -0.25, 0.25}, 1e-12, 1e-9);

    const LossAndGrad smooth = run(losses::BinaryCrossentropy({.from_logits = true, .label_smoothing = 0.1f}),
                                   y_true, floats({0.5, -1.5, 2.0, 0.0}, {4, 1}));
    const LossAndGrad want = bce_reference(y, {0.5, -1.5, 2.0, 0.0}, true, double{0.1f});
    CHECK(smooth.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(smooth.grad, want.grad, 1e-12, 1e-6);
}

TEST_CASE("categorical_crossentropy on probabilities normalises rows (value, gradient, finite differences)") {
    const int64_t K = 4;
    const std::vector<int> ids = {0, 3, 1, 2, 2};
    const Vec y = one_hot(ids, K);
    // Rows deliberately not summing to 1, to exercise Keras's normalisation.
    const Vec p = random_floats(5 * K, 7, 0.05, 1.0);
    const Tensor y_true = floats(y, {5, K}), y_pred = floats(p, {5, K});
    losses::CategoricalCrossentropy loss;
    const LossAndGrad got = run(loss, y_true, y_pred);
    const LossAndGrad want = cce_reference(y, p, K, false);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(loss, y_true, y_pred), 1e-8, 1e-4);

    // Hand-checked row: p = (0.2, 0.3, 0.5) already normalised, target class 2 -> -log(0.5).
    const double v = losses::CategoricalCrossentropy().compute(floats({0, 0, 1}, {1, 3}),
                                                              floats({0.2, 0.3, 0.5}, {1, 3}), nullptr);
    CHECK(v == doctest::Approx(std::log(2.0)).epsilon(1e-7));
}

TEST_CASE("categorical_crossentropy with soft targets, label smoothing and a clipped zero probability") {
    const int64_t K = 3;
    const Vec y = {0.2, 0.3, 0.5, 1.0, 0.0, 0.0};
    const Vec p = {0.1, 0.6, 0.3, 0.0, 0.5, 0.5};   // row 2 has a zero probability (clipped)
    const Tensor y_true = floats(y, {2, K}), y_pred = floats(p, {2, K});
    losses::CategoricalCrossentropy loss({.label_smoothing = 0.3f});
    const LossAndGrad got = run(loss, y_true, y_pred);
    const LossAndGrad want = cce_reference(values_of(y_true), values_of(y_pred), K, false, double{0.3f});
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    // Row 1 has no clipping: finite differences hold there.
    const Vec fd = finite_differences(loss, y_true, y_pred);
    check_close(Vec(got.grad.begin(), got.grad.begin() + 3), Vec(fd.begin(), fd.begin() + 3), 1e-8, 1e-4);
}

TEST_CASE("categorical_crossentropy from logits: formula, finite differences, equals softmax probabilities") {
    const int64_t K = 5;
    const Vec y = one_hot({4, 0, 2}, K);
    const Vec x = random_floats(3 * K, 8, -3.0, 3.0);
    const Tensor y_true = floats(y, {3, K}), logits = floats(x, {3, K});
    losses::CategoricalCrossentropy loss({.from_logits = true});
    const LossAndGrad got = run(loss, y_true, logits);
    const LossAndGrad want = cce_reference(y, x, K, true);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(loss, y_true, logits), 1e-8, 1e-4);

    const Vec probs = ref::softmax_rows(x, 3, static_cast<int>(K));
    const double via_probs = losses::CategoricalCrossentropy().compute(y_true, floats(probs, {3, K}), nullptr);
    CHECK(got.loss == doctest::Approx(via_probs).epsilon(1e-6));

    // Large logits do not overflow (log-softmax is shifted by the row maximum).
    const double big = loss.compute(floats({0, 1}, {1, 2}), floats({1000.0, 990.0}, {1, 2}), nullptr);
    CHECK(big == doctest::Approx(10.0 + std::log1p(std::exp(-10.0))).epsilon(1e-9));
}

TEST_CASE("categorical_crossentropy averages over every row of a rank-3 prediction") {
    const int64_t K = 3;
    const Vec y = one_hot({0, 1, 2, 2, 1, 0}, K);
    const Vec x = random_floats(6 * K, 9, -2.0, 2.0);
    const Tensor y_true = floats(y, {2, 3, K}), logits = floats(x, {2, 3, K});
    losses::CategoricalCrossentropy loss({.from_logits = true});
    const LossAndGrad got = run(loss, y_true, logits);
    const LossAndGrad want = cce_reference(y, x, K, true);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
    check_close(got.grad, want.grad, 1e-12, 1e-6);
}

TEST_CASE("sparse_categorical_crossentropy equals categorical with one-hot targets, for every id layout") {
    const int64_t K = 4;
    const std::vector<int> ids = {3, 0, 2, 1, 3};
    const Vec p = random_floats(5 * K, 10, 0.05, 1.0);
    const Vec x = random_floats(5 * K, 11, -3.0, 3.0);
    const Tensor y_pred = floats(p, {5, K}), logits = floats(x, {5, K});
    const Tensor one_hot_true = floats(one_hot(ids, K), {5, K});

    const std::vector<int32_t> ids32(ids.begin(), ids.end());
    const std::vector<int64_t> ids64(ids.begin(), ids.end());
    const std::vector<Tensor> layouts = {
        Tensor(ids32, {5}), Tensor(ids32, {5, 1}), Tensor(ids64, {5}), Tensor(ids64, {5, 1}),
        floats(Vec(ids.begin(), ids.end()), {5}), floats(Vec(ids.begin(), ids.end()), {5, 1}),
    };
    for (bool from_logits : {false, true}) {
        const Tensor& pred = from_logits ? logits : y_pred;
        const LossAndGrad want = cce_reference(one_hot(ids, K), values_of(pred), K, from_logits);
        losses::SparseCategoricalCrossentropy loss({.from_logits = from_logits});
        for (const Tensor& y_true : layouts) {
            CAPTURE(from_logits);
            CAPTURE(shape_str(y_true.shape()));
            const LossAndGrad got = run(loss, y_true, pred);
            CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-12));
            check_close(got.grad, want.grad, 1e-12, 1e-6);
        }
        check_close(run(loss, layouts[0], pred).grad, finite_differences(loss, layouts[0], pred), 1e-8, 1e-4);
        CHECK(loss.compute(layouts[0], pred, nullptr) ==
              doctest::Approx(losses::CategoricalCrossentropy({.from_logits = from_logits})
                                  .compute(one_hot_true, pred, nullptr)).epsilon(1e-12));
    }
}

TEST_CASE("mean_squared_error and mean_absolute_error: formula and finite differences") {
    const Vec y = random_floats(12, 12, -2.0, 2.0);
    Vec p = random_floats(12, 13, -2.0, 2.0);
    const Tensor y_true = floats(y, {3, 4}), y_pred = floats(p, {3, 4});

    losses::MeanSquaredError mse;
    const LossAndGrad got = run(mse, y_true, y_pred);
    double want = 0.0;
    Vec want_grad(12);
    for (size_t i = 0; i < 12; ++i) {
        want += (y[i] - p[i]) * (y[i] - p[i]) / 12.0;
        want_grad[i] = 2.0 * (p[i] - y[i]) / 12.0;
    }
    CHECK(got.loss == doctest::Approx(want).epsilon(1e-12));
    check_close(got.grad, want_grad, 1e-12, 1e-6);
    check_close(got.grad, finite_differences(mse, y_true, y_pred), 1e-8, 1e-4);

    losses::MeanAbsoluteError mae;
    const LossAndGrad got_mae = run(mae, y_true, y_pred);
    double want_mae = 0.0;
    for (size_t i = 0; i < 12; ++i) {
        want_mae += std::fabs(y[i] - p[i]) / 12.0;
        want_grad[i] = (p[i] > y[i] ? 1.0 : -1.0) / 12.0;
    }
    CHECK(got_mae.loss == doctest::Approx(want_mae).epsilon(1e-12));
    check_close(got_mae.grad, want_grad, 1e-12, 1e-6);
    check_close(got_mae.grad, finite_differences(mae, y_true, y_pred), 1e-8, 1e-4);

    // Hand-checked (Keras docstring): MSE([1, 0, 1], [0.9, 0.1, 0.8]) = 0.02; |p - y| has gradient 0 at p == y.
    CHECK(mse.compute(floats({1, 0, 1}, {3}), floats({0.9, 0.1, 0.8}, {3}), nullptr) ==
          doctest::Approx(0.02).epsilon(1e-6));
    CHECK(run(mae, floats({0.5, 1.0}, {2}), floats({0.5, 2.0}, {2})).grad == Vec{0.0, 0.5});
}

TEST_CASE("losses accept y_true (N,) against y_pred (N, 1) and the reverse, as Keras squeezes/expands") {
    const Vec y = {1, 0, 1, 1};
    const Vec p = {0.7, 0.2, 0.4, 0.9};
    const std::vector<losses::LossPtr> all = {losses::get("binary_crossentropy"), losses::get("mse"),
                                              losses::get("mae")};
    for (const auto& loss : all) {
        CAPTURE(loss->name());
        const LossAndGrad same = run(*loss, floats(y, {4, 1}), floats(p, {4, 1}));
        const LossAndGrad flat_true = run(*loss, floats(y, {4}), floats(p, {4, 1}));
        const LossAndGrad flat_pred = run(*loss, floats(y, {4, 1}), floats(p, {4}));
        CHECK(flat_true.loss == same.loss);
        CHECK(flat_pred.loss == same.loss);
        CHECK(flat_true.grad == same.grad);
        CHECK(flat_pred.grad == same.grad);
    }
    // Rank 3 against rank 2 with a trailing 1 is squeezed too.
    CHECK_NOTHROW(losses::MeanSquaredError().compute(floats(Vec(6, 0.0), {2, 3}), floats(Vec(6, 1.0), {2, 3, 1}),
                                                     nullptr));
}

TEST_CASE("loss shape errors name both shapes") {
    const Tensor t32x3 = Tensor::zeros({32, 3}), p32x2 = Tensor::full({32, 2}, 0.5f);
    const std::string same = "Arguments `target` and `output` must have the same shape. Received: ";
    for (const char* name : {"binary_crossentropy", "categorical_crossentropy", "mse", "mae"}) {
        CAPTURE(name);
        const auto loss = losses::get(name);
        CHECK_THROWS_WITH_AS(loss->compute(t32x3, p32x2, nullptr),
                             (same + "target.shape=(32, 3), output.shape=(32, 2)").c_str(), ValueError);
        CHECK_THROWS_WITH_AS(loss->compute(Tensor::zeros({32}), p32x2, nullptr),
                             (same + "target.shape=(32,), output.shape=(32, 2)").c_str(), ValueError);
        CHECK_THROWS_WITH_AS(loss->check_shapes(Tensor::zeros({16, 1}), {32, 1}),
                             (same + "target.shape=(16, 1), output.shape=(32, 1)").c_str(), ValueError);
    }
    CHECK(losses::check_same_shape({8}, {8, 1}) == Shape{8, 1});
    CHECK(losses::check_same_shape({8, 5, 1}, {8, 5}) == Shape{8, 5});
}

TEST_CASE("sparse_categorical_crossentropy errors: shapes, out-of-range ids, label smoothing") {
    losses::SparseCategoricalCrossentropy loss;
    const Tensor y_pred = Tensor::full({4, 3}, 1.0f / 3);
    CHECK_THROWS_WITH_AS(loss.compute(Tensor(std::vector<int32_t>{0, 1, 2}, {3}), y_pred, nullptr),
                         "Arguments `target` and `output` must have the same shape up until the last dimension: "
                         "target.shape=(3,), output.shape=(4, 3)", ValueError);
    CHECK_THROWS_WITH_AS(loss.compute(Tensor(std::vector<int32_t>{0, 1, 2, 1, 0, 0, 1, 2}, {4, 2}), y_pred, nullptr),
                         "Arguments `target` and `output` must have the same shape up until the last dimension: "
                         "target.shape=(4, 2), output.shape=(4, 3)", ValueError);
    CHECK_THROWS_WITH_AS(loss.compute(Tensor(std::vector<int32_t>{0, 1, 3, 1}, {4}), y_pred, nullptr),
                         "Received a label value of 3 which is outside the valid range of [0, 3).", ValueError);
    CHECK_THROWS_WITH_AS(loss.compute(Tensor(std::vector<int64_t>{0, -1, 2, 1}, {4, 1}), y_pred, nullptr),
                         "Received a label value of -1 which is outside the valid range of [0, 3).", ValueError);
    CHECK_THROWS_WITH_AS(loss.compute(floats({0, 1, 2, 7.5}, {4}), y_pred, nullptr),
                         "Received a label value of 7.5 which is outside the valid range of [0, 3).", ValueError);
    CHECK_THROWS_WITH_AS(losses::SparseCategoricalCrossentropy({.label_smoothing = 0.1f}),
                         "SparseCategoricalCrossentropy does not support `label_smoothing`. Received: "
                         "label_smoothing=0.1", ValueError);
}

TEST_CASE("losses::get resolves Keras identifiers and rejects unknown ones") {
    const std::vector<std::pair<std::string, std::string>> table = {
        {"binary_crossentropy", "binary_crossentropy"}, {"bce", "binary_crossentropy"},
        {"BCE", "binary_crossentropy"}, {"BinaryCrossentropy", "binary_crossentropy"},
        {"categorical_crossentropy", "categorical_crossentropy"},
        {"CategoricalCrossentropy", "categorical_crossentropy"},
        {"sparse_categorical_crossentropy", "sparse_categorical_crossentropy"},
        {"SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"},
        {"mean_squared_error", "mean_squared_error"}, {"mse", "mean_squared_error"},
        {"MSE", "mean_squared_error"}, {"MeanSquaredError", "mean_squared_error"},
        {"mean_absolute_error", "mean_absolute_error"}, {"mae", "mean_absolute_error"},
        {"MAE", "mean_absolute_error"}, {"MeanAbsoluteError", "mean_absolute_error"},
    };
    for (const auto& [id, name] : table) {
        const std::string& identifier = id;   // CAPTURE's lambda cannot capture a structured binding in clang 14
        CAPTURE(identifier);
        CHECK(losses::get(identifier)->name() == name);
    }
    CHECK(dynamic_cast<losses::BinaryCrossentropy*>(losses::get("bce").get()) != nullptr);
    CHECK(dynamic_cast<losses::MeanAbsoluteError*>(losses::get("mae").get()) != nullptr);
    CHECK_THROWS_WITH_AS(losses::get("hinge_loss"), "Could not interpret loss identifier: hinge_loss", ValueError);
    // Keras's lookup is case-sensitive.
    CHECK_THROWS_WITH_AS(losses::get("Mse"), "Could not interpret loss identifier: Mse", ValueError);
}

TEST_CASE("loss configs carry Keras's keys") {
    using nlohmann::json;
    CHECK(losses::BinaryCrossentropy({.from_logits = true, .label_smoothing = 0.1f}).get_config() ==
          json{{"name", "binary_crossentropy"}, {"reduction", "sum_over_batch_size"}, {"from_logits", true},
               {"label_smoothing", 0.1}, {"axis", -1}});
    CHECK(losses::CategoricalCrossentropy().get_config() ==
          json{{"name", "categorical_crossentropy"}, {"reduction", "sum_over_batch_size"}, {"from_logits", false},
               {"label_smoothing", 0.0}, {"axis", -1}});
    CHECK(losses::SparseCategoricalCrossentropy().get_config() ==
          json{{"name", "sparse_categorical_crossentropy"}, {"reduction", "sum_over_batch_size"},
               {"from_logits", false}, {"ignore_class", nullptr}});
    CHECK(losses::MeanSquaredError().get_config() ==
          json{{"name", "mean_squared_error"}, {"reduction", "sum_over_batch_size"}});
}

// ============================================================================ metrics

TEST_CASE("binary accuracy: Keras's example, strict threshold, accumulation over batches") {
    metrics::BinaryAccuracy m;
    CHECK(m.name() == "binary_accuracy");
    CHECK(m.result() == 0.0);
    // Keras docstring: [[1], [1], [0], [0]] vs [[0.98], [1], [0], [0.6]] -> 0.75.
    m.update_state(floats({1, 1, 0, 0}, {4, 1}), floats({0.98, 1, 0, 0.6}, {4, 1}));
    CHECK(m.result() == doctest::Approx(0.75));
    // A prediction equal to the threshold counts as 0 (pred > threshold): 2 more samples, both correct.
    m.update_state(floats({0, 0}, {2, 1}), floats({0.5, 0.4}, {2, 1}));
    CHECK(m.result() == doctest::Approx(5.0 / 6.0));
    m.reset_state();
    CHECK(m.result() == 0.0);

    metrics::BinaryAccuracy high("acc", 0.7f);
    high.update_state(floats({1, 1, 0}, {3}), floats({0.69, 0.71, 0.3}, {3, 1}));
    CHECK(high.result() == doctest::Approx(2.0 / 3.0));
    CHECK(high.name() == "acc");
}

TEST_CASE("binary accuracy matches a per-element formula over several outputs and batches") {
    metrics::BinaryAccuracy m;
    double correct = 0.0, seen = 0.0;
    for (unsigned batch = 0; batch < 3; ++batch) {
        const size_t n = 4 + batch;   // batches of 4, 5, 6 samples with 2 outputs each
        const Vec y = random_labels01(2 * n, 20 + batch);
        const Vec p = random_floats(2 * n, 30 + batch, 0.0, 1.0);
        m.update_state(floats(y, {static_cast<int64_t>(n), 2}), floats(p, {static_cast<int64_t>(n), 2}));
        for (size_t i = 0; i < y.size(); ++i) correct += (y[i] == (p[i] > 0.5 ? 1.0 : 0.0)) ? 1.0 : 0.0;
        seen += static_cast<double>(y.size());
    }
    CHECK(m.result() == doctest::Approx(correct / seen).epsilon(1e-12));
}

TEST_CASE("categorical accuracy: Keras's example, ties take the first index, rank-3 rows") {
    metrics::CategoricalAccuracy m;
    // Keras docstring: [[0, 0, 1], [0, 1, 0]] vs [[0.1, 0.9, 0.8], [0.05, 0.95, 0]] -> 0.5.
    m.update_state(floats({0, 0, 1, 0, 1, 0}, {2, 3}), floats({0.1, 0.9, 0.8, 0.05, 0.95, 0}, {2, 3}));
    CHECK(m.result() == doctest::Approx(0.5));
    m.reset_state();
    m.update_state(floats({1, 0, 0, 0, 1, 0}, {2, 3}), floats({0.4, 0.4, 0.2, 0.4, 0.4, 0.2}, {2, 3}));
    CHECK(m.result() == doctest::Approx(0.5));

    // Rank 3: the fraction of matching rows over all batches.
    metrics::CategoricalAccuracy seq;
    double matches = 0.0, rows = 0.0;
    for (unsigned batch = 0; batch < 2; ++batch) {
        const int64_t N = 2 + batch, T = 3, K = 4;
        const Vec y = one_hot(std::vector<int>(N * T, static_cast<int>(batch) + 1), K);
        const Vec p = random_floats(N * T * K, 40 + batch, 0.0, 1.0);
        seq.update_state(floats(y, {N, T, K}), floats(p, {N, T, K}));
        for (int64_t r = 0; r < N * T; ++r) {
            const auto row = p.begin() + r * K;
            matches += (std::max_element(row, row + K) - row) == static_cast<int>(batch) + 1 ? 1.0 : 0.0;
            rows += 1.0;
        }
    }
    CHECK(seq.result() == doctest::Approx(matches / rows).epsilon(1e-12));
}

TEST_CASE("sparse categorical accuracy: Keras's example and every id layout") {
    metrics::SparseCategoricalAccuracy m;
    // Keras docstring: [[2], [1]] vs [[0.1, 0.6, 0.3], [0.05, 0.95, 0]] -> 0.5.
    m.update_state(floats({2, 1}, {2, 1}), floats({0.1, 0.6, 0.3, 0.05, 0.95, 0}, {2, 3}));
    CHECK(m.result() == doctest::Approx(0.5));
    m.update_state(Tensor(std::vector<int32_t>{1, 1}, {2}), floats({0.1, 0.6, 0.3, 0.05, 0.95, 0}, {2, 3}));
    CHECK(m.result() == doctest::Approx(3.0 / 4.0));
    m.update_state(Tensor(std::vector<int64_t>{0}, {1, 1}), floats({0.7, 0.2, 0.1}, {1, 3}));
    CHECK(m.result() == doctest::Approx(4.0 / 5.0));
    // A non-integral id never equals an argmax.
    m.reset_state();
    m.update_state(floats({1.5}, {1}), floats({0.1, 0.8, 0.1}, {1, 3}));
    CHECK(m.result() == 0.0);
}

TEST_CASE("mse and mae metrics average per-sample means over batches") {
    metrics::MeanSquaredError mse("mse");
    metrics::MeanAbsoluteError mae;
    double sq = 0.0, ab = 0.0, samples = 0.0;
    for (unsigned batch = 0; batch < 3; ++batch) {
        const int64_t N = 2 + batch, K = 3;
        const Vec y = random_floats(N * K, 50 + batch, -1.0, 1.0), p = random_floats(N * K, 60 + batch, -1.0, 1.0);
        mse.update_state(floats(y, {N, K}), floats(p, {N, K}));
        mae.update_state(floats(y, {N, K}), floats(p, {N, K}));
        for (int64_t i = 0; i < N * K; ++i) {
            sq += (y[i] - p[i]) * (y[i] - p[i]) / K;
            ab += std::fabs(y[i] - p[i]) / K;
        }
        samples += static_cast<double>(N);
    }
    CHECK(mse.name() == "mse");
    CHECK(mae.name() == "mean_absolute_error");
    CHECK(mse.result() == doctest::Approx(sq / samples).epsilon(1e-12));
    CHECK(mae.result() == doctest::Approx(ab / samples).epsilon(1e-12));

    // (N,) against (N, 1) is one value per sample.
    metrics::MeanSquaredError col;
    col.update_state(floats({1, 2, 3}, {3}), floats({1, 1, 1}, {3, 1}));
    col.update_state(floats({0}, {1}), floats({2}, {1, 1}));
    CHECK(col.result() == doctest::Approx((0.0 + 1 + 4 + 4) / 4));
    // Keras 3 quirk, reproduced: rank-1 y_true and y_pred reduce to one scalar per batch, counted once.
    metrics::MeanSquaredError flat;
    flat.update_state(floats({1, 2, 3}, {3}), floats({1, 1, 1}, {3}));
    flat.update_state(floats({0}, {1}), floats({2}, {1}));
    CHECK(flat.result() == doctest::Approx((5.0 / 3 + 4.0) / 2));
}

TEST_CASE("metric shape errors") {
    const std::string same = "Arguments `target` and `output` must have the same shape. Received: ";
    CHECK_THROWS_WITH_AS(metrics::BinaryAccuracy().update_state(Tensor::zeros({4, 2}), Tensor::zeros({4, 1})),
                         (same + "target.shape=(4, 2), output.shape=(4, 1)").c_str(), ValueError);
    CHECK_THROWS_WITH_AS(metrics::CategoricalAccuracy().update_state(Tensor::zeros({4}), Tensor::zeros({4, 3})),
                         (same + "target.shape=(4,), output.shape=(4, 3)").c_str(), ValueError);
    CHECK_THROWS_WITH_AS(metrics::MeanAbsoluteError().update_state(Tensor::zeros({3, 2}), Tensor::zeros({4, 2})),
                         (same + "target.shape=(3, 2), output.shape=(4, 2)").c_str(), ValueError);
    CHECK_THROWS_WITH_AS(metrics::SparseCategoricalAccuracy().update_state(Tensor::zeros({3}), Tensor::zeros({4, 2})),
                         "Arguments `target` and `output` must have the same shape up until the last dimension: "
                         "target.shape=(3,), output.shape=(4, 2)", ValueError);
}

TEST_CASE("metrics::get resolves accuracy like Keras and keeps the user's name") {
    struct Case {
        std::string name, loss;
        int64_t units;
        const char* kind;
    };
    const std::vector<Case> cases = {
        {"accuracy", "binary_crossentropy", 1, "binary"},
        {"acc", "mse", 1, "binary"},
        {"accuracy", "binary_crossentropy", 3, "binary"},
        {"Accuracy", "bce", 4, "binary"},
        {"accuracy", "sparse_categorical_crossentropy", 10, "sparse"},
        {"ACC", "SparseCategoricalCrossentropy", 10, "sparse"},
        {"accuracy", "sparse_categorical_crossentropy", 1, "binary"},
        {"accuracy", "categorical_crossentropy", 10, "categorical"},
        {"acc", "", 5, "categorical"},
        {"binary_accuracy", "categorical_crossentropy", 10, "binary"},
        {"BinaryAccuracy", "", 10, "binary"},
        {"categorical_accuracy", "binary_crossentropy", 1, "categorical"},
        {"CategoricalAccuracy", "", 1, "categorical"},
        {"sparse_categorical_accuracy", "", 1, "sparse"},
        {"SparseCategoricalAccuracy", "", 1, "sparse"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        CAPTURE(c.loss);
        const metrics::MetricPtr m = metrics::get(c.name, c.loss, c.units);
        CHECK(m->name() == c.name);
        const std::string kind = dynamic_cast<metrics::BinaryAccuracy*>(m.get())              ? "binary"
                                 : dynamic_cast<metrics::SparseCategoricalAccuracy*>(m.get()) ? "sparse"
                                 : dynamic_cast<metrics::CategoricalAccuracy*>(m.get())       ? "categorical"
                                                                                              : "other";
        CHECK(kind == c.kind);
    }
    for (const char* n : {"mse", "MSE", "mean_squared_error", "MeanSquaredError"}) {
        CHECK(dynamic_cast<metrics::MeanSquaredError*>(metrics::get(n, "mse", 1).get()) != nullptr);
        CHECK(metrics::get(n, "mse", 1)->name() == n);
    }
    for (const char* n : {"mae", "MAE", "mean_absolute_error", "MeanAbsoluteError"})
        CHECK(dynamic_cast<metrics::MeanAbsoluteError*>(metrics::get(n, "mse", 1).get()) != nullptr);
    CHECK_THROWS_WITH_AS(metrics::get("precision", "mse", 1), "Could not interpret metric identifier: precision",
                         ValueError);
    CHECK_THROWS_WITH_AS(metrics::get("Binary_Accuracy", "mse", 1),
                         "Could not interpret metric identifier: Binary_Accuracy", ValueError);
}
