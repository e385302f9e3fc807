// BatchNormalization, LayerNormalization, UnitNormalization and the noise layers (SpatialDropout1D,
// GaussianNoise, GaussianDropout): forward and gradients against a double-precision reference (its
// gradients by central differences), BatchNormalization's moving statistics, files and configs written by
// REAL Keras 3 (tests/fixtures/gen_norm_fixtures.py: predictions, and one train_on_batch step's loss and
// moving statistics), save / load round trips, and Keras's messages for bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "keras/backend.hpp"
#include "keras/keras.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/norm/";

nlohmann::json fixture(const std::string& name) {
    std::ifstream in(kFixtures + "norm_fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in).at(name);
}

Tensor from_json(const nlohmann::json& a, DType dtype = DType::float32) {
    const Tensor t = floats(a["values"].get<std::vector<double>>(), a["shape"].get<Shape>());
    return dtype == DType::float32 ? t : t.astype(dtype);
}

void check_close(const Tensor& got, const nlohmann::json& want, double tol, const std::string& what) {
    INFO(what);
    REQUIRE(got.shape() == want["shape"].get<Shape>());
    const auto g = values_of(got);
    const auto w = want["values"].get<std::vector<double>>();
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(w[i]).epsilon(tol).scale(1.0));
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
}

// ---- The double-precision reference: a (rows, features) view where the statistic of a feature runs over
// the rows (BatchNormalization) or of a row over its features (LayerNormalization, UnitNormalization).
using Vec = std::vector<double>;

// Training-mode BatchNormalization over axis -1 of (rows, c), the rows weighted by mask (1 / 0).
Vec ref_batch_norm(const Vec& x, const Vec& mask, size_t c, const Vec& gamma, const Vec& beta, double eps,
                   Vec* mean_out = nullptr, Vec* var_out = nullptr) {
    const size_t rows = x.size() / c;
    Vec y(x.size()), mean(c, 0.0), var(c, 0.0), count(c, 0.0);
    for (size_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < c; ++j) mean[j] += mask[r] * x[r * c + j], count[j] += mask[r];
    for (size_t j = 0; j < c; ++j) mean[j] /= count[j];
    for (size_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < c; ++j) var[j] += mask[r] * std::pow(x[r * c + j] - mean[j], 2);
    for (size_t j = 0; j < c; ++j) var[j] /= count[j];
    for (size_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < c; ++j)
            y[r * c + j] = gamma[j] * (x[r * c + j] - mean[j]) / std::sqrt(var[j] + eps) + beta[j];
    if (mean_out) *mean_out = mean;
    if (var_out) *var_out = var;
    return y;
}

Vec ref_layer_norm(const Vec& x, size_t c, const Vec& gamma, const Vec& beta, double eps) {
    Vec y(x.size());
    for (size_t r = 0; r < x.size() / c; ++r) {
        double mean = 0, var = 0;
        for (size_t j = 0; j < c; ++j) mean += x[r * c + j] / c;
        for (size_t j = 0; j < c; ++j) var += std::pow(x[r * c + j] - mean, 2) / c;
        for (size_t j = 0; j < c; ++j) y[r * c + j] = gamma[j] * (x[r * c + j] - mean) / std::sqrt(var + eps) + beta[j];
    }
    return y;
}

Vec ref_unit_norm(const Vec& x, size_t c) {
    Vec y(x.size());
    for (size_t r = 0; r < x.size() / c; ++r) {
        double sq = 0;
        for (size_t j = 0; j < c; ++j) sq += x[r * c + j] * x[r * c + j];
        for (size_t j = 0; j < c; ++j) y[r * c + j] = x[r * c + j] / std::sqrt(sq);
    }
    return y;
}

// d(sum(w * f(p)))/dp by central differences in double precision.
Vec numeric_gradient(const std::function<Vec(const Vec&)>& f, Vec p, const Vec& w) {
    Vec g(p.size());
    const double h = 1e-6;
    for (size_t i = 0; i < p.size(); ++i) {
        const double keep = p[i];
        double plus = 0, minus = 0;
        p[i] = keep + h;
        const Vec a = f(p);
        p[i] = keep - h;
        const Vec b = f(p);
        p[i] = keep;
        for (size_t k = 0; k < a.size(); ++k) plus += w[k] * a[k], minus += w[k] * b[k];
        g[i] = (plus - minus) / (2 * h);
    }
    return g;
}

struct Grads {
    Vec y, dx;
    std::vector<Vec> dweights;
};

// The layer's output and the gradients of sum(w * layer(x)) with respect to x and its trainable weights.
Grads layer_gradients(Layer& layer, Tensor x, const Tensor& w, bool training) {
    GradientTape tape({.persistent = true});
    tape.watch(x);
    const Tensor y = layer(x, training);
    const Tensor loss = ops::sum(ops::multiply(y, w));
    Grads out{values_of(y), values_of(tape.gradient(loss, x)), {}};
    for (const auto& g : tape.gradient(loss, layer.trainable_weights())) out.dweights.push_back(values_of(g));
    return out;
}

}  // namespace

TEST_CASE("BatchNormalization in training: batch statistics, gradients of x, gamma and beta against the reference") {
    // (4, 3, 5): the statistics of each of the 5 features run over the 12 (sample, step) rows.
    const Tensor x = wavy({4, 3, 5}, 0.3, 0.7, 2.0), w = wavy({4, 3, 5}, 1.1, 0.37, 1.0);
    layers::BatchNormalization bn({.momentum = 0.8f, .epsilon = 0.01f});
    bn.build_for(x.shape());
    bn.set_weights({floats({0.5, -1.2, 2.0, 0.9, 1.3}, {5}), floats({0.1, 0.2, -0.3, 0.0, 0.4}, {5}),
                    floats({0.2, -0.1, 0.0, 0.3, 0.5}, {5}), floats({1.0, 0.5, 2.0, 0.7, 1.5}, {5})});
    const Vec gamma{0.5, -1.2, 2.0, 0.9, 1.3}, beta{0.1, 0.2, -0.3, 0.0, 0.4}, ones(12, 1.0);
    const Vec xv = values_of(x), wv = values_of(w);
    Vec batch_mean, batch_var;
    const Vec want = ref_batch_norm(xv, ones, 5, gamma, beta, 0.01, &batch_mean, &batch_var);
    const Grads got = layer_gradients(bn, x, w, true);
    check_close(got.y, want, 1e-5);
    check_close(got.dx, numeric_gradient([&](const Vec& p) { return ref_batch_norm(p, ones, 5, gamma, beta, 0.01); }, xv, wv), 1e-4);
    REQUIRE(got.dweights.size() == 2);
    check_close(got.dweights[0], numeric_gradient([&](const Vec& p) { return ref_batch_norm(xv, ones, 5, p, beta, 0.01); }, gamma, wv), 1e-4);
    check_close(got.dweights[1], numeric_gradient([&](const Vec& p) { return ref_batch_norm(xv, ones, 5, gamma, p, 0.01); }, beta, wv), 1e-4);

    // The moving statistics moved by (1 - momentum) toward the batch's (biased) mean and variance.
    const Vec mm0{0.2, -0.1, 0.0, 0.3, 0.5}, mv0{1.0, 0.5, 2.0, 0.7, 1.5};
    Vec mm, mv;
    for (size_t j = 0; j < 5; ++j) mm.push_back(0.8 * mm0[j] + 0.2 * batch_mean[j]), mv.push_back(0.8 * mv0[j] + 0.2 * batch_var[j]);
    check_close(values_of(bn.moving_mean->value), mm, 1e-5);
    check_close(values_of(bn.moving_variance->value), mv, 1e-5);
    CHECK_FALSE(bn.moving_mean->trainable);
    CHECK(bn.trainable_weights().size() == 2);
}

TEST_CASE("BatchNormalization in inference uses the moving statistics and leaves them; a frozen layer too") {
    const Tensor x = wavy({6, 3}, 0.1, 0.9, 1.5);
    layers::BatchNormalization bn({.center = false});
    bn.build_for(x.shape());
    bn.set_weights({floats({2.0, 1.0, -1.0}, {3}), floats({0.5, 0.0, -0.5}, {3}), floats({1.0, 4.0, 0.25}, {3})});
    auto expected = [&] {
        Vec y, xv = values_of(x);
        const Vec g{2.0, 1.0, -1.0}, m{0.5, 0.0, -0.5}, v{1.0, 4.0, 0.25};
        for (size_t i = 0; i < xv.size(); ++i) y.push_back(g[i % 3] * (xv[i] - m[i % 3]) / std::sqrt(v[i % 3] + 1e-3));
        return y;
    };
    check_close(values_of(bn(x)), expected(), 1e-5);
    check_close(values_of(bn.moving_mean->value), {0.5, 0.0, -0.5}, 1e-9);
    bn.trainable = false;   // Keras 3: a frozen BatchNormalization runs in inference mode even while training
    check_close(values_of(bn(x, true)), expected(), 1e-5);
    check_close(values_of(bn.moving_variance->value), {1.0, 4.0, 0.25}, 1e-9);
    CHECK(bn.weights().size() == 3);   // gamma, moving_mean, moving_variance: no beta without center
}

TEST_CASE("BatchNormalization under a mask: statistics over the real steps only, gradients included") {
    const Tensor x = wavy({3, 4, 2}, 0.5, 1.3, 1.0), w = wavy({3, 4, 2}, 0.2, 0.61, 1.0);
    const Vec mask{1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1};
    layers::BatchNormalization bn({.momentum = 0.5f});
    bn.build_for(x.shape());
    CallContext ctx;
    ctx.training = true;
    ctx.mask = floats(mask, {3, 4});
    Tensor xs = x;
    GradientTape tape({.persistent = true});
    tape.watch(xs);
    const Tensor y = ops::sum(ops::multiply(bn.call(xs, ctx), w));
    const Vec gamma{1, 1}, beta{0, 0}, xv = values_of(x), wv = values_of(w);
    Vec batch_mean, batch_var;
    ref_batch_norm(xv, mask, 2, gamma, beta, 1e-3, &batch_mean, &batch_var);
    check_close(values_of(tape.gradient(y, xs)),
                numeric_gradient([&](const Vec& p) { return ref_batch_norm(p, mask, 2, gamma, beta, 1e-3); }, xv, wv), 1e-4);
    check_close(values_of(bn.moving_mean->value), {0.5 * batch_mean[0], 0.5 * batch_mean[1]}, 1e-5);
    check_close(values_of(bn.moving_variance->value), {0.5 + 0.5 * batch_var[0], 0.5 + 0.5 * batch_var[1]}, 1e-5);
    ctx.mask = floats({1, 1, 1}, {3});
    CHECK(message_of([&] { bn.call(x, ctx); }) ==
          "The mask provided should be one dimension less than the inputs. Received: mask.shape=(3,), inputs.shape=(3, 4, 2)");
}

TEST_CASE("LayerNormalization and UnitNormalization: forward and gradients against the reference") {
    const Tensor x = wavy({2, 3, 4}, 0.2, 0.8, 1.7), w = wavy({2, 3, 4}, 0.9, 0.45, 1.0);
    const Vec xv = values_of(x), wv = values_of(w);
    layers::LayerNormalization ln({.epsilon = 0.01f});
    ln.build_for(x.shape());
    const Vec gamma{0.5, 1.5, -1.0, 2.0}, beta{0.1, -0.2, 0.3, 0.0};
    ln.set_weights({floats(gamma, {4}), floats(beta, {4})});
    const Grads got = layer_gradients(ln, x, w, true);
    check_close(got.y, ref_layer_norm(xv, 4, gamma, beta, 0.01), 1e-5);
    check_close(got.dx, numeric_gradient([&](const Vec& p) { return ref_layer_norm(p, 4, gamma, beta, 0.01); }, xv, wv), 1e-4);
    check_close(got.dweights[0], numeric_gradient([&](const Vec& p) { return ref_layer_norm(xv, 4, p, beta, 0.01); }, gamma, wv), 1e-4);
    check_close(got.dweights[1], numeric_gradient([&](const Vec& p) { return ref_layer_norm(xv, 4, gamma, p, 0.01); }, beta, wv), 1e-4);

    layers::UnitNormalization unit;
    const Grads u = layer_gradients(unit, x, w, false);
    check_close(u.y, ref_unit_norm(xv, 4), 1e-5);
    check_close(u.dx, numeric_gradient([&](const Vec& p) { return ref_unit_norm(p, 4); }, xv, wv), 1e-4);
    CHECK(values_of(unit(Tensor::zeros({1, 3}))) == Vec{0, 0, 0});   // zeros stay zeros (1/||x|| capped)

    // Over the steps and features together: gamma is (3, 4).
    layers::LayerNormalization both({.axis = {1, 2}});
    both.build_for(x.shape());
    CHECK(both.weights()[0]->value.shape() == Shape{3, 4});
    check_close(values_of(both(x)), ref_layer_norm(xv, 12, Vec(12, 1.0), Vec(12, 0.0), 1e-3), 1e-5);
}

// oneDNN's primitive (onednn) or the backend's composed default, forward and backward, for the
// layer_norm / batch_norm_training tests below.
struct NormPath {
    std::function<backend::NormForward(const Tensor& g, const Tensor& b)> forward;
    std::function<void(const Tensor& g, const Tensor& b, const backend::NormForward& fwd, Tensor& dx, Tensor& dg,
                       Tensor& db)>
        backward;
};

// Each path's y, dx, dgamma and dbeta against `ref` (double precision, central differences), with
// and without gamma / beta.
void check_norm_paths(const std::function<Vec(const Vec& x, const Vec& gamma, const Vec& beta)>& ref, const Tensor& x,
                      const Tensor& dy, const std::vector<NormPath>& paths) {
    const Vec xv = values_of(x), dyv = values_of(dy), gv{0.5, 1.5, -1.0, 2.0, 0.7, 1.1}, bv{0.1, -0.2, 0.3, 0.0, 1.0, -1.0};
    for (const bool scale : {false, true})
        for (const bool center : {false, true}) {
            CAPTURE(scale);
            CAPTURE(center);
            const Vec gamma = scale ? gv : Vec(6, 1.0), beta = center ? bv : Vec(6, 0.0);
            const Tensor g = scale ? floats(gv, {6}) : Tensor(), b = center ? floats(bv, {6}) : Tensor();
            const Vec want_dx = numeric_gradient([&](const Vec& p) { return ref(p, gamma, beta); }, xv, dyv);
            const Vec want_dg = numeric_gradient([&](const Vec& p) { return ref(xv, p, beta); }, gamma, dyv);
            const Vec want_db = numeric_gradient([&](const Vec& p) { return ref(xv, gamma, p); }, beta, dyv);
            for (size_t path = 0; path < paths.size(); ++path) {
                CAPTURE(path);
                const backend::NormForward fwd = paths[path].forward(g, b);
                check_close(values_of(fwd.y), ref(xv, gamma, beta), 1e-5);
                Tensor dx, dg, db;
                paths[path].backward(g, b, fwd, dx, dg, db);
                check_close(values_of(dx), want_dx, 1e-4);
                CHECK(dg.defined() == scale);
                CHECK(db.defined() == center);
                if (scale) check_close(values_of(dg), want_dg, 1e-4);
                if (center) check_close(values_of(db), want_db, 1e-4);
            }
        }
}

TEST_CASE("layer_norm: oneDNN's primitive and the composed default against the reference, with and without gamma / beta") {
    backend::Backend& cpu = backend::get(Device::cpu());
    const Tensor x = wavy({3, 5, 6}, 0.4, 0.9, 2.1), dy = wavy({3, 5, 6}, 1.2, 0.37, 1.0);
    const float eps = 1e-3f;
    const NormPath onednn{[&](const Tensor& g, const Tensor& b) { return cpu.layer_norm(x, g, b, eps, true); },
                          [&](const Tensor& g, const Tensor& b, const backend::NormForward& fwd, Tensor& dx, Tensor& dg,
                              Tensor& db) { cpu.layer_norm_backward(x, g, b, eps, fwd, dy, dx, dg, db); }};
    const NormPath composed{
        [&](const Tensor& g, const Tensor& b) { return cpu.Backend::layer_norm(x, g, b, eps, true); },
        [&](const Tensor& g, const Tensor& b, const backend::NormForward& fwd, Tensor& dx, Tensor& dg, Tensor& db) {
            cpu.Backend::layer_norm_backward(x, g, b, eps, fwd, dy, dx, dg, db);
        }};
    check_norm_paths([&](const Vec& xv, const Vec& g, const Vec& b) { return ref_layer_norm(xv, 6, g, b, eps); }, x,
                     dy, {onednn, composed});
    const Vec ones(6, 1.0), zeros(6, 0.0);   // inference (no statistics kept) gives the same y
    check_close(values_of(cpu.layer_norm(x, Tensor(), Tensor(), eps, false).y), ref_layer_norm(values_of(x), 6, ones, zeros, eps), 1e-5);
}

TEST_CASE("batch_norm_training: oneDNN's primitive and the composed default against the reference, statistics included") {
    backend::Backend& cpu = backend::get(Device::cpu());
    const Tensor x = wavy({3, 5, 6}, 0.4, 0.9, 2.1), dy = wavy({3, 5, 6}, 1.2, 0.37, 1.0);
    const float eps = 1e-3f;
    const Vec all_rows(15, 1.0);
    const NormPath onednn{[&](const Tensor& g, const Tensor& b) { return cpu.batch_norm_training(x, g, b, eps); },
                          [&](const Tensor& g, const Tensor& b, const backend::NormForward& fwd, Tensor& dx, Tensor& dg,
                              Tensor& db) { cpu.batch_norm_training_backward(x, g, b, eps, fwd, dy, dx, dg, db); }};
    const NormPath composed{
        [&](const Tensor& g, const Tensor& b) { return cpu.Backend::batch_norm_training(x, g, b, eps); },
        [&](const Tensor& g, const Tensor& b, const backend::NormForward& fwd, Tensor& dx, Tensor& dg, Tensor& db) {
            cpu.Backend::batch_norm_training_backward(x, g, b, eps, fwd, dy, dx, dg, db);
        }};
    check_norm_paths(
        [&](const Vec& xv, const Vec& g, const Vec& b) { return ref_batch_norm(xv, all_rows, 6, g, b, eps); }, x, dy,
        {onednn, composed});
    Vec mean, variance;
    ref_batch_norm(values_of(x), all_rows, 6, Vec(6, 1.0), Vec(6, 0.0), eps, &mean, &variance);
    for (const backend::NormForward& fwd : {cpu.batch_norm_training(x, {}, {}, eps), cpu.Backend::batch_norm_training(x, {}, {}, eps)}) {
        check_close(values_of(fwd.mean), mean, 1e-6);
        check_close(values_of(fwd.variance), variance, 1e-6);
    }
}

TEST_CASE("ops::layer_normalization: the last axis (fused) and several axes (composed) as the reference; bad gamma") {
    Tensor x = wavy({2, 3, 4}, 0.2, 0.8, 1.7);
    const Tensor w = wavy({2, 3, 4}, 0.9, 0.45, 1.0);
    const Vec xv = values_of(x), wv = values_of(w);
    for (const bool last : {true, false}) {
        CAPTURE(last);
        const size_t width = last ? 4 : 12;
        Tensor gamma = wavy(last ? Shape{4} : Shape{3, 4}, 0.3, 0.5, 1.0), beta = wavy(last ? Shape{4} : Shape{3, 4}, 0.6, 0.7, 0.5);
        const Vec gv = values_of(gamma), bv = values_of(beta);
        GradientTape tape({.persistent = true});
        tape.watch(x);
        tape.watch(gamma);
        tape.watch(beta);
        const Tensor y = ops::layer_normalization(x, gamma, beta, last ? ops::Axes(-1) : ops::Axes({1, 2}), 1e-3f);
        check_close(values_of(y), ref_layer_norm(xv, width, gv, bv, 1e-3), 1e-5);
        const Tensor loss = ops::sum(ops::multiply(y, w));
        check_close(values_of(tape.gradient(loss, x)),
                    numeric_gradient([&](const Vec& p) { return ref_layer_norm(p, width, gv, bv, 1e-3); }, xv, wv), 1e-4);
        check_close(values_of(tape.gradient(loss, gamma)),
                    numeric_gradient([&](const Vec& p) { return ref_layer_norm(xv, width, p, bv, 1e-3); }, gv, wv), 1e-4);
        check_close(values_of(tape.gradient(loss, beta)),
                    numeric_gradient([&](const Vec& p) { return ref_layer_norm(xv, width, gv, p, 1e-3); }, bv, wv), 1e-4);
    }
    CHECK(message_of([&] { ops::layer_normalization(x, Tensor::zeros({5})); }) ==
          "ops.layer_normalization: gamma has shape (5,) but the normalized axes of x (2, 3, 4) hold 4 values");
}

TEST_CASE("SpatialDropout1D, GaussianNoise and GaussianDropout: identity in inference, their noise in training") {
    utils::set_random_seed(3);
    const Tensor x = ops::ones({8, 5, 6});
    layers::SpatialDropout1D spatial(0.5f);
    layers::GaussianNoise noise(0.3f);
    layers::GaussianDropout gdrop(0.2f);
    for (Layer* layer : std::vector<Layer*>{&spatial, &noise, &gdrop}) CHECK(values_of((*layer)(x)) == values_of(x));

    // Whole channels: each (sample, feature) is 0 at every step or 2 = 1 / (1 - 0.5) at every step.
    Tensor xs = x;
    GradientTape tape;
    tape.watch(xs);
    const Tensor y = spatial(xs, true);
    const Vec v = values_of(y), dx = values_of(tape.gradient(ops::sum(y), xs));
    int dropped = 0;
    for (int64_t b = 0; b < 8; ++b)
        for (int64_t f = 0; f < 6; ++f) {
            const double first = v[b * 30 + f];
            CHECK((first == 0.0 || first == 2.0));
            dropped += first == 0.0;
            for (int64_t t = 0; t < 5; ++t) CHECK(v[b * 30 + t * 6 + f] == first);
        }
    CHECK(dx == v);   // the gradient of x * mask is the mask
    CHECK(dropped > 5);
    CHECK(dropped < 43);

    auto moments = [](const Vec& a) {
        double m = 0, s = 0;
        for (double e : a) m += e / a.size();
        for (double e : a) s += (e - m) * (e - m) / a.size();
        return std::pair{m, std::sqrt(s)};
    };
    const Tensor big = ops::ones({100, 50});
    auto [nm, ns] = moments(values_of(noise(big, true)));
    CHECK(nm == doctest::Approx(1.0).epsilon(0.02));
    CHECK(ns == doctest::Approx(0.3).epsilon(0.05));
    auto [dm, ds] = moments(values_of(gdrop(big, true)));
    CHECK(dm == doctest::Approx(1.0).epsilon(0.02));
    CHECK(ds == doctest::Approx(std::sqrt(0.2 / 0.8)).epsilon(0.05));
}

TEST_CASE("Keras's messages for bad arguments and shapes") {
    CHECK(message_of([] { layers::SpatialDropout1D(1.5f); }) ==
          "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate=1.5");
    CHECK(message_of([] { layers::GaussianNoise(-1.0f); }) ==
          "Invalid value received for argument `stddev`. Expected a float value between 0 and 1. Received: stddev=-1");
    CHECK(message_of([] { layers::GaussianDropout(2.0f); }) ==
          "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate=2");
    CHECK(message_of([] { layers::BatchNormalization({.gamma_initializer = "nope"}); }).find("nope") != std::string::npos);
    layers::SpatialDropout1D spatial(0.1f);
    CHECK(message_of([&] { spatial.build_for({-1, 4}); }) ==
          "Input 0 of layer \"" + spatial.name() + "\" is incompatible with the layer: expected ndim=3, found ndim=2. "
          "Full shape received: (None, 4)");
    layers::BatchNormalization bn({.axis = 2});
    CHECK(message_of([&] { bn.build_for({-1, 4}); }) ==
          "Axis 2 is out of bounds for input shape (None, 4). Received: axis=2");
    layers::LayerNormalization ln({.axis = {-3}});
    CHECK(message_of([&] { ln.build_for({-1, 4}); }) ==
          "Axis -3 is out of bounds for input shape (None, 4). Received: axis=-3");
}

// ---- Files written by real Keras 3

namespace {

// The models of gen_norm_fixtures.py, built here (for the .weights.h5 files).
std::shared_ptr<Sequential> build_fixture_model(const std::string& name) {
    auto m = std::make_shared<Sequential>();
    if (name == "seq_bn") {
        m->add(layers::Input({5, 3}));
        m->add(layers::Dense(4, {.name = "d1"}));
        m->add(layers::BatchNormalization({.momentum = 0.9f, .name = "bn1"}));
        m->add(layers::LayerNormalization({.name = "ln"}));
        m->add(layers::GlobalAveragePooling1D({.name = "gap"}));
        m->add(layers::Dense(3, {.name = "d2"}));
        m->add(layers::BatchNormalization({.epsilon = 0.01f, .center = false, .name = "bn2"}));
        m->add(layers::Dense(1, {.name = "out"}));
    } else if (name == "masked_bn") {
        m->add(layers::Input({6}, {.dtype = DType::int32}));
        m->add(layers::Embedding(9, 4, {.mask_zero = true, .name = "emb"}));
        m->add(layers::BatchNormalization({.momentum = 0.5f, .name = "bn"}));
        m->add(layers::GlobalAveragePooling1D({.name = "gap"}));
        m->add(layers::Dense(1, {.name = "out"}));
    } else {
        m->add(layers::Input({5, 3}));
        m->add(layers::Dense(4, {.name = "d1"}));
        m->add(layers::SpatialDropout1D(0.3f, {.name = "sdrop"}));
        m->add(layers::GaussianNoise(0.2f, {.name = "gnoise"}));
        m->add(layers::LayerNormalization({.rms_scaling = true, .name = "ln_rms"}));
        m->add(layers::UnitNormalization({.name = "unit"}));
        m->add(layers::GaussianDropout(0.4f, {.name = "gdrop"}));
        m->add(layers::LayerNormalization({.center = false, .name = "ln_nc"}));
        m->add(layers::Flatten({.name = "flat"}));
        m->add(layers::Dense(2, {.name = "out"}));
    }
    return m;
}

DType input_dtype(const std::string& name) { return name == "masked_bn" ? DType::int32 : DType::float32; }

// predict() as Keras's; with a training step in the fixture, train_on_batch's loss and every weight after it
// (the moving statistics included) as Keras's.
void check_against_keras(Model& model, const std::string& name) {
    const auto data = fixture(name);
    const Tensor x = from_json(data["x"], input_dtype(name));
    check_close(model.predict(x, {.verbose = 0}), data["predict"], 1e-5, name + " predict");
    if (!data.contains("loss")) return;
    model.compile(optimizers::SGD(0.1f), "mse");
    const double loss = model.train_on_batch(x, from_json(data["y"])).at("loss");
    CHECK(loss == doctest::Approx(data["loss"].get<double>()).epsilon(1e-5));
    for (const auto& [layer, weights] : data["after"].items()) {
        const auto got = model.get_layer(layer)->get_weights();
        REQUIRE(got.size() == weights.size());
        for (size_t i = 0; i < got.size(); ++i) check_close(got[i], weights[i], 1e-5, layer + " weight " + std::to_string(i));
    }
    check_close(model.predict(x, {.verbose = 0}), data["predict_after"], 1e-5, name + " predict after the step");
}

}  // namespace

TEST_CASE("Keras 3 .h5 files with normalization and noise layers load, predict and train a step as Keras") {
    for (const std::string name : {"seq_bn", "masked_bn", "noise"}) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        check_against_keras(*model, name);
    }
}

TEST_CASE("Keras 3 .weights.h5 files load into the same models built in C++") {
    for (const std::string name : {"seq_bn", "masked_bn", "noise"}) {
        INFO(name);
        auto model = build_fixture_model(name);
        model->load_weights(kFixtures + name + ".weights.h5");
        check_against_keras(*model, name);
    }
}

TEST_CASE("save / load round trips keep the layers' configs and the moving statistics") {
    const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_norm_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (const std::string name : {"seq_bn", "noise"}) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        const Tensor x = from_json(fixture(name)["x"]);
        const Tensor before = model->predict(x, {.verbose = 0});
        model->save((dir / (name + ".h5")).string());
        model->save_weights((dir / (name + ".weights.h5")).string());
        auto loaded = models::load_model((dir / (name + ".h5")).string());
        CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(before));
        auto rebuilt = build_fixture_model(name);
        rebuilt->load_weights((dir / (name + ".weights.h5")).string());
        CHECK(values_of(rebuilt->predict(x, {.verbose = 0})) == values_of(before));
        for (const auto& layer : model->layers())
            CHECK(loaded->get_layer(layer->name())->get_config() == layer->get_config());
    }
    std::filesystem::remove_all(dir);
    // The config as Keras 3 writes it.
    layers::BatchNormalization bn({.momentum = 0.9f, .center = false});
    const auto config = bn.get_config();
    CHECK(config["axis"] == -1);
    CHECK(config["momentum"] == 0.9);
    CHECK(config["center"] == false);
    CHECK(config["renorm"] == false);
    CHECK(config["gamma_initializer"]["class_name"] == "Ones");
    CHECK(layers::LayerNormalization().get_config()["axis"] == nlohmann::json::array({-1}));
}

TEST_CASE("configs in Keras 2's and 3's forms load; what kerascpp lacks is refused naming the field") {
    using nlohmann::json;
    const layers::ConfigSource source{2, "model.h5"};
    // tf.keras 2.x writes BatchNormalization's axis as a list, and keys Keras 3 dropped (fused, ...).
    auto bn = std::dynamic_pointer_cast<layers::BatchNormalization>(layers::layer_from_config("BatchNormalization",
        json{{"name", "bn"}, {"trainable", true}, {"dtype", "float32"}, {"axis", json::array({2})}, {"momentum", 0.9},
             {"epsilon", 0.002}, {"center", true}, {"scale", false}, {"fused", nullptr},
             {"beta_initializer", {{"class_name", "Zeros"}, {"config", json::object()}}},
             {"moving_variance_initializer", {{"class_name", "Ones"}, {"config", json::object()}}}}, source));
    REQUIRE(bn);
    CHECK(bn->options.axis == 2);
    CHECK(bn->options.momentum == 0.9f);
    CHECK(bn->options.epsilon == 0.002f);
    CHECK_FALSE(bn->options.scale);
    auto ln = std::dynamic_pointer_cast<layers::LayerNormalization>(layers::layer_from_config("LayerNormalization",
        json{{"name", "ln"}, {"axis", -1}, {"epsilon", 1e-6}}, source));
    CHECK(ln->options.axis == std::vector<int>{-1});
    CHECK(layers::layer_from_config("SpatialDropout1D", json{{"name", "s"}, {"rate", 0.25}, {"seed", 7}}, source)
              ->get_config()["rate"] == 0.25);
    CHECK(message_of([&] { layers::layer_from_config("BatchNormalization", json{{"name", "bn"}, {"renorm", true}}, source); })
              .find("renorm") != std::string::npos);
    CHECK(message_of([&] { layers::layer_from_config("BatchNormalization", json{{"name", "bn"}, {"axis", json::array({1, 2})}}, source); })
              .find("BatchNormalization normalizes one axis") != std::string::npos);
    CHECK(message_of([&] { layers::layer_from_config("GaussianNoise", json{{"name", "g"}}, source); }).find("stddev") !=
          std::string::npos);
}
