// keras::ops: every op's forward against a naive double-precision computation written here, and its
// gradient (through GradientTape) against central finite differences.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"
#include "keras/random.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// sum(f(inputs) * w) for fixed irregular weights w, so every output element's gradient counts.
double projected(const Fn& f, const std::vector<Tensor>& inputs) {
    Tensor y = f(inputs);
    const auto v = values_of(y);
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += v[i] * std::sin(0.7 * double(i) + 0.3);
    return s;
}

// The tape's gradient of projected(f) with respect to every float input, against central differences.
void check_gradients(const Fn& f, std::vector<Tensor> inputs, double tolerance = 2e-3, double h = 1e-2) {
    std::vector<Tensor> grads;
    {
        GradientTape tape;
        for (auto& x : inputs)
            if (x.dtype() == DType::float32) tape.watch(x);
        Tensor y = f(inputs);
        std::vector<float> w(static_cast<size_t>(y.numel()));
        for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::sin(0.7 * double(i) + 0.3));
        Tensor loss = ops::sum(ops::multiply(y, Tensor(w, y.shape())));
        std::vector<Tensor> sources;
        for (auto& x : inputs)
            if (x.dtype() == DType::float32) sources.push_back(x);
        grads = tape.gradient(loss, sources, true);
    }
    size_t k = 0;
    for (size_t n = 0; n < inputs.size(); ++n) {
        if (inputs[n].dtype() != DType::float32) continue;
        const Tensor g = grads[k++];
        REQUIRE(g.shape() == inputs[n].shape());
        for (int64_t i = 0; i < inputs[n].numel(); ++i) {
            auto shifted = [&](double delta) {
                std::vector<Tensor> in;
                for (const auto& x : inputs) in.push_back(x.clone());
                in[n].data<float>()[i] += static_cast<float>(delta);
                return projected(f, in);
            };
            // Richardson's extrapolation of two central differences cancels their h^2 error term.
            const double coarse = (shifted(h) - shifted(-h)) / (2 * h);
            const double fine = (shifted(h / 2) - shifted(-h / 2)) / h;
            const double numeric = (4 * fine - coarse) / 3;
            INFO("input " << n << " element " << i);
            CHECK(g.item(i) == doctest::Approx(numeric).epsilon(tolerance).scale(1.0));
        }
    }
}

void check_values(const Tensor& t, const std::vector<double>& want, double tolerance = 1e-5) {
    const auto got = values_of(t);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i);
        CHECK(got[i] == doctest::Approx(want[i]).epsilon(tolerance));
    }
}

std::vector<double> map(const Tensor& x, const std::function<double(double)>& f) {
    auto v = values_of(x);
    for (auto& e : v) e = f(e);
    return v;
}

}  // namespace

TEST_CASE("unary ops: values against <cmath> in double, gradients against finite differences") {
    const Tensor x = wavy({2, 3}, 0.2, 1.3, 1.5);
    const Tensor positive = ops::add(ops::abs(x), 0.5f);
    struct Case {
        const char* name;
        std::function<Tensor(const Tensor&)> op;
        std::function<double(double)> ref;
        bool positive_only;
    };
    const std::vector<Case> cases = {
        {"negative", [](const Tensor& t) { return ops::negative(t); }, [](double v) { return -v; }, false},
        {"exp", [](const Tensor& t) { return ops::exp(t); }, [](double v) { return std::exp(v); }, false},
        {"log", [](const Tensor& t) { return ops::log(t); }, [](double v) { return std::log(v); }, true},
        {"tanh", [](const Tensor& t) { return ops::tanh(t); }, [](double v) { return std::tanh(v); }, false},
        {"sigmoid", [](const Tensor& t) { return ops::sigmoid(t); }, [](double v) { return 1 / (1 + std::exp(-v)); }, false},
        {"relu", [](const Tensor& t) { return ops::relu(t); }, [](double v) { return v > 0 ? v : 0; }, false},
        {"sqrt", [](const Tensor& t) { return ops::sqrt(t); }, [](double v) { return std::sqrt(v); }, true},
        {"square", [](const Tensor& t) { return ops::square(t); }, [](double v) { return v * v; }, false},
        {"abs", [](const Tensor& t) { return ops::abs(t); }, [](double v) { return std::fabs(v); }, false},
        {"reciprocal", [](const Tensor& t) { return ops::reciprocal(t); }, [](double v) { return 1 / v; }, true},
        {"softplus", [](const Tensor& t) { return ops::softplus(t); }, [](double v) { return std::log1p(std::exp(v)); }, false},
        {"clip", [](const Tensor& t) { return ops::clip(t, -0.5f, 0.8f); },
         [](double v) { return std::min(std::max(v, -0.5), 0.8); }, false},
    };
    for (const auto& c : cases) {
        INFO(std::string(c.name));
        const Tensor in = c.positive_only ? positive : x;
        check_values(c.op(in), map(in, c.ref));
        check_gradients([&](const std::vector<Tensor>& v) { return c.op(v[0]); }, {in});
    }
}

TEST_CASE("binary ops broadcast as NumPy and send gradients back to each operand's shape") {
    const Tensor b = ops::add(ops::abs(wavy({3, 1}, 0.4, 1.7, 1.0)), 0.5f);   // broadcast on two axes
    // a stays at least 0.3 away from b, so maximum / minimum have no tie within a finite difference's step.
    Tensor a({2, 3, 4}, DType::float32);
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k)
                a.data<float>()[(i * 3 + j) * 4 + k] =
                    b.data<float>()[j] + static_cast<float>(k % 2 ? 0.3 + 0.2 * i + 0.1 * k : -0.4 - 0.1 * j - 0.2 * i);
    struct Case {
        const char* name;
        std::function<Tensor(const Tensor&, const Tensor&)> op;
        std::function<double(double, double)> ref;
    };
    const std::vector<Case> cases = {
        {"add", [](auto& p, auto& q) { return ops::add(p, q); }, [](double p, double q) { return p + q; }},
        {"subtract", [](auto& p, auto& q) { return ops::subtract(p, q); }, [](double p, double q) { return p - q; }},
        {"multiply", [](auto& p, auto& q) { return ops::multiply(p, q); }, [](double p, double q) { return p * q; }},
        {"divide", [](auto& p, auto& q) { return ops::divide(p, q); }, [](double p, double q) { return p / q; }},
        {"maximum", [](auto& p, auto& q) { return ops::maximum(p, q); }, [](double p, double q) { return std::max(p, q); }},
        {"minimum", [](auto& p, auto& q) { return ops::minimum(p, q); }, [](double p, double q) { return std::min(p, q); }},
        {"power", [](auto& p, auto& q) { return ops::power(ops::exp(p), q); },
         [](double p, double q) { return std::pow(std::exp(p), q); }},
    };
    const auto va = values_of(a), vb = values_of(b);
    for (const auto& c : cases) {
        INFO(std::string(c.name));
        const Tensor y = c.op(a, b);
        CHECK(y.shape() == Shape{2, 3, 4});
        std::vector<double> want;
        for (int64_t i = 0; i < 2; ++i)
            for (int64_t j = 0; j < 3; ++j)
                for (int64_t k = 0; k < 4; ++k) want.push_back(c.ref(va[(i * 3 + j) * 4 + k], vb[j]));
        check_values(y, want);
        check_gradients([&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); }, {a, b});
        // The other way round too: the broadcast operand first.
        check_gradients([&](const std::vector<Tensor>& v) { return c.op(v[1], v[0]); }, {a, b});
    }
    CHECK(message_of<ValueError>([&] { ops::add(a, wavy({5}, 0, 1, 1)); }).find("Cannot broadcast shapes (2, 3, 4) and (5,): axis 2 has sizes 4 and 5") !=
          std::string::npos);
}

TEST_CASE("operators and numbers as operands") {
    const Tensor x = floats({1, -2, 3}, {3});
    check_values(x * 2.0f + 1.0f, {3, -3, 7});
    check_values(1.0f - x, {0, 3, -2});
    check_values(-x / 2.0f, {-0.5, 1, -1.5});
    check_values(ops::greater(x, 0.0f), {1, 0, 1});
    check_values(ops::where(ops::less(x, 0.0f), 0.0f, x), {1, 0, 3});
    check_gradients([](const std::vector<Tensor>& v) { return ops::where(ops::greater(v[1], 0.0f), v[0], ops::square(v[0])); },
                    {wavy({2, 3}, 0.3, 1.1, 1.0), wavy({3}, 0.9, 2.1, 1.0)});
}

TEST_CASE("reductions over None, one axis and several axes, with and without keepdims") {
    const Tensor x = wavy({2, 3, 4}, 0.5, 1.3, 2.0);
    const auto v = values_of(x);
    auto at = [&](int i, int j, int k) { return v[(i * 3 + j) * 4 + k]; };
    // axis 1, by hand
    std::vector<double> sum1, max1;
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
            double s = 0, m = -1e30;
            for (int j = 0; j < 3; ++j) s += at(i, j, k), m = std::max(m, at(i, j, k));
            sum1.push_back(s);
            max1.push_back(m);
        }
    CHECK(ops::sum(x, 1).shape() == Shape{2, 4});
    CHECK(ops::sum(x, 1, true).shape() == Shape{2, 1, 4});
    check_values(ops::sum(x, 1), sum1);
    check_values(ops::max(x, -2), max1);
    double total = 0;
    for (double e : v) total += e;
    CHECK(ops::sum(x).shape() == Shape{});
    check_values(ops::sum(x), {total});
    check_values(ops::mean(x), {total / 24});
    CHECK(ops::mean(x, {0, 2}).shape() == Shape{3});
    // Reducing only axes of size 1 (a per-sample loss over a (batch, 1) output): a copy, which
    // oneDNN's reduction primitive refuses to compute.
    const Tensor column = wavy({4, 1}, 0.2, 1.0, 1.0);
    CHECK(ops::mean(column, -1).shape() == Shape{4});
    check_values(ops::mean(column, -1), values_of(column));
    check_values(ops::max(column, 1, true), values_of(column));

    for (auto f : std::vector<std::function<Tensor(const Tensor&)>>{
             [](const Tensor& t) { return ops::sum(t, 1); }, [](const Tensor& t) { return ops::mean(t, {0, 2}, true); },
             [](const Tensor& t) { return ops::max(t, -1); }, [](const Tensor& t) { return ops::min(t); },
             [](const Tensor& t) { return ops::softmax(t, 1); }, [](const Tensor& t) { return ops::log_softmax(t); }})
        // A small step: some entries are within 0.01 of each other, and max / min must not cross a tie.
        check_gradients([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x}, 2e-3, 1e-3);
    CHECK(message_of<ValueError>([&] { ops::sum(x, 3); }) == "ops.sum: axis 3 is out of bounds for a tensor of rank 3");
}

TEST_CASE("softmax and log_softmax against double precision") {
    const Tensor x = wavy({2, 5}, 0.1, 2.3, 3.0);
    const auto v = values_of(x);
    std::vector<double> want, want_log;
    for (int r = 0; r < 2; ++r) {
        double mx = -1e30, s = 0;
        for (int c = 0; c < 5; ++c) mx = std::max(mx, v[r * 5 + c]);
        for (int c = 0; c < 5; ++c) s += std::exp(v[r * 5 + c] - mx);
        for (int c = 0; c < 5; ++c) {
            want.push_back(std::exp(v[r * 5 + c] - mx) / s);
            want_log.push_back(v[r * 5 + c] - mx - std::log(s));
        }
    }
    check_values(ops::softmax(x), want);
    check_values(ops::log_softmax(x), want_log);
}

TEST_CASE("matmul: 2-D, batched with broadcast batch axes, and 1-D operands") {
    const Tensor a = wavy({2, 3, 4}, 0.2, 1.1, 1.0), b = wavy({4, 5}, 0.7, 0.8, 1.0);
    const Tensor y = ops::matmul(a, b);
    REQUIRE(y.shape() == Shape{2, 3, 5});
    const auto va = values_of(a), vb = values_of(b);
    std::vector<double> want;
    for (int n = 0; n < 2; ++n)
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 5; ++j) {
                double s = 0;
                for (int k = 0; k < 4; ++k) s += va[(n * 3 + i) * 4 + k] * vb[k * 5 + j];
                want.push_back(s);
            }
    check_values(y, want, 1e-5);
    check_gradients([](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); }, {a, b});
    check_gradients([](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); },
                    {wavy({3, 1, 2, 3}, 0.1, 0.5, 1.0), wavy({4, 3, 2}, 0.2, 0.6, 1.0)});
    CHECK(ops::matmul(wavy({4}, 0, 1, 1), b).shape() == Shape{5});
    CHECK(ops::matmul(a, wavy({4}, 0, 1, 1)).shape() == Shape{2, 3});
    check_gradients([](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); },
                    {wavy({4}, 0.3, 1.0, 1.0), wavy({4, 5}, 0.4, 0.7, 1.0)});
    CHECK(message_of<ValueError>([&] { ops::matmul(a, a); }).find("differ (4 vs 3)") != std::string::npos);
}

TEST_CASE("shape ops: reshape, transpose, expand_dims, squeeze, broadcast_to") {
    const Tensor x = wavy({2, 3, 4}, 0.3, 1.2, 1.0);
    const auto v = values_of(x);
    const Tensor t = ops::transpose(x, {2, 0, 1});
    REQUIRE(t.shape() == Shape{4, 2, 3});
    std::vector<double> want;
    for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) want.push_back(v[(i * 3 + j) * 4 + k]);
    check_values(t, want);
    CHECK(ops::transpose(x).shape() == Shape{4, 3, 2});
    CHECK(ops::reshape(x, {6, -1}).shape() == Shape{6, 4});
    CHECK(ops::expand_dims(x, -1).shape() == Shape{2, 3, 4, 1});
    CHECK(ops::squeeze(ops::expand_dims(x, 1)).shape() == Shape{2, 3, 4});
    CHECK(message_of<ValueError>([&] { ops::squeeze(x, 1); }) == "ops.squeeze: cannot squeeze axis 1 of size 3 (shape (2, 3, 4))");
    CHECK(ops::broadcast_to(wavy({3, 1}, 0, 1, 1), {2, 3, 4}).shape() == Shape{2, 3, 4});
    check_gradients([](const std::vector<Tensor>& in) { return ops::transpose(ops::reshape(in[0], {6, 4}), {1, 0}); }, {x});
    check_gradients([](const std::vector<Tensor>& in) { return ops::broadcast_to(in[0], {2, 3, 4}); }, {wavy({3, 1}, 0.1, 1, 1)});
}

TEST_CASE("concatenate, stack, split and slice, and their gradients") {
    const Tensor a = wavy({2, 3}, 0.1, 1.0, 1.0), b = wavy({2, 2}, 0.5, 1.3, 1.0);
    const Tensor c = ops::concatenate({a, b}, -1);
    REQUIRE(c.shape() == Shape{2, 5});
    const auto va = values_of(a), vb = values_of(b);
    check_values(c, {va[0], va[1], va[2], vb[0], vb[1], va[3], va[4], va[5], vb[2], vb[3]});
    CHECK(ops::stack({a, a}, 1).shape() == Shape{2, 2, 3});
    const auto parts = ops::split(c, std::vector<int64_t>{1, 4}, 1);
    REQUIRE(parts.size() == 3);
    CHECK(parts[1].shape() == Shape{2, 3});
    check_values(parts[2], {vb[1], vb[3]});
    CHECK(ops::split(wavy({6, 2}, 0, 1, 1), 3).size() == 3);
    check_values(ops::slice(a, {1, 1}, {1, 2}), {va[4], va[5]});
    check_gradients([](const std::vector<Tensor>& in) { return ops::concatenate({in[0], ops::square(in[1])}, 1); }, {a, b});
    check_gradients([](const std::vector<Tensor>& in) { return ops::stack({in[0], in[0]}, 0); }, {a});
    check_gradients([](const std::vector<Tensor>& in) {
        auto p = ops::split(in[0], 3, 1);
        return ops::multiply(p[0], p[2]);
    }, {a});
    CHECK(message_of<ValueError>([&] { ops::concatenate({a, wavy({3, 3}, 0, 1, 1)}, 1); }).find("does not match") !=
          std::string::npos);
    CHECK(message_of<ValueError>([&] { ops::slice(a, {1, 2}, {1, 2}); }).find("does not fit in axis 1") != std::string::npos);
}

TEST_CASE("take, embedding and one_hot read integer ids; gradients scatter-add into the table") {
    const Tensor table = wavy({5, 3}, 0.2, 0.9, 1.0);
    const Tensor ids = Tensor(std::vector<int32_t>{4, 0, 4, 2}, {2, 2});
    const Tensor e = ops::embedding(ids, table);
    REQUIRE(e.shape() == Shape{2, 2, 3});
    const auto vt = values_of(table);
    check_values(ops::take(table, Tensor(std::vector<int32_t>{1}, {1}), 0), {vt[3], vt[4], vt[5]});
    check_values(ops::take(table, Tensor(std::vector<int64_t>{1, 5}, {2})), {vt[1], vt[5]});
    check_gradients([&](const std::vector<Tensor>& in) { return ops::embedding(ids, in[0]); }, {table});
    check_gradients([&](const std::vector<Tensor>& in) { return ops::take(in[0], ids, 1); }, {wavy({2, 5}, 0, 1, 1)});
    CHECK(message_of<ValueError>([&] { ops::embedding(Tensor(std::vector<int32_t>{0, 7}, {2}), table); }) ==
          "ops.take: index 7 at position [1] is out of range [0, 5)");
    const Tensor oh = ops::one_hot(Tensor(std::vector<int32_t>{2, 0}, {2}), 3);
    check_values(oh, {0, 0, 1, 1, 0, 0});
    check_values(ops::one_hot(Tensor(std::vector<int32_t>{2, 0}, {2}), 3, 0), {0, 1, 0, 0, 1, 0});
}

TEST_CASE("dropout keeps the expected share, scales kept entries and passes gradients through the same mask") {
    const Tensor x = ops::ones({100, 100});
    const Tensor y = ops::dropout(x, 0.25f);
    const auto v = values_of(y);
    int kept = 0;
    for (double e : v) {
        CHECK((e == 0.0 || std::fabs(e - 1.0 / 0.75) < 1e-6));
        kept += e != 0.0;
    }
    CHECK(kept > 7200);
    CHECK(kept < 7800);
    GradientTape tape;
    Tensor w = ops::ones({10});
    tape.watch(w);
    Tensor d = ops::dropout(w, 0.5f);
    Tensor g = tape.gradient(ops::sum(d), w);
    CHECK(values_of(g) == values_of(d));
    CHECK(message_of<ValueError>([] { ops::dropout(ops::ones({2}), 1.0f); }).find("rate=1") != std::string::npos);
}

TEST_CASE("dropout masks are the draws of uniform01() >= rate, entry by entry, for any rate") {
    for (const float rate : {0.0f, 1e-7f, 0.1f, 0.25f, 0.5f, 0.9999f}) {
        CAPTURE(rate);
        utils::set_random_seed(321);
        const Tensor mask = random::dropout_mask({7, 300}, rate, Device::cpu());
        utils::set_random_seed(321);
        const float scale = 1.0f / (1.0f - rate);
        for (int64_t i = 0; i < mask.numel(); ++i) {
            const float want = random::uniform01() >= rate ? scale : 0.0f;
            REQUIRE(mask.data<float>()[i] == want);
        }
    }
}

TEST_CASE("GradientTape: variables, unconnected sources, persistence, stop_recording") {
    auto v = std::make_shared<Variable>();
    v->name = "w";
    v->value = floats({1, 2, 3}, {3});
    auto unused = std::make_shared<Variable>();
    unused->name = "u";
    unused->value = floats({1}, {1});
    {
        GradientTape tape;
        Tensor loss = ops::sum(ops::square(ops::multiply(v, 2.0f)));   // sum 4 w^2 -> 8 w
        auto g = tape.gradient(loss, {v, unused});
        check_values(g[0], {8, 16, 24});
        CHECK_FALSE(g[1].defined());
        CHECK(message_of<RuntimeError>([&] { tape.gradient(loss, {v}); }).find("non-persistent GradientTape") !=
              std::string::npos);
    }
    {
        GradientTape tape({.persistent = true});
        Tensor y = ops::multiply(v, v);
        Tensor stopped;
        {
            auto pause = tape.stop_recording();
            stopped = ops::multiply(v, 3.0f);
        }
        Tensor loss = ops::sum(ops::add(y, stopped));
        check_values(tape.gradient(loss, {v})[0], {2, 4, 6});   // the paused part adds nothing
        check_values(tape.gradient(loss, {v, unused}, true)[1], {0});
        check_values(tape.gradient(ops::sum(ops::stop_gradient(y)), {v}, true)[0], {0, 0, 0});
    }
    // Outside a tape nothing is recorded.
    CHECK(ops::multiply(v, 2.0f).grad_node() == nullptr);
}

TEST_CASE("custom_gradient: an op whose backward the caller writes") {
    // A straight-through rounding: forward rounds, backward passes the gradient unchanged.
    auto round_st = [](const Tensor& x) {
        return custom_gradient("round_st", {x}, [](const std::vector<Tensor>& in) {
            Tensor y = in[0].clone();
            for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = std::round(y.data<float>()[i]);
            return std::pair{y, autodiff::BackwardFn([](const Tensor& dy) { return std::vector<Tensor>{dy}; })};
        });
    };
    Tensor x = floats({0.4, 1.6}, {2});
    GradientTape tape;
    tape.watch(x);
    Tensor y = round_st(x);
    check_values(y, {0, 2});
    check_values(tape.gradient(ops::sum(ops::multiply(y, 3.0f)), x), {3, 3});
}

// What a user does with a model's output on the host, outside any model: the calls.
TEST_CASE("argmax, softmax, slice and stack on plain host tensors, eagerly") {
    const Tensor logits(std::vector<float>{1, 3, 2, 5, 4, 0}, Shape{2, 3});
    CHECK(ops::argmax(logits, 1).to_vector<int32_t>() == std::vector<int32_t>{1, 0});
    CHECK(ops::argmax(logits, 0).to_vector<int32_t>() == std::vector<int32_t>{1, 1, 0});
    CHECK(ops::argmin(logits, -1).to_vector<int32_t>() == std::vector<int32_t>{0, 2});
    const Tensor flat = ops::argmax(logits);   // over the flattened tensor, a scalar
    CHECK(flat.shape() == Shape{});
    CHECK(flat.to_vector<int32_t>() == std::vector<int32_t>{3});
    CHECK(ops::argmax(logits, 1, true).shape() == Shape{2, 1});
    CHECK(ops::argmax(logits, std::nullopt, true).shape() == Shape{1, 1});
    CHECK(ops::argmax(Tensor(std::vector<int32_t>{2, 7, 7}, Shape{3})).to_vector<int32_t>() ==
          std::vector<int32_t>{1});   // ints too; the first of ties
    CHECK(ops::argmax(Tensor(std::vector<float>{1, NAN, 9}, Shape{3})).to_vector<int32_t>() ==
          std::vector<int32_t>{1});   // NaN wins, as in numpy
    CHECK(message_of<ValueError>([&] { ops::argmax(logits, 2); }).find("argmax") != std::string::npos);
    CHECK(message_of<ValueError>([&] { ops::argmax(Tensor::zeros({2, 0}), 1); }).find("empty axis") !=
          std::string::npos);

    const Tensor p = ops::softmax(logits, 1);
    const auto vp = values_of(p);
    CHECK(vp[0] + vp[1] + vp[2] == doctest::Approx(1.0));
    CHECK(vp[1] == doctest::Approx(std::exp(3.0) / (std::exp(1.0) + std::exp(3.0) + std::exp(2.0))));
    check_values(ops::slice(logits, {0, 1}, {2, 2}), {3, 2, 4, 0});
    const Tensor stacked = ops::stack({logits, ops::negative(logits)}, 1);   // (2, 2, 3)
    REQUIRE(stacked.shape() == Shape{2, 2, 3});
    check_values(stacked, {1, 3, 2, -1, -3, -2, 5, 4, 0, -5, -4, -0});
}
