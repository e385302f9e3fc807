// ops::conv / max_pool / average_pool and the backends under them: oneDNN's primitives (what the CPU
// runs) and Backend's composed defaults (what a device without its own kernels runs), each against
// naive double-precision loops written here, forward and backward. The convolution is linear in x and
// in the kernel, so its exact gradients are the adjoint loops below; the tape's gradients are also
// checked against them.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "keras/autodiff.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"
#include "test_helpers.hpp"

using namespace keras;
using backend::PoolKind;
using backend::Window1D;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

backend::Backend& cpu() { return backend::get(Device::cpu()); }

struct ConvCase {
    int64_t n, steps, channels, filters, size, stride, dilation, groups;
    std::string padding;
};

// The input step output step o's tap j reads, or -1 in the padding.
int64_t tap_step(const Window1D& w, int64_t steps, int64_t o, int64_t j) {
    const int64_t t = o * w.stride + j * w.dilation - w.pad_before;
    return t >= 0 && t < steps ? t : -1;
}

std::vector<double> conv_reference(const ConvCase& c, const Window1D& w, const std::vector<double>& x,
                                   const std::vector<double>& k) {
    const int64_t out = w.out_steps(c.steps), cg = c.channels / c.groups, fg = c.filters / c.groups;
    std::vector<double> y(static_cast<size_t>(c.n * out * c.filters), 0.0);
    for (int64_t b = 0; b < c.n; ++b)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t f = 0; f < c.filters; ++f) {
                double s = 0;
                for (int64_t j = 0; j < c.size; ++j) {
                    const int64_t t = tap_step(w, c.steps, o, j);
                    if (t < 0) continue;
                    for (int64_t ci = 0; ci < cg; ++ci)
                        s += x[(b * c.steps + t) * c.channels + (f / fg) * cg + ci] * k[(j * cg + ci) * c.filters + f];
                }
                y[(b * out + o) * c.filters + f] = s;
            }
    return y;
}

// The adjoints of conv_reference: dx = d(sum(y * dy))/dx and dk likewise.
void conv_reference_backward(const ConvCase& c, const Window1D& w, const std::vector<double>& x,
                             const std::vector<double>& k, const std::vector<double>& dy, std::vector<double>& dx,
                             std::vector<double>& dk) {
    const int64_t out = w.out_steps(c.steps), cg = c.channels / c.groups, fg = c.filters / c.groups;
    dx.assign(x.size(), 0.0);
    dk.assign(k.size(), 0.0);
    for (int64_t b = 0; b < c.n; ++b)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t f = 0; f < c.filters; ++f)
                for (int64_t j = 0; j < c.size; ++j) {
                    const int64_t t = tap_step(w, c.steps, o, j);
                    if (t < 0) continue;
                    const double g = dy[(b * out + o) * c.filters + f];
                    for (int64_t ci = 0; ci < cg; ++ci) {
                        const size_t xi = (b * c.steps + t) * c.channels + (f / fg) * cg + ci;
                        const size_t ki = (j * cg + ci) * c.filters + f;
                        dx[xi] += g * k[ki];
                        dk[ki] += g * x[xi];
                    }
                }
}

void check_close(const Tensor& got, const std::vector<double>& want, double tolerance, const std::string& what) {
    const auto v = values_of(got);
    REQUIRE(v.size() == want.size());
    for (size_t i = 0; i < v.size(); ++i) {
        INFO(what << " at " << i);
        REQUIRE(v[i] == doctest::Approx(want[i]).epsilon(tolerance).scale(1.0));
    }
}

std::vector<ConvCase> conv_cases() {
    std::vector<ConvCase> cases;
    for (const char* padding : {"valid", "same", "causal"})
        for (int64_t size : {1, 2, 3, 5})
            for (int64_t stride : {1, 2, 3})
                for (int64_t dilation : {1, 2})
                    for (int64_t groups : {1, 2, 4})
                        cases.push_back({3, 11, 8, groups * 3, size, stride, dilation, groups, padding});
    cases.push_back({2, 40, 128, 64, 5, 1, 1, 1, "valid"});   // the shape class of imdb_cnn_lstm's Conv1D
    cases.push_back({1, 7, 6, 6, 3, 1, 1, 6, "same"});        // depthwise: one channel per group
    return cases;
}

std::string name_of(const ConvCase& c) {
    return "size " + std::to_string(c.size) + " stride " + std::to_string(c.stride) + " dilation " +
           std::to_string(c.dilation) + " groups " + std::to_string(c.groups) + " padding " + c.padding +
           " channels " + std::to_string(c.channels);
}

struct PoolCase {
    PoolKind kind;
    int64_t size, stride;
    std::string padding;
};

// y and the gradient each window passes back (the first maximum, or an even share of the real steps).
void pool_reference(const PoolCase& p, const Window1D& w, int64_t n, int64_t steps, int64_t channels,
                    const std::vector<double>& x, const std::vector<double>& dy, std::vector<double>& y,
                    std::vector<double>& dx) {
    const int64_t out = w.out_steps(steps);
    y.assign(static_cast<size_t>(n * out * channels), 0.0);
    dx.assign(x.size(), 0.0);
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t ch = 0; ch < channels; ++ch) {
                const size_t yi = (b * out + o) * channels + ch;
                double best = -std::numeric_limits<double>::infinity(), sum = 0;
                int64_t best_t = -1, count = 0;
                for (int64_t j = 0; j < w.size; ++j) {
                    const int64_t t = tap_step(w, steps, o, j);
                    if (t < 0) continue;
                    const double v = x[(b * steps + t) * channels + ch];
                    if (v > best) best = v, best_t = t;
                    sum += v, ++count;
                }
                if (p.kind == PoolKind::max) {
                    y[yi] = best;
                    dx[(b * steps + best_t) * channels + ch] += dy[yi];
                } else {
                    y[yi] = sum / double(count);
                    for (int64_t j = 0; j < w.size; ++j)
                        if (const int64_t t = tap_step(w, steps, o, j); t >= 0)
                            dx[(b * steps + t) * channels + ch] += dy[yi] / double(count);
                }
            }
}

std::vector<PoolCase> pool_cases() {
    std::vector<PoolCase> cases;
    for (PoolKind kind : {PoolKind::max, PoolKind::average})
        for (const char* padding : {"valid", "same"})
            for (int64_t size : {1, 2, 3, 4})
                for (int64_t stride : {1, 2, 3, 5}) cases.push_back({kind, size, stride, padding});
    return cases;
}

std::string name_of(const PoolCase& p) {
    return std::string(p.kind == PoolKind::max ? "max" : "average") + " size " + std::to_string(p.size) + " stride " +
           std::to_string(p.stride) + " padding " + p.padding;
}

}  // namespace

TEST_CASE("conv: oneDNN's primitives and the composed default against naive loops, forward and backward") {
    for (const ConvCase& c : conv_cases()) {
        CAPTURE(name_of(c));
        const Window1D w = Window1D::for_padding(c.size, c.stride, c.dilation, c.padding, c.steps);
        const Tensor x = wavy({c.n, c.steps, c.channels}, 0.3, 0.71, 1.0);
        const Tensor k = wavy({c.size, c.channels / c.groups, c.filters}, 1.1, 0.37, 0.5);
        const Tensor dy = wavy({c.n, w.out_steps(c.steps), c.filters}, 2.0, 0.53, 1.0);
        const auto want = conv_reference(c, w, values_of(x), values_of(k));
        std::vector<double> want_dx, want_dk;
        conv_reference_backward(c, w, values_of(x), values_of(k), values_of(dy), want_dx, want_dk);

        check_close(cpu().conv1d(w, c.groups, x, k), want, 1e-5, "oneDNN y");
        check_close(cpu().Backend::conv1d(w, c.groups, x, k), want, 1e-5, "default y");
        Tensor dx, dk;
        cpu().conv1d_backward(w, c.groups, x, k, dy, dx, dk);
        check_close(dx, want_dx, 1e-5, "oneDNN dx");
        check_close(dk, want_dk, 1e-5, "oneDNN dkernel");
        cpu().Backend::conv1d_backward(w, c.groups, x, k, dy, dx, dk);
        check_close(dx, want_dx, 1e-5, "default dx");
        check_close(dk, want_dk, 1e-5, "default dkernel");
    }
}

TEST_CASE("ops::conv: the tape's gradients are the adjoint loops'; channels_first is the transposed result") {
    const ConvCase c{2, 9, 4, 6, 3, 2, 1, 2, "same"};
    const Window1D w = Window1D::for_padding(c.size, c.stride, c.dilation, c.padding, c.steps);
    Tensor x = wavy({c.n, c.steps, c.channels}, 0.1, 0.61, 1.0);
    Tensor k = wavy({c.size, c.channels / c.groups, c.filters}, 0.9, 0.43, 0.5);
    const Tensor dy = wavy({c.n, w.out_steps(c.steps), c.filters}, 1.7, 0.29, 1.0);
    std::vector<double> want_dx, want_dk;
    conv_reference_backward(c, w, values_of(x), values_of(k), values_of(dy), want_dx, want_dk);
    std::vector<Tensor> grads;
    {
        GradientTape tape;
        tape.watch(x);
        tape.watch(k);
        const Tensor y = ops::conv(x, k, {.strides = 2, .padding = "same"});
        check_close(y, conv_reference(c, w, values_of(x), values_of(k)), 1e-5, "y");
        grads = tape.gradient(ops::sum(ops::multiply(y, dy)), {x, k});
    }
    check_close(grads[0], want_dx, 1e-5, "dx");
    check_close(grads[1], want_dk, 1e-5, "dkernel");

    const Tensor first = ops::conv(ops::transpose(x, {0, 2, 1}), k,
                                   {.strides = 2, .padding = "same", .data_format = "channels_first"});
    check_close(ops::transpose(first, {0, 2, 1}), conv_reference(c, w, values_of(x), values_of(k)), 1e-5,
                "channels_first y");
}

TEST_CASE("max_pool / average_pool: oneDNN's primitives and the composed default against naive loops") {
    const int64_t n = 2, steps = 13, channels = 5;
    for (const PoolCase& p : pool_cases()) {
        CAPTURE(name_of(p));
        const Window1D w = Window1D::for_padding(p.size, p.stride, 1, p.padding, steps);
        const Tensor x = wavy({n, steps, channels}, 0.4, 0.83, 1.0);
        const Tensor dy = wavy({n, w.out_steps(steps), channels}, 1.3, 0.47, 1.0);
        std::vector<double> want_y, want_dx;
        pool_reference(p, w, n, steps, channels, values_of(x), values_of(dy), want_y, want_dx);

        const backend::PoolForward fwd = cpu().pool1d(p.kind, w, x, true);
        check_close(fwd.y, want_y, 1e-6, "oneDNN y");
        check_close(cpu().pool1d_backward(p.kind, w, x, fwd, dy), want_dx, 1e-6, "oneDNN dx");
        check_close(cpu().pool1d(p.kind, w, x, false).y, want_y, 1e-6, "oneDNN inference y");
        const backend::PoolForward composed = cpu().Backend::pool1d(p.kind, w, x, true);
        check_close(composed.y, want_y, 1e-6, "default y");
        check_close(cpu().Backend::pool1d_backward(p.kind, w, x, composed, dy), want_dx, 1e-6, "default dx");
    }
}

TEST_CASE("max_pool: on ties (relu's zeros) the first maximum takes the gradient, on both paths and through the tape") {
    // Channel 0 is all zeros: every window ties. Channel 1 has equal pairs.
    Tensor x = test_helpers::floats({0, 2, 0, 2, 0, 3, 0, 3, 0, 1, 0, 1}, {1, 6, 2});
    const Window1D w = Window1D::for_padding(3, 2, 1, "same", 6);   // windows [0..2], [2..4], [4..6)
    const Tensor dy = test_helpers::floats({1, 10, 2, 20, 3, 30}, {1, 3, 2});
    std::vector<double> want_y, want_dx;
    pool_reference({PoolKind::max, 3, 2, "same"}, w, 1, 6, 2, values_of(x), values_of(dy), want_y, want_dx);
    const backend::PoolForward fwd = cpu().pool1d(PoolKind::max, w, x, true);
    check_close(cpu().pool1d_backward(PoolKind::max, w, x, fwd, dy), want_dx, 1e-6, "oneDNN dx");
    const backend::PoolForward composed = cpu().Backend::pool1d(PoolKind::max, w, x, true);
    check_close(cpu().Backend::pool1d_backward(PoolKind::max, w, x, composed, dy), want_dx, 1e-6, "default dx");
    Tensor g;
    {
        GradientTape tape;
        tape.watch(x);
        const Tensor y = ops::max_pool(x, 3, {.strides = 2, .padding = "same"});
        g = tape.gradient(ops::sum(ops::multiply(y, dy)), x);
    }
    check_close(g, want_dx, 1e-6, "tape dx");
}

TEST_CASE("conv / max_pool / average_pool: bad arguments are errors naming the argument") {
    const Tensor x = ops::ones({2, 10, 4});
    const Tensor k = ops::ones({3, 4, 6});
    CHECK(message_of([&] { ops::conv(ops::ones({2, 10}), k); }).find("inputs must be 3-D") != std::string::npos);
    CHECK(message_of([&] { ops::conv(x, ops::ones({3, 4})); }).find("the kernel must be 3-D") != std::string::npos);
    CHECK(message_of([&] { ops::conv(x, ops::ones({3, 3, 6})); }).find("multiple of the kernel's input channels 3") !=
          std::string::npos);
    CHECK(message_of([&] { ops::conv(x, ops::ones({3, 2, 5})); }).find("5 filters must be a multiple of the number "
                                                                       "of groups 2") != std::string::npos);
    CHECK(message_of([&] { ops::conv(x, k, {.strides = 0}); }).find("`strides` must be a positive integer") !=
          std::string::npos);
    CHECK(message_of([&] { ops::conv(x, k, {.padding = "full"}); }).find("received 'full'") != std::string::npos);
    CHECK(message_of([&] { ops::conv(x, k, {.data_format = "nwc"}); }).find("`data_format`") != std::string::npos);
    CHECK(message_of([&] { ops::conv(x, ops::ones({11, 4, 6})); }).find("the output would have no steps") !=
          std::string::npos);
    CHECK(message_of([&] { ops::max_pool(x, 0); }).find("`pool_size` must be a positive integer") != std::string::npos);
    CHECK(message_of([&] { ops::average_pool(x, 2, {.padding = "causal"}); })
              .find("ops.average_pool: `padding` must be 'valid' or 'same'") != std::string::npos);
    CHECK(message_of([&] { ops::max_pool(x, 11); }).find("no steps") != std::string::npos);
    CHECK(message_of([&] { ops::max_pool(ops::ones({2, 10, 4, 1}), 2); }).find("inputs must be 3-D") !=
          std::string::npos);
}
