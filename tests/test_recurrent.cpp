// SimpleRNN, LSTM and GRU: the oneDNN backend (fused primitives and the fallback loop) and the
// layers, checked against the double-precision reference (tests/reference) and against central
// finite differences of our own forward pass. The tolerances (1e-5 against double precision) also
// catch a oneDNN fpmath mode other than strict (bf16 / tf32 math errs by ~1e-3).
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/onednn/onednn_backend.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/random.hpp"
#include "reference/reference.hpp"

using keras::Activation;
using keras::CallContext;
using keras::DType;
using keras::Shape;
using keras::Tensor;
namespace be = keras::backend;
namespace kl = keras::layers;

namespace {

// ---------------------------------------------------------------------------------------------
// Test cases and conversions.
// ---------------------------------------------------------------------------------------------
struct Case {
    ref::Cell cell = ref::Cell::lstm;
    int N = 2, T = 3, C = 3, H = 4;
    std::string activation = "tanh", recurrent_activation = "sigmoid";
    bool use_bias = true, reset_after = true, go_backwards = false, return_sequences = false;

    std::string str() const {
        const char* names[] = {"simple_rnn", "lstm", "gru"};
        return fmt::format("{} N={} T={} C={} H={} act={} ract={} bias={} reset_after={} go_backwards={} "
                           "return_sequences={}",
                           names[static_cast<int>(cell)], N, T, C, H, activation, recurrent_activation, use_bias,
                           reset_after, go_backwards, return_sequences);
    }
};

be::RnnCell to_cell(ref::Cell c) {
    switch (c) {
        case ref::Cell::simple_rnn: return be::RnnCell::simple_rnn;
        case ref::Cell::lstm: return be::RnnCell::lstm;
        case ref::Cell::gru: return be::RnnCell::gru;
    }
    return be::RnnCell::simple_rnn;
}

be::RnnSpec spec_of(const Case& c) {
    return be::RnnSpec{.cell = to_cell(c.cell),
                       .units = c.H,
                       .activation = keras::activation_from_string(c.activation),
                       .recurrent_activation = keras::activation_from_string(c.recurrent_activation),
                       .use_bias = c.use_bias,
                       .reset_after = c.reset_after,
                       .go_backwards = c.go_backwards,
                       .layer_name = "test_rnn"};
}

ref::RnnConfig config_of(const Case& c) {
    return ref::RnnConfig{.cell = c.cell, .N = c.N, .T = c.T, .C = c.C, .H = c.H, .activation = c.activation,
                          .recurrent_activation = c.recurrent_activation, .use_bias = c.use_bias,
                          .reset_after = c.reset_after, .go_backwards = c.go_backwards,
                          .return_sequences = c.return_sequences};
}

Tensor tensor_of(const ref::Vec& v, Shape shape) {
    std::vector<float> f(v.begin(), v.end());
    return Tensor(f, std::move(shape));
}

ref::Vec vec_of(const Tensor& t) {
    if (!t.defined()) return {};
    const auto f = t.to_vector<float>();
    return ref::Vec(f.begin(), f.end());
}

// Inputs of one case, drawn from fixed seeds (values in double; the float tensors are their
// roundings, and the reference runs on exactly the rounded values).
struct Inputs {
    ref::Vec x, kernel, recurrent, bias, h0, c0;
};

ref::Vec rounded(ref::Vec v) {
    for (double& a : v) a = static_cast<float>(a);
    return v;
}

Inputs make_inputs(const Case& c, bool with_states, unsigned seed) {
    const auto cfg = config_of(c);
    const int G = ref::gates(c.cell);
    Inputs in;
    in.x = rounded(ref::random_vec(static_cast<size_t>(c.N) * c.T * c.C, seed + 1, -1.0, 1.0));
    in.kernel = rounded(ref::random_vec(static_cast<size_t>(c.C) * G * c.H, seed + 2, -0.6, 0.6));
    in.recurrent = rounded(ref::random_vec(static_cast<size_t>(c.H) * G * c.H, seed + 3, -0.6, 0.6));
    in.bias = rounded(ref::random_vec(ref::bias_size(cfg), seed + 4, -0.5, 0.5));
    if (with_states) {
        in.h0 = rounded(ref::random_vec(static_cast<size_t>(c.N) * c.H, seed + 5, -0.8, 0.8));
        if (c.cell == ref::Cell::lstm) in.c0 = rounded(ref::random_vec(in.h0.size(), seed + 6, -0.8, 0.8));
    }
    return in;
}

be::RnnWeights weights_of(const Case& c, const Inputs& in) {
    const int64_t GH = static_cast<int64_t>(ref::gates(c.cell)) * c.H;
    be::RnnWeights w{tensor_of(in.kernel, {c.C, GH}), tensor_of(in.recurrent, {c.H, GH}), Tensor()};
    if (c.use_bias) {
        const bool two_rows = c.cell == ref::Cell::gru && c.reset_after;
        w.bias = tensor_of(in.bias, two_rows ? Shape{2, GH} : Shape{GH});
    }
    return w;
}

Tensor state_tensor(const Case& c, const ref::Vec& v) { return v.empty() ? Tensor() : tensor_of(v, {c.N, c.H}); }

be::OneDnnBackend& cpu() { return dynamic_cast<be::OneDnnBackend&>(be::get(keras::Device::cpu())); }

// Our forward through the backend's choice of path, or forced through the fallback loop.
be::RnnForward run_forward(const Case& c, const Inputs& in, bool force_fallback, bool training = true) {
    const auto spec = spec_of(c);
    const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});
    if (force_fallback)
        return be::rnn_fallback_forward(spec, x, weights_of(c, in), state_tensor(c, in.h0), state_tensor(c, in.c0));
    return cpu().rnn_forward(spec, x, weights_of(c, in), state_tensor(c, in.h0), state_tensor(c, in.c0), training);
}

// The gradients flowing into the outputs: d_sequences (when return_sequences), dh, dc.
struct OutputGrads {
    ref::Vec dseq, dh, dc;
};

OutputGrads make_output_grads(const Case& c, bool extra_state_grads, unsigned seed) {
    const size_t NH = static_cast<size_t>(c.N) * c.H;
    OutputGrads g;
    if (c.return_sequences) g.dseq = ref::random_vec(NH * c.T, seed + 7, -1.0, 1.0);
    if (!c.return_sequences || extra_state_grads) g.dh = ref::random_vec(NH, seed + 8, -1.0, 1.0);
    if (c.cell == ref::Cell::lstm && extra_state_grads) g.dc = ref::random_vec(NH, seed + 9, -1.0, 1.0);
    return g;
}

be::RnnGradients run_backward(const Case& c, const Inputs& in, be::RnnForward& fwd, const OutputGrads& og,
                              bool force_fallback) {
    const auto spec = spec_of(c);
    const Tensor dseq = og.dseq.empty() ? Tensor() : tensor_of(og.dseq, {c.N, c.T, c.H});
    const Tensor dh = state_tensor(c, og.dh), dc = state_tensor(c, og.dc);
    if (force_fallback) return be::rnn_fallback_backward(spec, weights_of(c, in), fwd, dseq, dh, dc);
    return cpu().rnn_backward(spec, weights_of(c, in), fwd, dseq, dh, dc);
}

// The reference's view of the same output gradients: dy has the shape of its y.
ref::RnnGrads reference_backward(const Case& c, const Inputs& in, const OutputGrads& og) {
    const auto cfg = config_of(c);
    if (c.return_sequences)
        return ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0, og.dseq, og.dh, og.dc);
    return ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0, og.dh, {}, og.dc);
}

// |ours - expected| <= atol + rtol * |expected| everywhere.
void check_close(const ref::Vec& ours, const ref::Vec& expected, const char* what, double atol = 1e-5,
                 double rtol = 1e-4) {
    INFO(std::string(what));
    REQUIRE(ours.size() == expected.size());
    const double err = ref::max_rel_err(ours, expected, atol, rtol);
    INFO("max |diff| = " << ref::max_abs_diff(ours, expected));
    CHECK(err <= 1.0);
}

// ---------------------------------------------------------------------------------------------
// The checks one case goes through.
// ---------------------------------------------------------------------------------------------
void check_forward_against_reference(const Case& c, bool with_states, bool force_fallback, bool training = true) {
    INFO(std::string(c.str() + (with_states ? " with h0/c0" : "") + (force_fallback ? " [fallback forced]" : "") +
                     (training ? "" : " [inference]")));
    const Inputs in = make_inputs(c, with_states, 11);
    const auto expected = ref::rnn_forward(config_of(c), in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);
    auto cfg_seq = config_of(c);
    cfg_seq.return_sequences = true;
    const auto expected_seq = ref::rnn_forward(cfg_seq, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);

    const be::RnnForward fwd = run_forward(c, in, force_fallback, training);
    REQUIRE(fwd.sequences.shape() == Shape{c.N, c.T, c.H});
    check_close(vec_of(fwd.sequences), expected_seq.y, "sequences");
    check_close(vec_of(fwd.h), expected.h, "h");
    if (c.cell == ref::Cell::lstm) check_close(vec_of(fwd.c), expected.c, "c");
    else CHECK_FALSE(fwd.c.defined());
}

void check_backward_against_reference(const Case& c, bool with_states, bool force_fallback) {
    INFO(std::string(c.str() + (with_states ? " with h0/c0 and state gradients" : "") +
                     (force_fallback ? " [fallback forced]" : "")));
    const Inputs in = make_inputs(c, with_states, 23);
    const OutputGrads og = make_output_grads(c, with_states, 23);
    be::RnnForward fwd = run_forward(c, in, force_fallback);
    const be::RnnGradients g = run_backward(c, in, fwd, og, force_fallback);
    const ref::RnnGrads expected = reference_backward(c, in, og);

    check_close(vec_of(g.dx), expected.dx, "dx");
    check_close(vec_of(g.dh0), expected.dh0, "dh0");
    if (c.cell == ref::Cell::lstm) check_close(vec_of(g.dc0), expected.dc0, "dc0");
    check_close(vec_of(g.dweights.kernel), expected.dkernel, "dkernel");
    check_close(vec_of(g.dweights.recurrent_kernel), expected.drecurrent, "drecurrent");
    if (c.use_bias) {
        CHECK(g.dweights.bias.shape() == weights_of(c, in).bias.shape());
        check_close(vec_of(g.dweights.bias), expected.dbias, "dbias");
    } else {
        CHECK_FALSE(g.dweights.bias.defined());
    }
}

// Central differences of L = sum(seq * wseq) + sum(h * wh) + sum(c * wc) computed with OUR float
// forward, against our backward given (wseq, wh, wc) as output gradients.
void check_backward_against_finite_differences(const Case& c, bool force_fallback) {
    INFO(std::string(c.str() + " finite differences" + (force_fallback ? " [fallback forced]" : "")));
    Inputs in = make_inputs(c, true, 37);
    OutputGrads og = make_output_grads(c, true, 37);
    if (!c.return_sequences) og.dseq.clear();

    auto loss = [&]() {
        be::RnnForward f = run_forward(c, in, force_fallback, /*training=*/false);
        double L = ref::dot(vec_of(f.h), og.dh);
        if (!og.dseq.empty()) L += ref::dot(vec_of(f.sequences), og.dseq);
        if (!og.dc.empty()) L += ref::dot(vec_of(f.c), og.dc);
        return L;
    };
    be::RnnForward fwd = run_forward(c, in, force_fallback);
    const be::RnnGradients g = run_backward(c, in, fwd, og, force_fallback);

    // Float forward: eps trades truncation (eps^2) against rounding (1e-7 / eps); a small eps also
    // keeps the perturbations from crossing the kinks of relu / hard_sigmoid.
    const double eps = 1e-3, atol = 5e-4, rtol = 5e-3;
    check_close(vec_of(g.dx), ref::numeric_grad(loss, in.x, eps), "dx vs finite differences", atol, rtol);
    check_close(vec_of(g.dh0), ref::numeric_grad(loss, in.h0, eps), "dh0 vs finite differences", atol, rtol);
    if (c.cell == ref::Cell::lstm)
        check_close(vec_of(g.dc0), ref::numeric_grad(loss, in.c0, eps), "dc0 vs finite differences", atol, rtol);
    check_close(vec_of(g.dweights.kernel), ref::numeric_grad(loss, in.kernel, eps), "dkernel vs finite differences",
                atol, rtol);
    check_close(vec_of(g.dweights.recurrent_kernel), ref::numeric_grad(loss, in.recurrent, eps),
                "drecurrent vs finite differences", atol, rtol);
    if (c.use_bias)
        check_close(vec_of(g.dweights.bias), ref::numeric_grad(loss, in.bias, eps), "dbias vs finite differences",
                    atol, rtol);
}

// Every combination of the flags over a few shapes (T = 1, H != C, H == C, N = 1).
std::vector<Case> grid(const Case& base) {
    struct Size {
        int N, T, C, H;
    };
    const Size sizes[] = {{2, 5, 3, 4}, {3, 1, 4, 2}, {1, 4, 3, 3}};
    std::vector<Case> out;
    for (const Size& s : sizes)
        for (bool rs : {false, true})
            for (bool gb : {false, true})
                for (bool bias : {true, false}) {
                    Case c = base;
                    c.N = s.N, c.T = s.T, c.C = s.C, c.H = s.H;
                    c.return_sequences = rs, c.go_backwards = gb, c.use_bias = bias;
                    out.push_back(c);
                }
    return out;
}

// The specs the tests run, each named with the path the backend must pick for it.
struct Family {
    Case base;
    bool fused;
};

std::vector<Family> families() {
    using ref::Cell;
    return {
        {{.cell = Cell::simple_rnn, .activation = "tanh"}, true},
        {{.cell = Cell::simple_rnn, .activation = "relu"}, true},
        {{.cell = Cell::simple_rnn, .activation = "sigmoid"}, true},
        {{.cell = Cell::lstm}, true},
        {{.cell = Cell::gru, .reset_after = true}, true},
        {{.cell = Cell::gru, .reset_after = false}, true},
        {{.cell = Cell::simple_rnn, .activation = "elu"}, false},
        {{.cell = Cell::simple_rnn, .activation = "linear"}, false},
        {{.cell = Cell::lstm, .recurrent_activation = "hard_sigmoid"}, false},
        {{.cell = Cell::lstm, .activation = "relu"}, false},
        {{.cell = Cell::gru, .recurrent_activation = "hard_sigmoid", .reset_after = true}, false},
        {{.cell = Cell::gru, .activation = "softsign", .reset_after = false}, false},
    };
}

// Sets the GEMM-step LSTM / GRU's mode for one scope, then returns to $KERASCPP_GEMM_RNN's.
struct GemmRnnModeScope {
    explicit GemmRnnModeScope(be::GemmRnnMode mode) { be::set_gemm_rnn_mode(mode); }
    ~GemmRnnModeScope() { be::set_gemm_rnn_mode(std::nullopt); }
};

// Sets the kernel's mode for one scope, then returns to $KERASCPP_SMALL_RNN's.
struct SmallRnnModeScope {
    explicit SmallRnnModeScope(be::SmallRnnMode mode) { be::set_small_rnn_mode(mode); }
    ~SmallRnnModeScope() { be::set_small_rnn_mode(std::nullopt); }
    SmallRnnModeScope(const SmallRnnModeScope&) = delete;
    SmallRnnModeScope& operator=(const SmallRnnModeScope&) = delete;
};


}  // namespace

// ---------------------------------------------------------------------------------------------
// Backend: paths.
// ---------------------------------------------------------------------------------------------
TEST_CASE("rnn_path names the primitive or says why the fallback runs") {
    const SmallRnnModeScope off(be::SmallRnnMode::never);   // its own names: the small-RNN kernel's test
    const GemmRnnModeScope primitives(be::GemmRnnMode::never);   // and the GEMM-step LSTM / GRU's
    auto path = [](Case c) { return cpu().rnn_path(spec_of(c)); };
    using ref::Cell;
    CHECK(path({.cell = Cell::lstm}).description == "oneDNN lstm");
    CHECK(path({.cell = Cell::lstm}).fused);
    CHECK(path({.cell = Cell::gru, .reset_after = true}).description == "oneDNN lbr_gru");
    CHECK(path({.cell = Cell::gru, .reset_after = false}).description == "oneDNN gru");
    CHECK(path({.cell = Cell::simple_rnn, .activation = "relu"}).description == "oneDNN vanilla_rnn (relu)");

    const auto lstm_hs = path({.cell = Cell::lstm, .recurrent_activation = "hard_sigmoid"});
    CHECK_FALSE(lstm_hs.fused);
    CHECK(lstm_hs.description ==
          "fallback loop: recurrent_activation='hard_sigmoid' is not supported by oneDNN's lstm primitive");
    CHECK(path({.cell = Cell::gru, .activation = "relu", .recurrent_activation = "hard_sigmoid"}).description ==
          "fallback loop: activation='relu' and recurrent_activation='hard_sigmoid' are not supported by oneDNN's "
          "lbr_gru primitive");
    CHECK(path({.cell = Cell::simple_rnn, .activation = "elu"}).description ==
          "fallback loop: activation='elu' is not supported by oneDNN's vanilla_rnn primitive (tanh, relu, sigmoid)");
    for (const Family& f : families()) {
        INFO(f.base.str());
        CHECK(path(f.base).fused == f.fused);
    }
}

// ---------------------------------------------------------------------------------------------
// Backend: forward and backward against the reference, finite differences, fused vs fallback.
// ---------------------------------------------------------------------------------------------
TEST_CASE("rnn_path_for: the one fused-vs-step-loop rule every backend's rnn_path uses") {
    be::RnnSpec spec;
    spec.recurrent_dropout = 0.25f;
    const be::RnnLibrary library{.fused = "lib lstm", .unsupported = "", .step_loop = "loop",
                                 .dropout_step_loop = "loop (no per-step mask)"};
    const be::RnnPath fused = be::rnn_path_for(spec, library);
    CHECK(fused.fused);
    CHECK(fused.description == "lib lstm; training with recurrent_dropout=0.25: loop (no per-step mask)");
    be::RnnLibrary lacking = library;
    lacking.unsupported = "activation='selu' is not supported";
    const be::RnnPath loop = be::rnn_path_for(spec, lacking);
    CHECK_FALSE(loop.fused);
    CHECK(loop.description == "loop: activation='selu' is not supported");
    // Dropout masks always take the step loop; without them the path decides.
    CHECK_FALSE(be::runs_step_loop(fused, {}));
    CHECK(be::runs_step_loop(loop, {}));
    CHECK(be::runs_step_loop(fused, {.input = Tensor::zeros({1, 1}), .recurrent = {}}));
}

// The SimpleRNN families once more with the small-RNN kernel off: oneDNN's vanilla_rnn.
TEST_CASE("rnn_forward equals the double-precision reference") {
    for (const Family& f : families())
        for (const Case& c : grid(f.base))
            for (bool states : {false, true}) check_forward_against_reference(c, states, false);
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    for (const Family& f : families())
        if (f.base.cell == ref::Cell::simple_rnn)
            for (const Case& c : grid(f.base))
                for (bool states : {false, true}) check_forward_against_reference(c, states, false);
}

TEST_CASE("rnn_backward equals the reference's BPTT") {
    for (const Family& f : families())
        for (const Case& c : grid(f.base))
            for (bool states : {false, true}) check_backward_against_reference(c, states, false);
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    for (const Family& f : families())
        if (f.base.cell == ref::Cell::simple_rnn)
            for (const Case& c : grid(f.base))
                for (bool states : {false, true}) check_backward_against_reference(c, states, false);
}

TEST_CASE("the fallback loop equals the reference for the fused specs too") {
    for (const Family& f : families()) {
        if (!f.fused) continue;
        for (const Case& c : grid(f.base)) {
            check_forward_against_reference(c, true, true);
            check_backward_against_reference(c, true, true);
        }
    }
}

TEST_CASE("rnn_backward equals central finite differences of our forward") {
    for (const Family& f : families()) {
        Case c = f.base;
        c.N = 2, c.T = 4, c.C = 3, c.H = 3;
        for (bool rs : {false, true})
            for (bool gb : {false, true}) {
                c.return_sequences = rs, c.go_backwards = gb;
                check_backward_against_finite_differences(c, false);
                if (f.fused) check_backward_against_finite_differences(c, true);
            }
    }
}

TEST_CASE("fused primitive and fallback loop give the same numbers") {
    for (const Family& f : families()) {
        if (!f.fused) continue;
        Case c = f.base;
        c.N = 5, c.T = 7, c.C = 6, c.H = 8, c.return_sequences = true, c.go_backwards = true;
        INFO(c.str());
        const Inputs in = make_inputs(c, true, 51);
        const OutputGrads og = make_output_grads(c, true, 51);
        be::RnnForward fused = run_forward(c, in, false), loop = run_forward(c, in, true);
        check_close(vec_of(fused.sequences), vec_of(loop.sequences), "sequences", 1e-6, 1e-5);
        check_close(vec_of(fused.h), vec_of(loop.h), "h", 1e-6, 1e-5);
        check_close(vec_of(fused.c), vec_of(loop.c), "c", 1e-6, 1e-5);
        const auto gf = run_backward(c, in, fused, og, false), gl = run_backward(c, in, loop, og, true);
        check_close(vec_of(gf.dx), vec_of(gl.dx), "dx", 1e-6, 1e-5);
        check_close(vec_of(gf.dh0), vec_of(gl.dh0), "dh0", 1e-6, 1e-5);
        check_close(vec_of(gf.dc0), vec_of(gl.dc0), "dc0", 1e-6, 1e-5);
        check_close(vec_of(gf.dweights.kernel), vec_of(gl.dweights.kernel), "dkernel", 1e-6, 1e-5);
        check_close(vec_of(gf.dweights.recurrent_kernel), vec_of(gl.dweights.recurrent_kernel), "drecurrent", 1e-6,
                    1e-5);
        check_close(vec_of(gf.dweights.bias), vec_of(gl.dweights.bias), "dbias", 1e-6, 1e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// The small-RNN kernel (small_rnn.cpp): forced on, against the reference, finite differences and
// oneDNN's vanilla_rnn; the rule that picks it.
// ---------------------------------------------------------------------------------------------
namespace {

// Every option over the grid's shapes, plus the sizes with their own unrolled loops (H = 8, 16,
// 32, 64) and batches with full and partial blocks of 8 samples.
std::vector<Case> small_rnn_cases() {
    std::vector<Case> out;
    for (const char* act : {"tanh", "relu", "sigmoid"}) {
        const Case base{.cell = ref::Cell::simple_rnn, .activation = act};
        for (const Case& c : grid(base)) out.push_back(c);
        for (auto [N, T, C, H] : {std::array{11, 6, 5, 16}, {8, 3, 2, 8}, {17, 4, 3, 32}, {3, 3, 20, 64}}) {
            Case c = base;
            c.N = N, c.T = T, c.C = C, c.H = H, c.return_sequences = true, c.go_backwards = N == 17;
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("small-RNN kernel: forward and backward equal the double-precision reference, every option") {
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    for (const Case& c : small_rnn_cases()) {
        CHECK(be::is_small_rnn_forward(run_forward(c, make_inputs(c, false, 1), false)));
        for (bool states : {false, true}) {
            check_forward_against_reference(c, states, false);
            check_backward_against_reference(c, states, false);
        }
    }
}

TEST_CASE("small-RNN kernel: its baseline-ISA build (CPUs without AVX-512) equals the reference too") {
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    be::set_small_rnn_baseline_isa(true);
    CHECK_FALSE(be::small_rnn_uses_avx512());
    for (const Case& c : small_rnn_cases()) {
        check_forward_against_reference(c, true, false);
        check_backward_against_reference(c, true, false);
    }
    be::set_small_rnn_baseline_isa(false);
}

TEST_CASE("small-RNN kernel: backward equals central finite differences of its forward") {
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    for (const char* act : {"tanh", "relu", "sigmoid"}) {
        Case c{.cell = ref::Cell::simple_rnn, .N = 2, .T = 4, .C = 3, .H = 3, .activation = act};
        for (bool rs : {false, true})
            for (bool gb : {false, true})
                for (bool bias : {true, false}) {
                    c.return_sequences = rs, c.go_backwards = gb, c.use_bias = bias;
                    check_backward_against_finite_differences(c, false);
                }
    }
}

TEST_CASE("small-RNN kernel equals oneDNN's vanilla_rnn, with and without lengths") {
    for (const char* act : {"tanh", "relu", "sigmoid"}) {
        Case c{.cell = ref::Cell::simple_rnn, .N = 11, .T = 7, .C = 6, .H = 16, .activation = act,
               .return_sequences = true};
        const std::vector<int32_t> lengths{7, 0, 3, 1, 7, 5, 2, 6, 4, 7, 1};
        // Both sum in their own orders: within the tolerance both keep to the reference.
        for (bool gb : {false, true})
            for (bool packed : {false, true}) {
                c.go_backwards = gb;
                INFO(std::string(c.str() + (packed ? " with lengths" : "")));
                const Inputs in = make_inputs(c, true, 53);
                const OutputGrads og = make_output_grads(c, true, 53);
                const auto spec = spec_of(c);
                const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});
                const Tensor dseq = tensor_of(og.dseq, {c.N, c.T, c.H}), dh = state_tensor(c, og.dh);
                auto run = [&](be::SmallRnnMode mode) {
                    const SmallRnnModeScope scope(mode);
                    be::RnnForward f = cpu().rnn_forward(spec, x, weights_of(c, in), state_tensor(c, in.h0), Tensor(),
                                                         true, {}, packed ? lengths : std::vector<int32_t>{});
                    CHECK(be::is_small_rnn_forward(f) == (mode == be::SmallRnnMode::always));
                    be::RnnGradients g = cpu().rnn_backward(spec, weights_of(c, in), f, dseq, dh, Tensor());
                    return std::pair{f, g};
                };
                const auto [fk, gk] = run(be::SmallRnnMode::always);
                const auto [fo, go] = run(be::SmallRnnMode::never);
                check_close(vec_of(fk.h), vec_of(fo.h), "h");
                if (!packed)   // past each length the primitive's outputs are not the layer's
                    check_close(vec_of(fk.sequences), vec_of(fo.sequences), "sequences");
                check_close(vec_of(gk.dx), vec_of(go.dx), "dx");
                check_close(vec_of(gk.dh0), vec_of(go.dh0), "dh0");
                check_close(vec_of(gk.dweights.kernel), vec_of(go.dweights.kernel), "dkernel");
                check_close(vec_of(gk.dweights.recurrent_kernel), vec_of(go.dweights.recurrent_kernel), "drecurrent");
                check_close(vec_of(gk.dweights.bias), vec_of(go.dweights.bias), "dbias");
            }
    }
}

TEST_CASE("small-RNN kernel: the rule, its overrides, and the path it names") {
    const be::RnnSpec simple{.cell = be::RnnCell::simple_rnn, .units = 16, .layer_name = "r"};
    be::RnnSpec wide = simple, elu = simple, lstm = simple;
    wide.units = be::kSmallRnnMaxUnits + 1;
    elu.activation = Activation::elu;
    lstm.cell = be::RnnCell::lstm;
    {
        const SmallRnnModeScope scope(be::SmallRnnMode::automatic);
        CHECK(be::small_rnn_chosen(simple, 100));   // W1: SimpleRNN(16) over Embedding(100)
        CHECK_FALSE(be::small_rnn_chosen(simple, be::kSmallRnnAutoMaxFeatures + 1));
        CHECK_FALSE(be::small_rnn_chosen(wide, 4));
        CHECK_FALSE(be::small_rnn_chosen(elu, 4));
        CHECK_FALSE(be::small_rnn_chosen(lstm, 4));
        CHECK(cpu().rnn_path(simple).description ==
              fmt::format("small-RNN kernel (tanh); oneDNN vanilla_rnn (tanh) past {} input features",
                          be::kSmallRnnAutoMaxFeatures));
        CHECK(cpu().rnn_path(wide).description == "oneDNN vanilla_rnn (tanh)");
    }
    {
        const SmallRnnModeScope scope(be::SmallRnnMode::always);
        CHECK(be::small_rnn_chosen(simple, 100000));
        CHECK_FALSE(be::small_rnn_chosen(wide, 4));   // past the kernel's own limit: never
        CHECK(cpu().rnn_path(simple).description == "small-RNN kernel (tanh)");
    }
    {
        const SmallRnnModeScope scope(be::SmallRnnMode::never);
        CHECK_FALSE(be::small_rnn_chosen(simple, 4));
        CHECK(cpu().rnn_path(simple).description == "oneDNN vanilla_rnn (tanh)");
    }
    // Dropout masks take the step loop whatever the mode.
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    Case c{.cell = ref::Cell::simple_rnn, .N = 2, .T = 3, .C = 3, .H = 4};
    const Inputs in = make_inputs(c, false, 7);
    const be::RnnForward f = cpu().rnn_forward(spec_of(c), tensor_of(in.x, {2, 3, 3}), weights_of(c, in), Tensor(),
                                               Tensor(), true, {.input = Tensor::full({2, 3}, 1.0f), .recurrent = {}});
    CHECK_FALSE(be::is_small_rnn_forward(f));
}

TEST_CASE("small-RNN kernel: $KERASCPP_SMALL_RNN chooses the mode, a bad value is an error") {
    auto with_env = [](const char* value) {
        if (value) setenv("KERASCPP_SMALL_RNN", value, 1);
        else unsetenv("KERASCPP_SMALL_RNN");
    };
    const char* before = std::getenv("KERASCPP_SMALL_RNN");
    const std::string saved = before ? before : "";
    with_env("off");
    CHECK(be::small_rnn_mode() == be::SmallRnnMode::never);
    with_env("on");
    CHECK(be::small_rnn_mode() == be::SmallRnnMode::always);
    {
        const SmallRnnModeScope scope(be::SmallRnnMode::never);   // set_small_rnn_mode wins
        CHECK(be::small_rnn_mode() == be::SmallRnnMode::never);
    }
    with_env("auto");
    CHECK(be::small_rnn_mode() == be::SmallRnnMode::automatic);
    with_env("fast");
    CHECK_THROWS_WITH_AS(be::small_rnn_mode(),
                         "KERASCPP_SMALL_RNN='fast' is not a mode: expected auto, on (always) or off (never)",
                         keras::ValueError);
    with_env(before ? saved.c_str() : nullptr);
}

// ---------------------------------------------------------------------------------------------
// The small-batch LSTM inference kernel (small_rnn.cpp).
// ---------------------------------------------------------------------------------------------
namespace {

// Batches below, at and past its block of 4 samples; units of one to several 64-column chunks.
std::vector<Case> small_lstm_cases() {
    std::vector<Case> out;
    for (auto [N, T, C, H] : {std::array{1, 5, 3, 16}, {3, 4, 7, 32}, {5, 6, 2, 48}, {9, 3, 20, 128}, {2, 1, 1, 16}})
        for (bool rs : {false, true})
            for (bool gb : {false, true})
                for (bool bias : {true, false}) {
                    Case c{.cell = ref::Cell::lstm, .N = N, .T = T, .C = C, .H = H};
                    c.return_sequences = rs, c.go_backwards = gb, c.use_bias = bias;
                    out.push_back(c);
                }
    return out;
}

}  // namespace

TEST_CASE("small-LSTM kernel: inference forward equals the double-precision reference, both ISA builds") {
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    for (bool baseline : {false, true}) {
        be::set_small_rnn_baseline_isa(baseline);
        for (const Case& c : small_lstm_cases()) {
            const int64_t runs = be::small_lstm_runs();
            for (bool states : {false, true}) check_forward_against_reference(c, states, false, /*training=*/false);
            CHECK(be::small_lstm_runs() == runs + 2);
        }
    }
    be::set_small_rnn_baseline_isa(false);
    // Training keeps oneDNN's primitive (its backward needs the primitive's workspace).
    const int64_t runs = be::small_lstm_runs();
    check_forward_against_reference(small_lstm_cases()[0], true, false, /*training=*/true);
    CHECK(be::small_lstm_runs() == runs);
}

TEST_CASE("small-LSTM kernel: its recurrence on 1 to 4 threads gives the same bits") {
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    const std::vector<int32_t> lengths{5, 0, 3, 1, 5};
    for (auto [N, H] : {std::array{1, 64}, {5, 128}, {5, 96}, {2, 256}})
        for (bool packed : {false, true}) {
            Case c{.cell = ref::Cell::lstm, .N = N, .T = 5, .C = 7, .H = H, .return_sequences = true};
            INFO(std::string(c.str() + (packed ? " with lengths" : "")));
            const Inputs in = make_inputs(c, true, 61);
            auto run = [&](int threads) {
                be::set_small_lstm_threads(threads);
                be::RnnForward f = cpu().rnn_forward(
                    spec_of(c), tensor_of(in.x, {c.N, c.T, c.C}), weights_of(c, in), state_tensor(c, in.h0),
                    state_tensor(c, in.c0), false, {},
                    packed ? std::vector<int32_t>(lengths.begin(), lengths.begin() + N) : std::vector<int32_t>{});
                be::set_small_lstm_threads(std::nullopt);
                return std::array{vec_of(f.sequences), vec_of(f.h), vec_of(f.final_c())};
            };
            const auto one = run(1);
            for (int threads : {2, 3, 4}) CHECK(run(threads) == one);
            // and it is the reference's answer
            check_forward_against_reference(c, true, false, /*training=*/false);
        }
}

TEST_CASE("summary's runs-on line says when the small-LSTM kernel runs inference") {
    const GemmRnnModeScope primitives(be::GemmRnnMode::never);   // training's path is not the point here
    auto path = [](Case c) { return cpu().rnn_path(spec_of(c)).description; };
    {
        const SmallRnnModeScope automatic(be::SmallRnnMode::automatic);
        CHECK(path({.cell = ref::Cell::lstm, .H = 16}) == "oneDNN lstm; small-LSTM kernel for inference at batch <= 8");
        CHECK(path({.cell = ref::Cell::lstm, .H = 512}) == "oneDNN lstm");   // past the rule's units
        CHECK(path({.cell = ref::Cell::lstm, .H = 20}) == "oneDNN lstm");    // not a multiple of 16
    }
    {
        const SmallRnnModeScope always(be::SmallRnnMode::always);
        CHECK(path({.cell = ref::Cell::lstm, .H = 512}) == "oneDNN lstm; small-LSTM kernel for inference");
    }
    const SmallRnnModeScope never(be::SmallRnnMode::never);
    CHECK(path({.cell = ref::Cell::lstm, .H = 16}) == "oneDNN lstm");
}

TEST_CASE("small-LSTM kernel equals oneDNN's lstm, with and without lengths") {
    Case c{.cell = ref::Cell::lstm, .N = 11, .T = 7, .C = 6, .H = 32, .return_sequences = true};
    const std::vector<int32_t> lengths{7, 0, 3, 1, 7, 5, 2, 6, 4, 7, 1};
    for (bool gb : {false, true})
        for (bool packed : {false, true}) {
            c.go_backwards = gb;
            INFO(std::string(c.str() + (packed ? " with lengths" : "")));
            const Inputs in = make_inputs(c, true, 59);
            const auto spec = spec_of(c);
            const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});
            auto run = [&](be::SmallRnnMode mode) {
                const SmallRnnModeScope scope(mode);
                const int64_t runs = be::small_lstm_runs();
                be::RnnForward f = cpu().rnn_forward(spec, x, weights_of(c, in), state_tensor(c, in.h0),
                                                     state_tensor(c, in.c0), false, {},
                                                     packed ? lengths : std::vector<int32_t>{});
                CHECK((be::small_lstm_runs() == runs + 1) == (mode == be::SmallRnnMode::always));
                return f;
            };
            const be::RnnForward fk = run(be::SmallRnnMode::always);
            const be::RnnForward fo = run(be::SmallRnnMode::never);
            check_close(vec_of(fk.h), vec_of(fo.h), "h");
            check_close(vec_of(fk.final_c()), vec_of(fo.final_c()), "c");
            if (!packed)   // past each length the primitive's outputs are not the layer's
                check_close(vec_of(fk.sequences), vec_of(fo.sequences), "sequences");
        }
}

TEST_CASE("small-LSTM kernel: the rule and its overrides") {
    const be::RnnSpec lstm{.cell = be::RnnCell::lstm, .units = 128, .layer_name = "l"};
    be::RnnSpec odd = lstm, wide = lstm, hard = lstm, bf16 = lstm, simple = lstm;
    odd.units = 20;
    wide.units = be::kSmallLstmAutoMaxUnits + 16;
    hard.recurrent_activation = Activation::hard_sigmoid;
    bf16.precision = be::Precision::bfloat16;
    simple.cell = be::RnnCell::simple_rnn;
    const SmallRnnModeScope scope(be::SmallRnnMode::automatic);
    CHECK(be::small_lstm_chosen(lstm, 1, false));
    CHECK(be::small_lstm_chosen(lstm, be::kSmallLstmAutoMaxBatch, false));
    CHECK_FALSE(be::small_lstm_chosen(lstm, be::kSmallLstmAutoMaxBatch + 1, false));
    CHECK_FALSE(be::small_lstm_chosen(lstm, 1, true));   // training: oneDNN
    CHECK_FALSE(be::small_lstm_chosen(wide, 1, false));
    for (const be::RnnSpec& s : {odd, hard, bf16, simple}) CHECK_FALSE(be::small_lstm_supports(s));
    {
        const SmallRnnModeScope always(be::SmallRnnMode::always);
        CHECK(be::small_lstm_chosen(wide, 64, false));
        CHECK_FALSE(be::small_lstm_chosen(lstm, 1, true));
        CHECK_FALSE(be::small_lstm_chosen(odd, 1, false));
    }
    const SmallRnnModeScope never(be::SmallRnnMode::never);
    CHECK_FALSE(be::small_lstm_chosen(lstm, 1, false));
}

TEST_CASE("repeated calls reuse the cached primitives and do not accumulate stale gradients") {
    // oneDNN 2.6 adds into its weight gradients: a second backward must not include the first.
    for (const Family& f : families()) {
        if (!f.fused) continue;
        Case c = f.base;
        c.return_sequences = true;
        INFO(c.str());
        const Inputs in = make_inputs(c, true, 61);
        const OutputGrads og = make_output_grads(c, true, 61);
        const ref::RnnGrads expected = reference_backward(c, in, og);
        for (int round = 0; round < 3; ++round) {
            INFO("round " << round);
            be::RnnForward fwd = run_forward(c, in, false);
            const auto g = run_backward(c, in, fwd, og, false);
            check_close(vec_of(g.dweights.kernel), expected.dkernel, "dkernel");
            check_close(vec_of(g.dweights.recurrent_kernel), expected.drecurrent, "drecurrent");
            check_close(vec_of(g.dweights.bias), expected.dbias, "dbias");
            check_close(vec_of(g.dx), expected.dx, "dx");
        }
    }
}

TEST_CASE("two forwards in flight keep their own workspaces") {
    // A shared layer runs forward twice before either backward: each backward uses its own forward.
    Case c{.cell = ref::Cell::lstm, .N = 3, .T = 4, .C = 2, .H = 5, .return_sequences = true};
    const Inputs a = make_inputs(c, true, 71), b = make_inputs(c, true, 81);
    const OutputGrads og = make_output_grads(c, true, 71);
    be::RnnForward fa = run_forward(c, a, false), fb = run_forward(c, b, false);
    const auto gb = run_backward(c, b, fb, og, false);
    const auto ga = run_backward(c, a, fa, og, false);
    check_close(vec_of(ga.dweights.kernel), reference_backward(c, a, og).dkernel, "dkernel of the first forward");
    check_close(vec_of(gb.dweights.kernel), reference_backward(c, b, og).dkernel, "dkernel of the second forward");
}

TEST_CASE("inference forward equals training forward") {
    for (const Family& f : families()) {
        Case c = f.base;
        c.return_sequences = true;
        INFO(c.str());
        const Inputs in = make_inputs(c, true, 91);
        const auto train = run_forward(c, in, false, true), infer = run_forward(c, in, false, false);
        check_close(vec_of(infer.sequences), vec_of(train.sequences), "sequences", 1e-6, 1e-5);
        check_close(vec_of(infer.h), vec_of(train.h), "h", 1e-6, 1e-5);
    }
}

TEST_CASE("backend errors") {
    Case c{.cell = ref::Cell::lstm, .N = 2, .T = 3, .C = 3, .H = 4};
    const Inputs in = make_inputs(c, false, 5);
    const auto spec = spec_of(c);
    const Tensor x = tensor_of(in.x, {2, 3, 3});

    SUBCASE("backward of an inference forward") {
        be::RnnForward fwd = run_forward(c, in, false, /*training=*/false);
        CHECK_THROWS_WITH_AS(run_backward(c, in, fwd, make_output_grads(c, false, 5), false),
                             "Layer \"test_rnn\": rnn_backward needs a forward pass run with training=true",
                             keras::RuntimeError);
    }
    SUBCASE("second backward of one forward") {
        be::RnnForward fwd = run_forward(c, in, false);
        run_backward(c, in, fwd, make_output_grads(c, false, 5), false);
        CHECK_THROWS_WITH_AS(run_backward(c, in, fwd, make_output_grads(c, false, 5), false),
                             "Layer \"test_rnn\": this forward pass was already used by a backward pass (a fused RNN forward serves one backward: run the layer again, or ask a persistent GradientTape for its gradients in one call)",
                             keras::RuntimeError);
    }
    SUBCASE("kernel of the wrong shape") {
        be::RnnWeights w = weights_of(c, in);
        w.kernel = Tensor::zeros({4, 16});
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, x, w, Tensor(), Tensor(), true),
                             "Layer \"test_rnn\": kernel must be float32 of shape (3, 16), got (4, 16)",
                             keras::ValueError);
    }
    SUBCASE("missing bias") {
        be::RnnWeights w = weights_of(c, in);
        w.bias = Tensor();
        CHECK_THROWS_WITH_AS(be::rnn_fallback_forward(spec, x, w, Tensor(), Tensor()),
                             "Layer \"test_rnn\": bias must be float32 of shape (16,), got nothing", keras::ValueError);
    }
    SUBCASE("input that is not 3-D") {
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, x.reshape({6, 3}), weights_of(c, in), Tensor(), Tensor(), true),
                             "Layer \"test_rnn\": the RNN input must be a float32 tensor (batch, timesteps, "
                             "features), got float32 (6, 3)",
                             keras::ValueError);
    }
    // The CPU's copy of the checks had drifted from the CUDA one, which alone reported a missing
    // input as such (and checked devices). Both backends now share one check (rnn_contract.cpp).
    SUBCASE("no input at all") {
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, Tensor(), weights_of(c, in), Tensor(), Tensor(), true),
                             "Layer \"test_rnn\": the RNN input must be a float32 tensor (batch, timesteps, "
                             "features), got nothing",
                             keras::ValueError);
        CHECK_THROWS_WITH_AS(be::rnn_fallback_forward(spec, Tensor(), weights_of(c, in), Tensor(), Tensor()),
                             "Layer \"test_rnn\": the RNN input must be a float32 tensor (batch, timesteps, "
                             "features), got nothing",
                             keras::ValueError);
    }
    SUBCASE("lengths that do not fit the batch") {
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, x, weights_of(c, in), Tensor(), Tensor(), true, {}, {1, 2, 3}),
                             "Layer \"test_rnn\": 3 sequence lengths given for a batch of 2", keras::ValueError);
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, x, weights_of(c, in), Tensor(), Tensor(), true, {}, {1, 4}),
                             "Layer \"test_rnn\": sequence length 4 of sample 1 is outside [0, 3]", keras::ValueError);
    }
    SUBCASE("initial state of the wrong shape") {
        CHECK_THROWS_WITH_AS(cpu().rnn_forward(spec, x, weights_of(c, in), Tensor::zeros({3, 4}), Tensor(), true),
                             "Layer \"test_rnn\": initial state h must be float32 of shape (2, 4), got (3, 4)",
                             keras::ValueError);
    }
    SUBCASE("output gradient of the wrong shape (fallback)") {
        be::RnnForward fwd = run_forward(c, in, true);
        CHECK_THROWS_WITH_AS(
            be::rnn_fallback_backward(spec, weights_of(c, in), fwd, Tensor(), Tensor::zeros({2, 5}), Tensor()),
            "Layer \"test_rnn\": the gradient of the final state h must have shape (2, 4), got (2, 5)",
            keras::ValueError);
    }
}

// ---------------------------------------------------------------------------------------------
// Layers.
// ---------------------------------------------------------------------------------------------
namespace {

// Writes the case's weights into a built layer (kernel, recurrent_kernel, bias in that order).
void set_weights(kl::RNNBase& layer, const Case& c, const Inputs& in) {
    const be::RnnWeights w = weights_of(c, in);
    const auto& vars = layer.weights();
    REQUIRE(vars.size() == (c.use_bias ? 3u : 2u));
    vars[0]->value.copy_from(w.kernel);
    vars[1]->value.copy_from(w.recurrent_kernel);
    if (c.use_bias) vars[2]->value.copy_from(w.bias);
}

std::shared_ptr<kl::RNNBase> make_layer(const Case& c, float dropout = 0.0f) {
    switch (c.cell) {
        case ref::Cell::simple_rnn:
            return std::make_shared<kl::SimpleRNN>(
                c.H, kl::SimpleRNNOptions{.activation = c.activation, .use_bias = c.use_bias, .dropout = dropout,
                                          .return_sequences = c.return_sequences, .go_backwards = c.go_backwards});
        case ref::Cell::lstm:
            return std::make_shared<kl::LSTM>(
                c.H, kl::LSTMOptions{.activation = c.activation, .recurrent_activation = c.recurrent_activation,
                                     .use_bias = c.use_bias, .dropout = dropout,
                                     .return_sequences = c.return_sequences, .go_backwards = c.go_backwards});
        case ref::Cell::gru:
            return std::make_shared<kl::GRU>(
                c.H, kl::GRUOptions{.activation = c.activation, .recurrent_activation = c.recurrent_activation,
                                    .use_bias = c.use_bias, .dropout = dropout,
                                    .return_sequences = c.return_sequences, .go_backwards = c.go_backwards,
                                    .reset_after = c.reset_after});
    }
    return nullptr;
}

}  // namespace

TEST_CASE("layers: build creates Keras's weights") {
    kl::LSTM lstm(5);
    CHECK(lstm.build_for({-1, 7, 3}) == Shape{-1, 5});
    REQUIRE(lstm.weights().size() == 3);
    CHECK(lstm.weights()[0]->name == "kernel");
    CHECK(lstm.weights()[0]->value.shape() == Shape{3, 20});
    CHECK(lstm.weights()[1]->name == "recurrent_kernel");
    CHECK(lstm.weights()[1]->value.shape() == Shape{5, 20});
    CHECK(lstm.weights()[2]->name == "bias");
    // unit_forget_bias: the forget block (i, f, c, o) starts at 1, the rest at 0.
    const auto bias = lstm.weights()[2]->value.to_vector<float>();
    for (int j = 0; j < 20; ++j) CHECK(bias[j] == (j >= 5 && j < 10 ? 1.0f : 0.0f));
    CHECK(lstm.count_params() == 3 * 20 + 5 * 20 + 20);

    // The recurrent kernel is orthogonal: U U^T = I for the (5, 20) matrix (rows orthonormal).
    const auto U = lstm.weights()[1]->value.to_vector<float>();
    for (int a = 0; a < 5; ++a)
        for (int b = 0; b < 5; ++b) {
            double s = 0;
            for (int k = 0; k < 20; ++k) s += double(U[a * 20 + k]) * U[b * 20 + k];
            CHECK(s == doctest::Approx(a == b ? 1.0 : 0.0).epsilon(1e-5));
        }

    kl::LSTM no_forget(2, {.unit_forget_bias = false});
    no_forget.build_for({-1, 3, 2});
    for (float b : no_forget.weights()[2]->value.to_vector<float>()) CHECK(b == 0.0f);

    kl::GRU gru(4);
    gru.build_for({-1, 5, 6});
    CHECK(gru.weights()[2]->value.shape() == Shape{2, 12});
    kl::GRU gru_before(4, {.reset_after = false});
    gru_before.build_for({-1, 5, 6});
    CHECK(gru_before.weights()[2]->value.shape() == Shape{12});

    kl::SimpleRNN rnn(3, {.use_bias = false, .return_sequences = true});
    CHECK(rnn.build_for({-1, 9, 2}) == Shape{-1, 9, 3});
    CHECK(rnn.weights().size() == 2);
}

TEST_CASE("layers: forward and backward equal the reference, gradients are added") {
    std::vector<Case> cases;
    for (const Family& f : families())
        for (bool rs : {false, true}) {
            Case c = f.base;
            c.N = 3, c.T = 4, c.C = 2, c.H = 3, c.return_sequences = rs, c.go_backwards = rs;
            cases.push_back(c);
        }
    Case no_bias{.cell = ref::Cell::gru, .use_bias = false, .reset_after = true};
    cases.push_back(no_bias);

    for (const Case& c : cases) {
        INFO(c.str());
        auto layer = make_layer(c);
        layer->build_for({-1, c.T, c.C});
        const Inputs in = make_inputs(c, false, 101);
        set_weights(*layer, c, in);

        CallContext ctx;
        ctx.training = true;
        const Tensor y = layer->call(tensor_of(in.x, {c.N, c.T, c.C}), ctx);
        const auto expected = ref::rnn_forward(config_of(c), in.x, in.kernel, in.recurrent, in.bias);
        CHECK(y.shape() == (c.return_sequences ? Shape{c.N, c.T, c.H} : Shape{c.N, c.H}));
        check_close(vec_of(y), expected.y, "y");

        const ref::Vec dy = ref::random_vec(expected.y.size(), 7, -1.0, 1.0);
        const auto grads = ref::rnn_backward(config_of(c), in.x, in.kernel, in.recurrent, in.bias, {}, {}, dy);
        const Tensor dx = layer->backward(tensor_of(dy, y.shape()), ctx);
        check_close(vec_of(dx), grads.dx, "dx");
        check_close(vec_of(layer->weights()[0]->grad), grads.dkernel, "kernel grad");
        check_close(vec_of(layer->weights()[1]->grad), grads.drecurrent, "recurrent_kernel grad");
        if (c.use_bias) check_close(vec_of(layer->weights()[2]->grad), grads.dbias, "bias grad");

        // A second forward/backward adds to the gradients (the model zeroes them between steps).
        CallContext ctx2;
        ctx2.training = true;
        layer->call(tensor_of(in.x, {c.N, c.T, c.C}), ctx2);
        layer->backward(tensor_of(dy, y.shape()), ctx2);
        ref::Vec twice = grads.dkernel;
        for (double& v : twice) v *= 2;
        check_close(vec_of(layer->weights()[0]->grad), twice, "kernel grad after two backward passes");

        // Inference runs the same numbers.
        CallContext infer;
        infer.training = false;
        check_close(vec_of(layer->call(tensor_of(in.x, {c.N, c.T, c.C}), infer)), expected.y, "y (inference)");
    }
}

TEST_CASE("layers: input dropout uses one mask per sequence, only in training") {
    Case c{.cell = ref::Cell::lstm, .N = 6, .T = 5, .C = 8, .H = 3, .return_sequences = true};
    const float rate = 0.4f;
    auto layer = make_layer(c, rate);
    layer->build_for({-1, c.T, c.C});
    const Inputs in = make_inputs(c, false, 131);
    set_weights(*layer, c, in);
    const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});

    SUBCASE("training=false: no dropout") {
        CallContext ctx;
        ctx.training = false;
        const auto expected = ref::rnn_forward(config_of(c), in.x, in.kernel, in.recurrent, in.bias);
        check_close(vec_of(layer->call(x, ctx)), expected.y, "y");
    }
    SUBCASE("training=true: the output is the RNN of x * mask, the mask (N, C) shared over time") {
        // The mask the layer draws: N * C uniforms in (sample, feature) order, kept when u < 1 - rate.
        keras::utils::set_random_seed(2024);
        std::vector<double> mask(static_cast<size_t>(c.N) * c.C);
        for (double& m : mask) m = keras::random::uniform01() < 1.0 - rate ? 1.0 / (1.0 - double(rate)) : 0.0;
        ref::Vec x_dropped = in.x;
        for (int n = 0; n < c.N; ++n)
            for (int t = 0; t < c.T; ++t)
                for (int k = 0; k < c.C; ++k) x_dropped[(n * c.T + t) * c.C + k] *= mask[n * c.C + k];

        keras::utils::set_random_seed(2024);
        CallContext ctx;
        ctx.training = true;
        const Tensor y = layer->call(x, ctx);
        const auto expected = ref::rnn_forward(config_of(c), x_dropped, in.kernel, in.recurrent, in.bias);
        check_close(vec_of(y), expected.y, "y");

        const ref::Vec dy = ref::random_vec(expected.y.size(), 3, -1.0, 1.0);
        const Tensor dx = layer->backward(tensor_of(dy, y.shape()), ctx);
        auto grads = ref::rnn_backward(config_of(c), x_dropped, in.kernel, in.recurrent, in.bias, {}, {}, dy);
        for (size_t i = 0; i < grads.dx.size(); ++i) {
            const size_t n = i / (c.T * c.C), k = i % c.C;
            grads.dx[i] *= mask[n * c.C + k];
        }
        check_close(vec_of(dx), grads.dx, "dx");

        // Independent of the draw order: per (sample, feature), dx is zero at every step or at none.
        const auto d = dx.to_vector<float>();
        int dropped = 0;
        for (int n = 0; n < c.N; ++n)
            for (int k = 0; k < c.C; ++k) {
                int zeros = 0;
                for (int t = 0; t < c.T; ++t) zeros += d[(n * c.T + t) * c.C + k] == 0.0f;
                CHECK((zeros == 0 || zeros == c.T));
                dropped += zeros == c.T;
            }
        CHECK(dropped > 0);
        CHECK(dropped < c.N * c.C);
    }
}

TEST_CASE("layers: input shape errors read like Keras's") {
    keras::utils::clear_session();
    kl::LSTM lstm(4);
    CHECK_THROWS_WITH_AS(lstm.build_for({-1, 130}),
                         "Input 0 of layer \"lstm\" is incompatible with the layer: expected ndim=3, found ndim=2. "
                         "Full shape received: (None, 130)",
                         keras::ValueError);
    kl::GRU gru(4, {.name = "my_gru"});
    CHECK_THROWS_WITH_AS(gru.build_for({-1, 5, 7, 2}),
                         "Input 0 of layer \"my_gru\" is incompatible with the layer: expected ndim=3, found ndim=4. "
                         "Full shape received: (None, 5, 7, 2)",
                         keras::ValueError);
    kl::SimpleRNN rnn(4);
    CHECK(rnn.name() == "simple_rnn");
    CallContext ctx;
    CHECK_THROWS_WITH_AS(rnn.call(Tensor::zeros({3, 10}), ctx),
                         "Input 0 of layer \"simple_rnn\" is incompatible with the layer: expected ndim=3, found "
                         "ndim=2. Full shape received: (3, 10)",
                         keras::ValueError);
    CHECK_THROWS_WITH_AS(kl::LSTM(0), "Received an invalid value for argument `units`, expected a positive integer, "
                                      "got 0.",
                         keras::ValueError);
    CHECK_THROWS_WITH_AS(kl::SimpleRNN(3, {.activation = "nope"}),
                         "Could not interpret activation function identifier: nope", keras::ValueError);
}

TEST_CASE("layers: get_config and implementation_note") {
    kl::LSTM lstm(7, {.recurrent_activation = "hard_sigmoid", .dropout = 0.2f, .return_sequences = true,
                      .name = "enc"});
    const auto cfg = lstm.get_config();
    CHECK(cfg["name"] == "enc");
    CHECK(cfg["units"] == 7);
    CHECK(cfg["activation"] == "tanh");
    CHECK(cfg["recurrent_activation"] == "hard_sigmoid");
    CHECK(cfg["use_bias"] == true);
    CHECK(cfg["unit_forget_bias"] == true);
    CHECK(cfg["kernel_initializer"]["class_name"] == "GlorotUniform");
    CHECK(cfg["recurrent_initializer"]["config"] == nlohmann::json::parse(R"({"seed": null, "gain": 1.0})"));
    CHECK(cfg["bias_initializer"]["class_name"] == "Zeros");
    CHECK(cfg["dropout"].get<double>() == 0.2);
    CHECK(cfg["recurrent_dropout"].get<double>() == 0.0);
    CHECK(cfg["return_sequences"] == true);
    CHECK(cfg["return_state"] == false);
    CHECK(cfg["go_backwards"] == false);
    CHECK(cfg["stateful"] == false);
    CHECK(cfg["unroll"] == false);
    CHECK(lstm.implementation_note() ==
          "fallback loop: recurrent_activation='hard_sigmoid' is not supported by oneDNN's lstm primitive");

    kl::GRU gru(3, {.go_backwards = true, .reset_after = false});
    const auto gcfg = gru.get_config();
    CHECK(gcfg["reset_after"] == false);
    CHECK(gcfg["go_backwards"] == true);
    CHECK(gcfg["recurrent_activation"] == "sigmoid");
    CHECK(gru.implementation_note() == "oneDNN gru");
    CHECK(kl::GRU(3).implementation_note() == "GEMM-step gru (oneDNN matmul) in training; oneDNN lbr_gru in inference");
    CHECK(kl::GRU(be::kGemmRnnAutoMaxGruFloat32Units + 1).implementation_note() == "oneDNN lbr_gru");

    kl::SimpleRNN rnn(3, {.activation = "relu"});
    const auto scfg = rnn.get_config();
    CHECK(scfg["activation"] == "relu");
    CHECK_FALSE(scfg.contains("recurrent_activation"));
    CHECK(rnn.implementation_note() == "small-RNN kernel (relu); oneDNN vanilla_rnn (relu) past 2048 input features");
}

// ---------------------------------------------------------------------------------------------
// Timing of the benchmark workloads (skipped by default; run with --no-skip).
// ---------------------------------------------------------------------------------------------
namespace {
double time_forward_backward(const Case& c, int repeats, bool force_fallback) {
    const Inputs in = make_inputs(c, false, 3);
    const OutputGrads og = make_output_grads(c, false, 3);
    const auto spec = spec_of(c);
    const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});
    const be::RnnWeights w = weights_of(c, in);
    const Tensor dh = state_tensor(c, og.dh);
    auto once = [&] {
        if (force_fallback) {
            be::RnnForward fwd = be::rnn_fallback_forward(spec, x, w, Tensor(), Tensor());
            be::rnn_fallback_backward(spec, w, fwd, Tensor(), dh, Tensor());
        } else {
            be::RnnForward fwd = cpu().rnn_forward(spec, x, w, Tensor(), Tensor(), true);
            cpu().rnn_backward(spec, w, fwd, Tensor(), dh, Tensor());
        }
    };
    once();   // primitive creation, JIT, first touch
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) once();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / repeats;
}
}  // namespace

TEST_CASE("timing: one forward+backward of the benchmark RNNs" * doctest::skip()) {
    const Case lstm{.cell = ref::Cell::lstm, .N = 64, .T = 200, .C = 128, .H = 128};
    const Case rnn{.cell = ref::Cell::simple_rnn, .N = 100, .T = 130, .C = 100, .H = 16};
    for (bool fallback : {false, true}) {
        const char* path = fallback ? "fallback loop" : "oneDNN primitive";
        const SmallRnnModeScope off(be::SmallRnnMode::never);
        MESSAGE(fmt::format("LSTM(128) N=64 T=200 C=128, {}: {:.1f} ms per forward+backward", path,
                            time_forward_backward(lstm, 10, fallback)));
        MESSAGE(fmt::format("SimpleRNN(16) N=100 T=130 C=100, {}: {:.2f} ms per forward+backward", path,
                            time_forward_backward(rnn, 50, fallback)));
    }
    const SmallRnnModeScope on(be::SmallRnnMode::always);
    MESSAGE(fmt::format("SimpleRNN(16) N=100 T=130 C=100, small-RNN kernel: {:.2f} ms per forward+backward",
                        time_forward_backward(rnn, 50, false)));
}

// ---------------------------------------------------------------------------------------------
// Our GEMM-step LSTM / GRU (gemm_rnn.cpp): float32 products here (always mode), so the same
// tolerances as every path; its bfloat16 run is test_mixed_precision's.
// ---------------------------------------------------------------------------------------------
namespace {

// The grid's small shapes, and units enough to split across threads (H >= 32, one part per 16
// units: 40 in two equal parts, 33 in 16 + 17), not a multiple of the 16-float vectors.
std::vector<Case> gemm_rnn_cases() {
    std::vector<Case> out;
    for (const Case& base : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::gru, .reset_after = true}}) {
        for (const Case& c : grid(base)) out.push_back(c);
        for (auto [N, T, C, H] : {std::array{20, 6, 5, 20}, {33, 4, 7, 40}, {5, 3, 3, 33}, {16, 3, 3, 16}}) {
            Case c = base;
            c.N = N, c.T = T, c.C = C, c.H = H, c.return_sequences = true, c.go_backwards = H == 40;
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("GEMM-step LSTM / GRU: forward and backward equal the double-precision reference, every option") {
    const GemmRnnModeScope on(be::GemmRnnMode::always);
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    for (const Case& c : gemm_rnn_cases()) {
        CHECK(be::is_gemm_rnn_forward(run_forward(c, make_inputs(c, false, 1), false)));
        for (bool states : {false, true}) {
            check_forward_against_reference(c, states, false);
            check_backward_against_reference(c, states, false);
        }
    }
}

TEST_CASE("GEMM-step LSTM / GRU: the gate loops' baseline-ISA build equals the reference too") {
    const GemmRnnModeScope on(be::GemmRnnMode::always);
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    be::set_small_rnn_baseline_isa(true);
    for (const Case& c : gemm_rnn_cases()) {
        check_forward_against_reference(c, true, false);
        check_backward_against_reference(c, true, false);
    }
    be::set_small_rnn_baseline_isa(false);
}

TEST_CASE("GEMM-step LSTM / GRU: backward equals central finite differences of its forward") {
    const GemmRnnModeScope on(be::GemmRnnMode::always);
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    for (const Case& base : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::gru, .reset_after = true}}) {
        Case c = base;
        c.N = 2, c.T = 4, c.C = 3, c.H = 3;
        for (bool rs : {false, true})
            for (bool gb : {false, true})
                for (bool bias : {true, false}) {
                    c.return_sequences = rs, c.go_backwards = gb, c.use_bias = bias;
                    check_backward_against_finite_differences(c, false);
                }
    }
}

TEST_CASE("GEMM-step LSTM / GRU equal oneDNN's primitives, with and without lengths, c's gradient included") {
    const SmallRnnModeScope off(be::SmallRnnMode::never);
    for (const Case& base : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::gru, .reset_after = true}}) {
        Case c = base;
        c.N = 19, c.T = 7, c.C = 6, c.H = 36, c.return_sequences = true;
        const bool lstm = c.cell == ref::Cell::lstm;
        const std::vector<int32_t> lengths{7, 0, 3, 1, 7, 5, 2, 6, 4, 7, 1, 7, 6, 5, 4, 3, 2, 1, 0};
        for (bool gb : {false, true})
            for (bool packed : {false, true}) {
                c.go_backwards = gb;
                INFO(std::string(c.str() + (packed ? " with lengths" : "")));
                const Inputs in = make_inputs(c, true, 61);
                const OutputGrads og = make_output_grads(c, true, 61);
                const auto spec = spec_of(c);
                const Tensor x = tensor_of(in.x, {c.N, c.T, c.C});
                const Tensor dseq = tensor_of(og.dseq, {c.N, c.T, c.H}), dh = state_tensor(c, og.dh);
                const Tensor dc = lstm ? state_tensor(c, og.dc) : Tensor();
                auto run = [&](be::GemmRnnMode mode) {
                    const GemmRnnModeScope scope(mode);
                    be::RnnForward f = cpu().rnn_forward(spec, x, weights_of(c, in), state_tensor(c, in.h0),
                                                         lstm ? state_tensor(c, in.c0) : Tensor(), true, {},
                                                         packed ? lengths : std::vector<int32_t>{});
                    CHECK(be::is_gemm_rnn_forward(f) == (mode == be::GemmRnnMode::always));
                    const Tensor c_final = lstm ? f.final_c() : Tensor();
                    be::RnnGradients g = cpu().rnn_backward(spec, weights_of(c, in), f, dseq, dh, dc);
                    return std::tuple{f, c_final, g};
                };
                const auto [fk, ck, gk] = run(be::GemmRnnMode::always);
                const auto [fo, co, go] = run(be::GemmRnnMode::never);
                check_close(vec_of(fk.h), vec_of(fo.h), "h");
                if (lstm) check_close(vec_of(ck), vec_of(co), "c");
                if (!packed)   // past each length the primitive's outputs are not the layer's
                    check_close(vec_of(fk.sequences), vec_of(fo.sequences), "sequences");
                check_close(vec_of(gk.dx), vec_of(go.dx), "dx");
                check_close(vec_of(gk.dh0), vec_of(go.dh0), "dh0");
                if (lstm) check_close(vec_of(gk.dc0), vec_of(go.dc0), "dc0");
                check_close(vec_of(gk.dweights.kernel), vec_of(go.dweights.kernel), "dkernel");
                check_close(vec_of(gk.dweights.recurrent_kernel), vec_of(go.dweights.recurrent_kernel), "drecurrent");
                check_close(vec_of(gk.dweights.bias), vec_of(go.dweights.bias), "dbias");
            }
    }
}

TEST_CASE("GEMM-step LSTM / GRU: the rule, its overrides, the path it names, and one forward per backward") {
    const be::RnnSpec lstm{.cell = be::RnnCell::lstm, .units = 8, .layer_name = "l"};
    be::RnnSpec gru = lstm, gru_before = lstm, hard = lstm, simple = lstm;
    gru.cell = gru_before.cell = be::RnnCell::gru;
    gru_before.reset_after = false;
    hard.recurrent_activation = Activation::hard_sigmoid;
    simple.cell = be::RnnCell::simple_rnn;
    CHECK(be::gemm_rnn_supports(lstm));
    CHECK(be::gemm_rnn_supports(gru));
    for (const be::RnnSpec& s : {gru_before, hard, simple}) CHECK_FALSE(be::gemm_rnn_supports(s));
    {
        const GemmRnnModeScope automatic(be::GemmRnnMode::automatic);
        be::RnnSpec wide_lstm = lstm, wide_gru = gru;
        wide_lstm.units = wide_gru.units = be::kGemmRnnAutoMaxUnits + 1;
        for (bool training : {true, false}) {   // bfloat16: ours up to the units limit
            CHECK(be::gemm_rnn_chosen(lstm, true, training));
            CHECK(be::gemm_rnn_chosen(gru, true, training));
            CHECK_FALSE(be::gemm_rnn_chosen(wide_lstm, true, training));
            CHECK_FALSE(be::gemm_rnn_chosen(gru_before, true, training));
        }
        CHECK(be::gemm_rnn_chosen(wide_gru, true, true));   // past it, GRU training only
        CHECK_FALSE(be::gemm_rnn_chosen(wide_gru, true, false));
        CHECK(be::gemm_rnn_chosen(lstm, false, true));   // float32: LSTM training up to the limit
        CHECK_FALSE(be::gemm_rnn_chosen(wide_lstm, false, true));
        for (const be::RnnSpec& s : {lstm, gru}) CHECK_FALSE(be::gemm_rnn_chosen(s, false, false));
        be::RnnSpec gru_at_limit = gru, gru_past_limit = gru;   // and GRU training up to its own, lower limit
        gru_at_limit.units = be::kGemmRnnAutoMaxGruFloat32Units;
        gru_past_limit.units = be::kGemmRnnAutoMaxGruFloat32Units + 1;
        CHECK(be::gemm_rnn_chosen(gru_at_limit, false, true));
        CHECK_FALSE(be::gemm_rnn_chosen(gru_past_limit, false, true));
        be::RnnSpec bf16 = gru, bf16_wide = wide_gru;
        bf16.precision = bf16_wide.precision = be::Precision::bfloat16;
        if (cpu().bfloat16_unsupported_reason().empty()) {
            CHECK(cpu().rnn_path(bf16).description == "GEMM-step gru (oneDNN matmul), in bfloat16");
            CHECK(cpu().rnn_path(bf16_wide).description ==
                  "GEMM-step gru (oneDNN matmul) in training; oneDNN lbr_gru in inference, in bfloat16");
        }
        CHECK(cpu().rnn_path(gru_past_limit).description == "oneDNN lbr_gru");
        CHECK(cpu().rnn_path(gru).description == "GEMM-step gru (oneDNN matmul) in training; oneDNN lbr_gru in inference");
        CHECK(cpu().rnn_path(lstm).description.find("GEMM-step lstm (oneDNN matmul) in training; oneDNN lstm in "
                                                    "inference") == 0);
    }
    {
        const GemmRnnModeScope always(be::GemmRnnMode::always);
        CHECK(be::gemm_rnn_chosen(gru, false, false));
        CHECK(cpu().rnn_path(gru).description == "GEMM-step gru (oneDNN matmul)");
        const Case c{.cell = ref::Cell::gru, .N = 3, .T = 2, .C = 2, .H = 8};
        const Inputs in = make_inputs(c, false, 5);
        be::RnnForward f = run_forward(c, in, false);
        const OutputGrads og = make_output_grads(c, false, 5);
        run_backward(c, in, f, og, false);
        CHECK_THROWS_WITH_AS(run_backward(c, in, f, og, false),
                             doctest::Contains("this forward pass was already used by a backward pass"),
                             std::runtime_error);
    }
    const GemmRnnModeScope never(be::GemmRnnMode::never);
    CHECK_FALSE(be::gemm_rnn_chosen(lstm, true, true));

    const char* before = std::getenv("KERASCPP_GEMM_RNN");
    const std::string saved = before ? before : "";
    be::set_gemm_rnn_mode(std::nullopt);
    setenv("KERASCPP_GEMM_RNN", "off", 1);
    CHECK(be::gemm_rnn_mode() == be::GemmRnnMode::never);
    setenv("KERASCPP_GEMM_RNN", "on", 1);
    CHECK(be::gemm_rnn_mode() == be::GemmRnnMode::always);
    setenv("KERASCPP_GEMM_RNN", "fast", 1);
    CHECK_THROWS_WITH_AS(be::gemm_rnn_mode(),
                         "KERASCPP_GEMM_RNN='fast' is not a mode: expected auto, on (always) or off (never)",
                         keras::ValueError);
    if (before) setenv("KERASCPP_GEMM_RNN", saved.c_str(), 1);
    else unsetenv("KERASCPP_GEMM_RNN");
}
