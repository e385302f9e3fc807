// Exact masking inside SimpleRNN / LSTM / GRU and Bidirectional.
//
// The checks, each against something independent of the code under test:
// - masked = unpadded: a masked padded batch (left-padded, right-padded, length 1, fully padded, holes
//   in the middle) gives at every real step the outputs, and for the weights and inputs the gradients,
//   of the double-precision reference (tests/reference/) run on each sequence alone, unpadded; on the
//   oneDNN primitive and on the step loop, with and without go_backwards and return_sequences;
// - the masked steps' outputs (carried over or zeros) against the reference written as Keras's masked
//   loop (ref::rnn_forward_masked), and gradients through them by finite differences of it;
// - Bidirectional (concat / sum / mul / ave) with a mask against the same reference;
// - stateful layers keep the states of the last real step;
// - real Keras 3 (tests/fixtures/masking_keras.json by gen_masking_fixtures.py): Embedding(mask_zero)
//   -> LSTM / GRU / SimpleRNN / Bidirectional on pre-padded, post-padded and holed ids, every step;
// - the index tables (masked_steps) by hand, and the errors.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/masked_steps.hpp"
#include "keras/layers/masking.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/models.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using namespace keras;
using namespace test_helpers;
namespace be = keras::backend;

namespace {

// One test layer: the cell, its activations (a non-tanh one forces oneDNN's fallback loop) and options.
struct Case {
    ref::Cell cell = ref::Cell::lstm;
    std::string activation = "tanh", recurrent_activation = "sigmoid";
    bool reset_after = true, go_backwards = false, return_sequences = false, zero_output_for_mask = false;
    int C = 3, H = 4;

    std::string str() const {
        const char* names[] = {"SimpleRNN", "LSTM", "GRU"};
        return fmt::format("{} act={} ract={} reset_after={} go_backwards={} return_sequences={} zero_output={}",
                           names[static_cast<int>(cell)], activation, recurrent_activation, reset_after, go_backwards,
                           return_sequences, zero_output_for_mask);
    }
    int gates() const { return ref::gates(cell); }
    ref::RnnConfig config(int N, int T, bool return_sequences_override) const {
        return ref::RnnConfig{.cell = cell, .N = N, .T = T, .C = C, .H = H, .activation = activation,
                              .recurrent_activation = recurrent_activation, .use_bias = true,
                              .reset_after = reset_after, .go_backwards = go_backwards,
                              .return_sequences = return_sequences_override};
    }
    std::shared_ptr<layers::RNNBase> make(bool stateful = false) const {
        switch (cell) {
            case ref::Cell::simple_rnn:
                return std::make_shared<layers::SimpleRNN>(
                    H, layers::SimpleRNNOptions{.activation = activation, .return_sequences = return_sequences,
                                                .go_backwards = go_backwards, .stateful = stateful,
                                                .zero_output_for_mask = zero_output_for_mask});
            case ref::Cell::lstm:
                return std::make_shared<layers::LSTM>(
                    H, layers::LSTMOptions{.activation = activation, .recurrent_activation = recurrent_activation,
                                           .return_sequences = return_sequences, .go_backwards = go_backwards,
                                           .stateful = stateful, .zero_output_for_mask = zero_output_for_mask});
            case ref::Cell::gru:
                return std::make_shared<layers::GRU>(
                    H, layers::GRUOptions{.activation = activation, .recurrent_activation = recurrent_activation,
                                          .return_sequences = return_sequences, .go_backwards = go_backwards,
                                          .stateful = stateful, .reset_after = reset_after,
                                          .zero_output_for_mask = zero_output_for_mask});
        }
        return nullptr;
    }
};

struct Weights {
    ref::Vec kernel, recurrent, bias;
};

Weights random_weights(const Case& c, unsigned seed) {
    const int GH = c.gates() * c.H;
    const auto bias_n = ref::bias_size(c.config(1, 1, false));
    return {ref::random_vec(static_cast<size_t>(c.C * GH), seed, -0.8, 0.8),
            ref::random_vec(static_cast<size_t>(c.H * GH), seed + 1, -0.8, 0.8),
            ref::random_vec(bias_n, seed + 2, -0.5, 0.5)};
}

void set_weights(layers::RNNBase& layer, const Case& c, const Weights& w, int T) {
    layer.build_for({-1, T, c.C});
    const auto& ws = layer.weights();
    ws[0]->value.copy_from(floats(w.kernel, ws[0]->value.shape()));
    ws[1]->value.copy_from(floats(w.recurrent, ws[1]->value.shape()));
    ws[2]->value.copy_from(floats(w.bias, ws[2]->value.shape()));
}

void check_close(const ref::Vec& ours, const ref::Vec& expected, const std::string& what, double atol = 2e-5,
                 double rtol = 2e-4) {
    INFO(what);
    REQUIRE(ours.size() == expected.size());
    CHECK(ref::max_rel_err(ours, expected, atol, rtol) <= 1.0);
}

// The batch every case runs on (N = 6, T = 5): left-padded (length 3), right-padded (2), one real
// step at the end, fully padded, holes in the middle, no padding.
constexpr int kN = 6, kT = 5;
const std::vector<int> kMask = {0, 0, 1, 1, 1,  1, 1, 0, 0, 0,  0, 0, 0, 0, 1,
                                0, 0, 0, 0, 0,  1, 0, 1, 0, 1,  1, 1, 1, 1, 1};

std::vector<double> as_doubles(const std::vector<int>& v) { return {v.begin(), v.end()}; }

// The real steps of sample n, in input order.
std::vector<int> real_steps(int n) {
    std::vector<int> out;
    for (int t = 0; t < kT; ++t)
        if (kMask[n * kT + t]) out.push_back(t);
    return out;
}

// Output step s (processing order) of input step t.
int processing_step(const Case& c, int t) { return c.go_backwards ? kT - 1 - t : t; }

struct Run {
    ref::Vec y, dx, dkernel, drecurrent, dbias;
};

// Forward and backward through the layer with the mask, training, for the output gradient dy.
Run run_layer(const Case& c, const Weights& w, const ref::Vec& x, const ref::Vec& dy) {
    auto layer = c.make();
    set_weights(*layer, c, w, kT);
    CallContext ctx;
    ctx.training = true;
    ctx.mask = floats(as_doubles(kMask), {kN, kT});
    const Tensor y = layer->call(floats(x, {kN, kT, c.C}), ctx);
    const Tensor dx = layer->backward(floats(dy, y.shape()), ctx);
    const auto& ws = layer->weights();
    return {values_of(y), values_of(dx), values_of(ws[0]->grad), values_of(ws[1]->grad), values_of(ws[2]->grad)};
}

// The output gradient of a loss that reads only the real steps (the last output for
// return_sequences=false): what each unpadded sequence alone would see.
ref::Vec real_step_weights(const Case& c, unsigned seed) {
    ref::Vec dy = ref::random_vec(static_cast<size_t>(kN * (c.return_sequences ? kT : 1) * c.H), seed);
    if (!c.return_sequences) return dy;
    for (int n = 0; n < kN; ++n)
        for (int t = 0; t < kT; ++t)
            if (!kMask[n * kT + t])
                for (int j = 0; j < c.H; ++j) dy[(n * kT + processing_step(c, t)) * c.H + j] = 0.0;
    return dy;
}

// Masked = unpadded: the layer on the masked batch against the reference on each sequence alone.
void check_masked_equals_unpadded(const Case& c) {
    INFO(c.str());
    const Weights w = random_weights(c, 11);
    const ref::Vec x = ref::random_vec(static_cast<size_t>(kN * kT * c.C), 7);
    const ref::Vec dy = real_step_weights(c, 13);
    const Run ours = run_layer(c, w, x, dy);

    ref::Vec dkernel(w.kernel.size(), 0.0), drecurrent(w.recurrent.size(), 0.0), dbias(w.bias.size(), 0.0);
    ref::Vec dx(x.size(), 0.0);
    for (int n = 0; n < kN; ++n) {
        const std::vector<int> steps = real_steps(n);
        const int L = static_cast<int>(steps.size());
        if (L == 0) continue;   // nothing to run: checked below (zero output, zero gradient)
        ref::Vec xn, dyn;
        for (int t : steps) xn.insert(xn.end(), x.begin() + (n * kT + t) * c.C, x.begin() + (n * kT + t + 1) * c.C);
        // The unpadded run's processing step k is the k-th real step in processing order.
        const ref::RnnConfig cfg = c.config(1, L, true);
        const ref::RnnResult e = ref::rnn_forward(cfg, xn, w.kernel, w.recurrent, w.bias);
        for (int k = 0; k < L; ++k) {
            const int t = steps[c.go_backwards ? L - 1 - k : k];
            const int s = processing_step(c, t);
            if (c.return_sequences) {
                check_close(ref::Vec(ours.y.begin() + (n * kT + s) * c.H, ours.y.begin() + (n * kT + s + 1) * c.H),
                            ref::Vec(e.y.begin() + k * c.H, e.y.begin() + (k + 1) * c.H),
                            fmt::format("output of sample {} at input step {}", n, t));
                dyn.insert(dyn.end(), dy.begin() + (n * kT + s) * c.H, dy.begin() + (n * kT + s + 1) * c.H);
            }
        }
        if (!c.return_sequences) {
            // Keras returns the last step's output: the last real one (unless zeroed, see below).
            const bool last_masked = !kMask[n * kT + (c.go_backwards ? 0 : kT - 1)];
            if (!(c.zero_output_for_mask && last_masked)) {
                check_close(ref::Vec(ours.y.begin() + n * c.H, ours.y.begin() + (n + 1) * c.H), e.h,
                            fmt::format("last output of sample {}", n));
                dyn.assign(static_cast<size_t>(L * c.H), 0.0);
                std::copy(dy.begin() + n * c.H, dy.begin() + (n + 1) * c.H, dyn.end() - c.H);
            } else {
                dyn.assign(static_cast<size_t>(L * c.H), 0.0);
            }
        }
        const ref::RnnGrads g = ref::rnn_backward(cfg, xn, w.kernel, w.recurrent, w.bias, {}, {}, dyn);
        for (size_t i = 0; i < dkernel.size(); ++i) dkernel[i] += g.dkernel[i];
        for (size_t i = 0; i < drecurrent.size(); ++i) drecurrent[i] += g.drecurrent[i];
        for (size_t i = 0; i < dbias.size(); ++i) dbias[i] += g.dbias[i];
        for (int k = 0; k < L; ++k)
            std::copy(g.dx.begin() + k * c.C, g.dx.begin() + (k + 1) * c.C, dx.begin() + (n * kT + steps[k]) * c.C);
    }
    check_close(ours.dx, dx, "dx (zeros at masked steps)");
    check_close(ours.dkernel, dkernel, "dkernel");
    check_close(ours.drecurrent, drecurrent, "drecurrent_kernel");
    check_close(ours.dbias, dbias, "dbias");

    // Every step, masked ones included, against Keras's masked loop written out.
    const ref::RnnResult k = ref::rnn_forward_masked(c.config(kN, kT, c.return_sequences), x, w.kernel, w.recurrent,
                                                     w.bias, kMask, c.zero_output_for_mask);
    check_close(ours.y, k.y, "every output step vs Keras's masked loop");
}

std::vector<Case> cell_variants() {
    return {
        {.cell = ref::Cell::simple_rnn},                                           // small-RNN kernel
        {.cell = ref::Cell::simple_rnn, .activation = "selu"},                     // fallback loop
        {.cell = ref::Cell::lstm},                                                 // oneDNN lstm
        {.cell = ref::Cell::lstm, .recurrent_activation = "hard_sigmoid"},         // fallback loop
        {.cell = ref::Cell::gru},                                                  // oneDNN lbr_gru
        {.cell = ref::Cell::gru, .reset_after = false},                            // oneDNN gru
        {.cell = ref::Cell::gru, .activation = "relu", .reset_after = false},      // fallback loop
        {.cell = ref::Cell::gru, .recurrent_activation = "hard_sigmoid"},          // fallback, reset_after
    };
}

}  // namespace

TEST_CASE("masked_steps: the packing and output tables, by hand") {
    // Sample 0: real steps 1 and 3 of 4 (holes); sample 1: fully masked.
    const Tensor mask = floats({0, 1, 0, 1, 0, 0, 0, 0}, {2, 4});
    const auto m = layers::masked_steps(mask, false, false);
    CHECK(m.lengths == std::vector<int32_t>{2, 0});
    CHECK(m.pack_idx == std::vector<int32_t>{1, 3, -1, -1, -1, -1, -1, -1});
    CHECK(m.out_idx == std::vector<int32_t>{-1, 0, 0, 1, -1, -1, -1, -1});
    CHECK(m.last_out_idx() == std::vector<int32_t>{1, -1});
    CHECK_FALSE(m.all_real);
    // go_backwards: processing order 3, 2, 1, 0.
    const auto b = layers::masked_steps(mask, true, false);
    CHECK(b.pack_idx == std::vector<int32_t>{3, 1, -1, -1, -1, -1, -1, -1});
    CHECK(b.out_idx == std::vector<int32_t>{0, 0, 1, 1, -1, -1, -1, -1});
    // zero_output_for_mask: masked steps show zeros.
    const auto z = layers::masked_steps(mask, false, true);
    CHECK(z.out_idx == std::vector<int32_t>{-1, 0, -1, 1, -1, -1, -1, -1});
    CHECK(layers::masked_steps(floats({1, 1, 1, 1}, {2, 2}), true, true).all_real);
}

TEST_CASE("masked = unpadded for every cell, both paddings, holes, fused and fallback, forward and gradients") {
    for (Case c : cell_variants())
        for (bool go_backwards : {false, true})
            for (bool return_sequences : {false, true}) {
                c.go_backwards = go_backwards;
                c.return_sequences = return_sequences;
                check_masked_equals_unpadded(c);
            }
}

TEST_CASE("zero_output_for_mask: zeros at masked steps, and Keras's zero last output") {
    for (Case c : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::gru, .activation = "relu"}})
        for (bool go_backwards : {false, true})
            for (bool return_sequences : {false, true}) {
                c.go_backwards = go_backwards;
                c.return_sequences = return_sequences;
                c.zero_output_for_mask = true;
                check_masked_equals_unpadded(c);
            }
}

TEST_CASE("gradients through carried-over outputs match finite differences of Keras's masked loop") {
    // A loss over EVERY output step: masked steps pass their gradient to the last real step.
    for (Case c : {Case{.cell = ref::Cell::lstm, .go_backwards = true},
                   Case{.cell = ref::Cell::gru, .recurrent_activation = "hard_sigmoid"},
                   Case{.cell = ref::Cell::simple_rnn, .zero_output_for_mask = true}}) {
        c.return_sequences = true;
        INFO(c.str());
        Weights w = random_weights(c, 21);
        ref::Vec x = ref::random_vec(static_cast<size_t>(kN * kT * c.C), 23);
        const ref::Vec dy = ref::random_vec(static_cast<size_t>(kN * kT * c.H), 25);
        const Run ours = run_layer(c, w, x, dy);
        auto loss = [&] {
            return ref::dot(ref::rnn_forward_masked(c.config(kN, kT, true), x, w.kernel, w.recurrent, w.bias, kMask,
                                                    c.zero_output_for_mask)
                                .y,
                            dy);
        };
        check_close(ours.dx, ref::numeric_grad(loss, x), "dx", 1e-4, 1e-3);
        check_close(ours.drecurrent, ref::numeric_grad(loss, w.recurrent), "drecurrent_kernel", 1e-4, 1e-3);
        check_close(ours.dbias, ref::numeric_grad(loss, w.bias), "dbias", 1e-4, 1e-3);
    }
}

TEST_CASE("a mask with every step real gives the unmasked result") {
    const Case c{.cell = ref::Cell::gru, .return_sequences = true};
    const Weights w = random_weights(c, 31);
    const ref::Vec x = ref::random_vec(static_cast<size_t>(2 * 3 * c.C), 33);
    auto layer = c.make();
    set_weights(*layer, c, w, 3);
    CallContext plain, masked;
    masked.mask = floats({1, 1, 1, 1, 1, 1}, {2, 3});
    CHECK(values_of(layer->call(floats(x, {2, 3, c.C}), masked)) ==
          values_of(layer->call(floats(x, {2, 3, c.C}), plain)));
}

TEST_CASE("Bidirectional with a mask: concat / sum / mul / ave against Keras's masked loop both ways") {
    for (const char* mode : {"concat", "sum", "mul", "ave"})
        for (bool return_sequences : {false, true}) {
            const std::string merge = mode;
            INFO(merge << " return_sequences=" << return_sequences);
            const Case fc{.cell = ref::Cell::lstm, .return_sequences = return_sequences};
            Case bc = fc;
            bc.go_backwards = true;
            auto bi = std::make_shared<layers::Bidirectional>(fc.make(), layers::BidirectionalOptions{.merge_mode = merge});
            bi->build_for({-1, kT, fc.C});
            const Weights wf = random_weights(fc, 41), wb = random_weights(fc, 51);
            const auto& ws = bi->weights();   // forward's three, then backward's
            for (int i = 0; i < 6; ++i) {
                const Weights& w = i < 3 ? wf : wb;
                const ref::Vec& v = i % 3 == 0 ? w.kernel : i % 3 == 1 ? w.recurrent : w.bias;
                ws[i]->value.copy_from(floats(v, ws[i]->value.shape()));
            }
            ref::Vec x = ref::random_vec(static_cast<size_t>(kN * kT * fc.C), 43);
            const int H = fc.H, width = merge == "concat" ? 2 * H : H, steps = return_sequences ? kT : 1;
            // Keras forces zero_output_for_mask = return_sequences on both halves.
            auto expected = [&] {
                const auto f = ref::rnn_forward_masked(fc.config(kN, kT, return_sequences), x, wf.kernel, wf.recurrent,
                                                       wf.bias, kMask, return_sequences);
                const auto b = ref::rnn_forward_masked(bc.config(kN, kT, return_sequences), x, wb.kernel, wb.recurrent,
                                                       wb.bias, kMask, return_sequences);
                ref::Vec y(static_cast<size_t>(kN * steps * width));
                for (int n = 0; n < kN; ++n)
                    for (int s = 0; s < steps; ++s)
                        for (int j = 0; j < H; ++j) {
                            const double yf = f.y[(n * steps + s) * H + j];
                            // The backward half's outputs flipped back to input time.
                            const double yb = b.y[(n * steps + (return_sequences ? kT - 1 - s : s)) * H + j];
                            double* out = &y[(n * steps + s) * width];
                            if (merge == "concat") out[j] = yf, out[H + j] = yb;
                            else if (merge == "sum") out[j] = yf + yb;
                            else if (merge == "mul") out[j] = yf * yb;
                            else out[j] = (yf + yb) / 2;
                        }
                return y;
            };
            CallContext ctx;
            ctx.training = true;
            ctx.mask = floats(as_doubles(kMask), {kN, kT});
            const Tensor y = bi->call(floats(x, {kN, kT, fc.C}), ctx);
            check_close(values_of(y), expected(), "outputs");
            CHECK(bi->compute_mask(Tensor(), ctx.mask).defined() == return_sequences);
            const ref::Vec dy = ref::random_vec(values_of(y).size(), 45);
            const Tensor dx = bi->backward(floats(dy, y.shape()), ctx);
            auto loss = [&] { return ref::dot(expected(), dy); };
            check_close(values_of(dx), ref::numeric_grad(loss, x), "dx", 1e-4, 1e-3);
        }
}

TEST_CASE("stateful + mask: the kept states are those of each sample's last real step") {
    // LSTM needs c at the last real step: oneDNN's primitive does not expose it, its backend replays
    // the forward with the step loop when c is read (the layer does not know).
    for (const Case& c : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::gru}, Case{.cell = ref::Cell::lstm,
                                                                                           .go_backwards = true}}) {
        INFO(c.str());
        auto layer = c.make(true);
        const Weights w = random_weights(c, 61);
        set_weights(*layer, c, w, kT);
        const ref::Vec x1 = ref::random_vec(static_cast<size_t>(kN * kT * c.C), 63);
        const ref::Vec x2 = ref::random_vec(x1.size(), 65);
        CallContext a, b;
        a.mask = b.mask = floats(as_doubles(kMask), {kN, kT});
        layer->call(floats(x1, {kN, kT, c.C}), a);
        const auto e1 = ref::rnn_forward_masked(c.config(kN, kT, false), x1, w.kernel, w.recurrent, w.bias, kMask, false);
        const auto states = layer->states();
        check_close(values_of(states.at(0)), e1.h, "h after chunk 1");
        if (c.cell == ref::Cell::lstm) check_close(values_of(states.at(1)), e1.c, "c after chunk 1");
        const Tensor y2 = layer->call(floats(x2, {kN, kT, c.C}), b);
        const auto e2 =
            ref::rnn_forward_masked(c.config(kN, kT, false), x2, w.kernel, w.recurrent, w.bias, kMask, false, e1.h, e1.c);
        check_close(values_of(layer->states().at(0)), e2.h, "h after chunk 2");
        check_close(values_of(y2), e2.y, "output of chunk 2");
    }
    // Lengths never change the path: the stateful LSTM above ran the fused paths, not the step loop.
    Case lstm{.cell = ref::Cell::lstm};
    const be::RnnPath path = be::get(Device::cpu()).rnn_path(lstm.make(true)->spec());
    CHECK(path.fused);
    CHECK(path.description == "GEMM-step lstm (oneDNN matmul) in training; oneDNN lstm in inference");
}

TEST_CASE("RNNs pass the mask on with return_sequences only") {
    layers::GRU seq(2, {.return_sequences = true}), last(2);
    const Tensor mask = floats({1, 0}, {1, 2});
    CHECK(values_of(seq.compute_mask(Tensor(), mask)) == std::vector<double>{1, 0});
    CHECK_FALSE(last.compute_mask(Tensor(), mask).defined());
}

TEST_CASE("Embedding(mask_zero) -> masked RNNs match real Keras 3 at every step, pre- and post-padded and holed") {
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/masking_keras.json");
    REQUIRE(in.good());
    const auto fixture = nlohmann::json::parse(in);
    namespace L = layers;
    for (const auto& c : fixture["cases"]) {
        const std::string name = c["name"];
        INFO(name << " (Keras " << fixture["keras_version"].get<std::string>() << ")");
        LayerPtr layer;
        if (name == "LSTM_seq") layer = std::make_shared<L::LSTM>(4, L::LSTMOptions{.return_sequences = true});
        else if (name == "LSTM_last") layer = std::make_shared<L::LSTM>(4);
        else if (name == "GRU_seq") layer = std::make_shared<L::GRU>(4, L::GRUOptions{.return_sequences = true});
        else if (name == "GRU_last_backwards") layer = std::make_shared<L::GRU>(4, L::GRUOptions{.go_backwards = true});
        else if (name == "SimpleRNN_seq")
            layer = std::make_shared<L::SimpleRNN>(4, L::SimpleRNNOptions{.return_sequences = true});
        else if (name == "SimpleRNN_last") layer = std::make_shared<L::SimpleRNN>(4);
        else if (name == "Bidirectional_LSTM_concat_seq")
            layer = std::make_shared<L::Bidirectional>(L::LSTM(4, {.return_sequences = true}));
        else if (name == "Bidirectional_LSTM_sum_seq")
            layer = std::make_shared<L::Bidirectional>(L::LSTM(4, {.return_sequences = true}),
                                                       L::BidirectionalOptions{.merge_mode = "sum"});
        else if (name == "Bidirectional_GRU_concat_last") layer = std::make_shared<L::Bidirectional>(L::GRU(4));
        REQUIRE(layer);
        Sequential model;
        model.add(L::Input({7}, {.dtype = DType::int32}));
        model.add(std::make_shared<L::Embedding>(9, 3, L::EmbeddingOptions{.mask_zero = true}));
        model.add(layer);
        const auto& ws = model.weights();
        REQUIRE(ws.size() == c["weights"].size());
        for (size_t i = 0; i < ws.size(); ++i)
            ws[i]->value.copy_from(floats(c["weights"][i]["values"].get<std::vector<double>>(), ws[i]->value.shape()));
        for (const char* padding : {"pre", "post", "holes"}) {
            INFO(padding);
            const auto& io = c["inputs"][padding];
            const auto ids = io["ids"].get<std::vector<double>>();
            const Tensor x = floats(ids, {static_cast<int64_t>(ids.size() / 7), 7}).astype(DType::int32);
            const Tensor y = model.predict(x, {.verbose = 0});
            check_close(values_of(y), io["y"].get<std::vector<double>>(), "every step vs Keras", 1e-5, 1e-4);
        }
    }
}

TEST_CASE("masked RNN errors name what is wrong") {
    layers::LSTM lstm(2, {.name = "masked_lstm"});
    CallContext ctx;
    ctx.mask = floats({1, 0, 1}, {1, 3});
    CHECK(message_of<ValueError>([&] { lstm.call(Tensor::zeros({2, 3, 4}), ctx); }) ==
          "Layer \"masked_lstm\": the mask has shape (1, 3), expected (2, 3) (batch, timesteps) to match the input of "
          "shape (2, 3, 4)");
    auto& cpu = be::get(Device::cpu());
    const be::RnnWeights w{Tensor::zeros({4, 2}), Tensor::zeros({2, 2}), Tensor::zeros({2})};
    const be::RnnSpec spec{.cell = be::RnnCell::simple_rnn, .units = 2, .layer_name = "r"};
    CHECK(message_of<ValueError>([&] { cpu.rnn_forward(spec, Tensor::zeros({2, 3, 4}), w, {}, {}, false, {}, {3, 4}); }) ==
          "Layer \"r\": sequence length 4 of sample 1 is outside [0, 3]");
    CHECK(message_of<ValueError>([&] { cpu.rnn_forward(spec, Tensor::zeros({2, 3, 4}), w, {}, {}, false, {}, {3}); }) ==
          "Layer \"r\": 1 sequence lengths given for a batch of 2");
    CHECK(message_of<ValueError>([&] { cpu.gather_steps(Tensor::zeros({1, 3, 2}), {0, 3}, 2); }) ==
          "gather_steps: index 3 at position 1 is outside [-1, 3)");
    CHECK(message_of<ValueError>([&] { cpu.scatter_add_steps(Tensor::zeros({1, 3, 2}), {0, 1}, 2); }) ==
          "scatter_add_steps: 2 indices given, expected 3");
}

TEST_CASE("gather_steps / scatter_add_steps on the CPU: rows moved, -1 zeros, scatter-add the adjoint") {
    auto& cpu = be::get(Device::cpu());
    const Tensor x = floats({1, 2, 3, 4, 5, 6}, {1, 3, 2});
    CHECK(values_of(cpu.gather_steps(x, {2, -1, 0, 0}, 4)) == std::vector<double>{5, 6, 0, 0, 1, 2, 1, 2});
    CHECK(values_of(cpu.scatter_add_steps(x, {1, -1, 1}, 2)) == std::vector<double>{0, 0, 6, 8});
}

TEST_CASE("backend lengths: states at len - 1, dh / dc injected there, length 0 passes them to h0 / c0") {
    // The contract return_state / initial_state callers rely on, on the primitive and the step loop.
    auto& cpu = be::get(Device::cpu());
    const std::vector<int32_t> lengths = {3, 1, 0, 5};
    const int N = 4, T = 5;
    for (Case c : {Case{.cell = ref::Cell::lstm}, Case{.cell = ref::Cell::lstm, .recurrent_activation = "hard_sigmoid"},
                   Case{.cell = ref::Cell::gru}, Case{.cell = ref::Cell::simple_rnn, .activation = "selu"}})
        for (bool go_backwards : {false, true}) {
            c.go_backwards = go_backwards;
            INFO(c.str());
            const bool lstm = c.cell == ref::Cell::lstm;
            be::RnnSpec spec = c.make()->spec();
            // Plain LSTM: the primitive, whose c at len - 1 and dc there come from the backend's
            // step-loop replay; hard_sigmoid: the step loop itself.
            const Weights w = random_weights(c, 71);
            const int GH = c.gates() * c.H;
            const be::RnnWeights bw{floats(w.kernel, {c.C, GH}), floats(w.recurrent, {c.H, GH}),
                                    floats(w.bias, c.cell == ref::Cell::gru ? Shape{2, GH} : Shape{GH})};
            const ref::Vec x = ref::random_vec(static_cast<size_t>(N * T * c.C), 73);
            const ref::Vec h0 = ref::random_vec(static_cast<size_t>(N * c.H), 75), c0 = ref::random_vec(h0.size(), 77);
            const ref::Vec dseq = ref::random_vec(static_cast<size_t>(N * T * c.H), 79);
            const ref::Vec dh = ref::random_vec(h0.size(), 81), dc = ref::random_vec(h0.size(), 83);
            auto fwd = cpu.rnn_forward(spec, floats(x, {N, T, c.C}), bw, floats(h0, {N, c.H}),
                                       lstm ? floats(c0, {N, c.H}) : Tensor(), true, {}, lengths);
            const auto g = cpu.rnn_backward(spec, bw, fwd, floats(dseq, {N, T, c.H}), floats(dh, {N, c.H}),
                                            lstm ? floats(dc, {N, c.H}) : Tensor());
            const ref::Vec h = values_of(fwd.h), dx = values_of(g.dx), dh0 = values_of(g.dh0);
            ref::Vec dk(w.kernel.size(), 0.0);
            for (int n = 0; n < N; ++n) {
                const int L = lengths[n], H = c.H;
                auto row = [&](const ref::Vec& v, int i, int width) {
                    return ref::Vec(v.begin() + i * width, v.begin() + (i + 1) * width);
                };
                if (L == 0) {
                    check_close(row(h, n, H), row(h0, n, H), "h of an empty sample = h0");
                    check_close(row(dh0, n, H), row(dh, n, H), "dh0 of an empty sample = dh");
                    if (lstm) check_close(row(values_of(g.dc0), n, H), row(dc, n, H), "dc0 of an empty sample = dc");
                    check_close(row(dx, n, T * c.C), ref::Vec(static_cast<size_t>(T * c.C), 0.0), "dx of an empty sample");
                    continue;
                }
                const ref::RnnConfig cfg = c.config(1, L, true);
                const ref::Vec xn(x.begin() + n * T * c.C, x.begin() + (n * T + L) * c.C);
                const ref::Vec dyn(dseq.begin() + n * T * H, dseq.begin() + (n * T + L) * H);
                const ref::Vec c0n = lstm ? row(c0, n, H) : ref::Vec{};
                const auto e = ref::rnn_forward(cfg, xn, w.kernel, w.recurrent, w.bias, row(h0, n, H), c0n);
                check_close(row(h, n, H), e.h, fmt::format("h of sample {}", n));
                if (lstm) check_close(row(values_of(fwd.final_c()), n, H), e.c, fmt::format("c of sample {}", n));
                const auto eg = ref::rnn_backward(cfg, xn, w.kernel, w.recurrent, w.bias, row(h0, n, H), c0n, dyn,
                                                  row(dh, n, H), lstm ? row(dc, n, H) : ref::Vec{});
                ref::Vec dxn(static_cast<size_t>(T * c.C), 0.0);
                std::copy(eg.dx.begin(), eg.dx.end(), dxn.begin());
                check_close(row(dx, n, T * c.C), dxn, fmt::format("dx of sample {} (zeros past its length)", n));
                check_close(row(dh0, n, H), eg.dh0, fmt::format("dh0 of sample {}", n));
                for (size_t i = 0; i < dk.size(); ++i) dk[i] += eg.dkernel[i];
            }
            check_close(values_of(g.dweights.kernel), dk, "dkernel");
        }
}

TEST_CASE("zero_output_for_mask is in get_config and comes back from a saved model file") {
    Sequential model;
    model.add(layers::Input({3, 2}));
    model.add(layers::Masking());
    model.add(layers::GRU(2, {.return_sequences = true, .zero_output_for_mask = true}));
    CHECK(model.layers().back()->get_config()["zero_output_for_mask"] == true);
    const std::string path = (std::filesystem::temp_directory_path() / "kerascpp_zero_output_for_mask.h5").string();
    model.save(path);
    auto loaded = models::load_model(path, {.compile = false});
    std::filesystem::remove(path);
    CHECK(loaded->layers().back()->get_config()["zero_output_for_mask"] == true);
    // The loaded layer acts on it: the masked middle step outputs zeros.
    const Tensor x = floats({1, 2, 0, 0, 3, 4}, {1, 3, 2});
    const auto y = values_of(loaded->predict(x, {.verbose = 0}));
    CHECK(y[2] == 0.0);
    CHECK(y[3] == 0.0);
    CHECK(y[0] != 0.0);
    CHECK(values_of(model.predict(x, {.verbose = 0})) == y);
}

TEST_CASE("input dropout still applies with a mask (one draw per sample, before packing)") {
    Case c{.cell = ref::Cell::gru, .return_sequences = true};
    auto layer = std::make_shared<layers::GRU>(c.H, layers::GRUOptions{.dropout = 0.4f, .return_sequences = true});
    Weights w = random_weights(c, 91);
    set_weights(*layer, c, w, kT);
    ref::Vec x = ref::random_vec(static_cast<size_t>(kN * kT * c.C), 93);
    CallContext ctx;
    ctx.training = true;
    ctx.mask = floats(as_doubles(kMask), {kN, kT});
    const Tensor y = layer->call(floats(x, {kN, kT, c.C}), ctx);
    const ref::Vec drop = values_of(ctx.saved.at(0));   // RNNBase keeps its dropout mask there
    REQUIRE(drop.size() == x.size());
    CHECK(std::count(drop.begin(), drop.end(), 0.0) > 0);
    auto dropped = [&] {
        ref::Vec xd = x;
        for (size_t i = 0; i < xd.size(); ++i) xd[i] *= drop[i];
        return xd;
    };
    const auto e = ref::rnn_forward_masked(c.config(kN, kT, true), dropped(), w.kernel, w.recurrent, w.bias, kMask, false);
    check_close(values_of(y), e.y, "outputs on the dropped-out input");
    const ref::Vec dy = ref::random_vec(e.y.size(), 95);
    const Tensor dx = layer->backward(floats(dy, y.shape()), ctx);
    auto loss = [&] {
        return ref::dot(
            ref::rnn_forward_masked(c.config(kN, kT, true), dropped(), w.kernel, w.recurrent, w.bias, kMask, false).y,
            dy);
    };
    check_close(values_of(dx), ref::numeric_grad(loss, x), "dx through dropout and the mask", 1e-4, 1e-3);
}

// return_state and initial_state with a mask (the layer's call_outputs / backward_outputs): the
// returned states are those after each sample's last real step (the initial states for a fully
// masked row), and the gradients of the returned states reach the weights, the real steps and the
// initial states exactly as for each sequence run alone from its own initial state. For the fused
// LSTM this is the path where oneDNN cannot give c at the last real step (its backend's replay).
TEST_CASE("masked return_state with initial_state: states at the last real step, gradients into h0 / c0") {
    for (Case c : cell_variants())
        for (bool go_backwards : {false, true}) {
            c.go_backwards = go_backwards;
            INFO(c.str());
            const bool lstm = c.cell == ref::Cell::lstm;
            const Weights w = random_weights(c, 21);
            const ref::Vec x = ref::random_vec(static_cast<size_t>(kN * kT * c.C), 23);
            const ref::Vec h0 = ref::random_vec(static_cast<size_t>(kN * c.H), 25);
            const ref::Vec c0 = ref::random_vec(static_cast<size_t>(kN * c.H), 27);
            const ref::Vec dh = ref::random_vec(h0.size(), 29), dc = ref::random_vec(h0.size(), 31);

            std::shared_ptr<layers::RNNBase> layer;
            switch (c.cell) {
                case ref::Cell::simple_rnn:
                    layer = std::make_shared<layers::SimpleRNN>(
                        c.H, layers::SimpleRNNOptions{.activation = c.activation, .return_state = true,
                                                      .go_backwards = go_backwards});
                    break;
                case ref::Cell::lstm:
                    layer = std::make_shared<layers::LSTM>(
                        c.H, layers::LSTMOptions{.activation = c.activation, .recurrent_activation = c.recurrent_activation,
                                                 .return_state = true, .go_backwards = go_backwards});
                    break;
                case ref::Cell::gru:
                    layer = std::make_shared<layers::GRU>(
                        c.H, layers::GRUOptions{.activation = c.activation, .recurrent_activation = c.recurrent_activation,
                                                .return_state = true, .go_backwards = go_backwards,
                                                .reset_after = c.reset_after});
                    break;
            }
            set_weights(*layer, c, w, kT);
            CallContext ctx;
            ctx.training = true;
            ctx.mask = floats(as_doubles(kMask), {kN, kT});
            std::vector<Tensor> init = {floats(h0, {kN, c.H})};
            if (lstm) init.push_back(floats(c0, {kN, c.H}));
            const std::vector<Tensor> outs = layer->call_outputs(floats(x, {kN, kT, c.C}), init, ctx);
            REQUIRE(outs.size() == (lstm ? 3u : 2u));
            std::vector<Tensor> dys = {Tensor(), floats(dh, {kN, c.H})};
            if (lstm) dys.push_back(floats(dc, {kN, c.H}));
            const std::vector<Tensor> grads = layer->backward_outputs(dys, ctx);
            REQUIRE(grads.size() == (lstm ? 3u : 2u));
            const ref::Vec h = values_of(outs[1]), cs = lstm ? values_of(outs[2]) : ref::Vec{};
            const ref::Vec dx = values_of(grads[0]), dh0 = values_of(grads[1]);
            const ref::Vec dc0 = lstm ? values_of(grads[2]) : ref::Vec{};

            ref::Vec e_dkernel(w.kernel.size(), 0.0), e_drecurrent(w.recurrent.size(), 0.0), e_dbias(w.bias.size(), 0.0);
            ref::Vec e_dx(x.size(), 0.0);
            for (int n = 0; n < kN; ++n) {
                auto row = [&](const ref::Vec& v) { return ref::Vec(v.begin() + n * c.H, v.begin() + (n + 1) * c.H); };
                const std::vector<int> steps = real_steps(n);
                const int L = static_cast<int>(steps.size());
                const std::string sample = fmt::format("sample {}", n);
                if (L == 0) {   // nothing runs: the states pass through, and so do their gradients
                    check_close(row(h), row(h0), "h of the fully masked " + sample);
                    check_close(row(dh0), row(dh), "dh0 of the fully masked " + sample);
                    if (lstm) check_close(row(cs), row(c0), "c of the fully masked " + sample);
                    if (lstm) check_close(row(dc0), row(dc), "dc0 of the fully masked " + sample);
                    continue;
                }
                ref::Vec xn;
                for (int t : steps) xn.insert(xn.end(), x.begin() + (n * kT + t) * c.C, x.begin() + (n * kT + t + 1) * c.C);
                const ref::RnnConfig cfg = c.config(1, L, false);
                const ref::Vec c0n = lstm ? row(c0) : ref::Vec{};
                const ref::RnnResult e = ref::rnn_forward(cfg, xn, w.kernel, w.recurrent, w.bias, row(h0), c0n);
                check_close(row(h), e.h, "returned h of " + sample);
                if (lstm) check_close(row(cs), e.c, "returned c of " + sample);
                const ref::RnnGrads g = ref::rnn_backward(cfg, xn, w.kernel, w.recurrent, w.bias, row(h0), c0n,
                                                          ref::Vec(static_cast<size_t>(c.H), 0.0), row(dh),
                                                          lstm ? row(dc) : ref::Vec{});
                check_close(row(dh0), g.dh0, "dh0 of " + sample);
                if (lstm) check_close(row(dc0), g.dc0, "dc0 of " + sample);
                for (size_t i = 0; i < e_dkernel.size(); ++i) e_dkernel[i] += g.dkernel[i];
                for (size_t i = 0; i < e_drecurrent.size(); ++i) e_drecurrent[i] += g.drecurrent[i];
                for (size_t i = 0; i < e_dbias.size(); ++i) e_dbias[i] += g.dbias[i];
                for (int k = 0; k < L; ++k)
                    std::copy(g.dx.begin() + k * c.C, g.dx.begin() + (k + 1) * c.C, e_dx.begin() + (n * kT + steps[k]) * c.C);
            }
            const auto& ws = layer->weights();
            check_close(dx, e_dx, "dx (zeros at masked steps)");
            check_close(values_of(ws[0]->grad), e_dkernel, "dkernel");
            check_close(values_of(ws[1]->grad), e_drecurrent, "drecurrent_kernel");
            check_close(values_of(ws[2]->grad), e_dbias, "dbias");
        }
}
