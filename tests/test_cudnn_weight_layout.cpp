// The Keras -> cuDNN RNN weight mapping (framework/backend/cuda/rnn_weight_layout.hpp), checked on
// the CPU, no GPU needed:
// - the linLayerID -> Keras gate table against the orders cuDNN documents (cudnnGetRNNWeightParams);
// - an emulator of cuDNN's documented cell equations (cudnnRNNMode_t), reading the packed weight
//   space by linLayerID, reproduces Keras's layers (the double-precision reference) exactly;
// - unpacking the packed weights gives the Keras weights back (so gradients map back the same way);
// - specs cuDNN cannot run are named with a reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cuda/rnn_index.hpp"
#include "backend/cuda/rnn_weight_layout.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

namespace be = keras::backend;
namespace lay = keras::backend::cudnn_layout;
using keras::Activation;
using test_helpers::message_of;

namespace {

be::RnnSpec spec_for(be::RnnCell cell, int64_t H, bool use_bias, bool reset_after = true) {
    return be::RnnSpec{.cell = cell, .units = H, .use_bias = use_bias, .reset_after = reset_after,
                       .layer_name = "rnn_x"};
}

// Offsets cuDNN might report: blocks scattered in a fixed shuffled order with gaps, so a plan
// that ignored the offsets (or assumed contiguity) would be caught.
std::vector<lay::CudnnOffsets> scattered_offsets(int G, int64_t C, int64_t H, int64_t* total) {
    std::vector<int64_t> sizes;   // matrices 0..2G-1 then biases 0..2G-1
    for (int id = 0; id < 2 * G; ++id) sizes.push_back(H * (id < G ? C : H));
    for (int id = 0; id < 2 * G; ++id) sizes.push_back(H);
    std::vector<size_t> order(sizes.size());
    std::iota(order.begin(), order.end(), 0);
    std::reverse(order.begin(), order.end());
    std::rotate(order.begin(), order.begin() + 3, order.end());
    std::vector<int64_t> start(sizes.size());
    int64_t at = 5;   // a gap before the first block too
    for (size_t k : order) {
        start[k] = at;
        at += sizes[k] + 2;
    }
    *total = at;
    std::vector<lay::CudnnOffsets> offsets(2 * G);
    for (int id = 0; id < 2 * G; ++id) offsets[id] = {.matrix = start[id], .bias = start[2 * G + id]};
    return offsets;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// cuDNN's cell equations (cudnnRNNMode_t documentation), written only in cuDNN's terms: the
// matrix of linLayerID `id` is W[id] (H x in, row-major) and its bias b[id].
struct CudnnEmulator {
    be::RnnCell cell;
    int64_t C, H;
    std::vector<double> ws;                       // the packed weight space
    std::vector<lay::CudnnOffsets> offsets;

    // W[id] @ v + b[id], for one unit j
    double lin(int id, const double* v, int64_t in, int64_t j) const {
        double s = ws[offsets[id].bias + j];
        for (int64_t c = 0; c < in; ++c) s += ws[offsets[id].matrix + j * in + c] * v[c];
        return s;
    }

    // One step for one sample: x (C), h (H), c (H, LSTM) updated in place.
    void step(const double* x, std::vector<double>& h, std::vector<double>& c) const {
        std::vector<double> hn(H), cn(c);
        for (int64_t j = 0; j < H; ++j) {
            if (cell == be::RnnCell::simple_rnn) {
                hn[j] = std::tanh(lin(0, x, C, j) + lin(1, h.data(), H, j));
            } else if (cell == be::RnnCell::lstm) {   // 0-3 W(i, f, c', o), 4-7 R(...)
                const double i = sigmoid(lin(0, x, C, j) + lin(4, h.data(), H, j));
                const double f = sigmoid(lin(1, x, C, j) + lin(5, h.data(), H, j));
                const double g = std::tanh(lin(2, x, C, j) + lin(6, h.data(), H, j));
                const double o = sigmoid(lin(3, x, C, j) + lin(7, h.data(), H, j));
                cn[j] = f * c[j] + i * g;
                hn[j] = o * std::tanh(cn[j]);
            } else {   // GRU: 0/3 reset, 1/4 update, 2/5 new memory; h' = tanh(Wx + bW + r*(Rh + bR))
                const double r = sigmoid(lin(0, x, C, j) + lin(3, h.data(), H, j));
                const double u = sigmoid(lin(1, x, C, j) + lin(4, h.data(), H, j));
                const double n = std::tanh(lin(2, x, C, j) + r * lin(5, h.data(), H, j));
                hn[j] = (1 - u) * n + u * h[j];
            }
        }
        h = hn;
        c = cn;
    }

    // Final hidden states (N x H) over x (N, T, C).
    std::vector<double> run(const std::vector<double>& x, int64_t N, int64_t T) const {
        std::vector<double> out;
        for (int64_t n = 0; n < N; ++n) {
            std::vector<double> h(H, 0.0), c(H, 0.0);
            for (int64_t t = 0; t < T; ++t) step(&x[(n * T + t) * C], h, c);
            out.insert(out.end(), h.begin(), h.end());
        }
        return out;
    }
};

std::vector<float> floats_of(const ref::Vec& v) { return std::vector<float>(v.begin(), v.end()); }
ref::Vec doubles_of(const std::vector<float>& v) { return ref::Vec(v.begin(), v.end()); }

ref::Cell ref_cell(be::RnnCell c) {
    return c == be::RnnCell::simple_rnn ? ref::Cell::simple_rnn : c == be::RnnCell::lstm ? ref::Cell::lstm
                                                                                          : ref::Cell::gru;
}

void check_emulated_cudnn_matches_keras(be::RnnCell cell, bool use_bias) {
    const int64_t N = 2, T = 4, C = 3, H = 5;
    const int G = lay::gate_count(cell);
    const ref::RnnConfig cfg{.cell = ref_cell(cell), .N = N, .T = T, .C = C, .H = H, .use_bias = use_bias};
    INFO("cell " << G << " gates, use_bias=" << use_bias);
    // Values rounded to float first, so Keras's reference and the emulator see identical weights.
    const auto kernel = floats_of(ref::random_vec(C * G * H, 21, -0.7, 0.7));
    const auto recurrent = floats_of(ref::random_vec(H * G * H, 22, -0.7, 0.7));
    const auto bias = floats_of(ref::random_vec(ref::bias_size(cfg), 23, -0.6, 0.6));
    const auto x = doubles_of(floats_of(ref::random_vec(N * T * C, 24)));

    int64_t total = 0;
    const auto offsets = scattered_offsets(G, C, H, &total);
    const auto plan = lay::pack_plan(spec_for(cell, H, use_bias), C, offsets);
    CHECK(lay::packed_size(plan) == 2 * G * H + G * H * (C + H));
    std::vector<float> ws(static_cast<size_t>(total), 99.0f);   // 99: any unwritten read shows
    lay::pack_on_host(plan, kernel.data(), recurrent.data(), use_bias ? bias.data() : nullptr, ws.data());

    const CudnnEmulator emu{cell, C, H, doubles_of(ws), offsets};
    const auto keras = ref::rnn_forward(cfg, x, doubles_of(kernel), doubles_of(recurrent), doubles_of(bias));
    CHECK(ref::max_abs_diff(emu.run(x, N, T), keras.h) < 1e-12);
}

}  // namespace

TEST_CASE("cuDNN linLayerIDs map to the documented Keras gates") {
    // From cuDNN's cudnnGetRNNWeightParams documentation, and Keras's gate orders
    // (LSTM i, f, c, o; GRU z, r, h).
    struct Row {
        be::RnnCell cell;
        int id, gate;
        bool recurrent;
    };
    const Row rows[] = {
        {be::RnnCell::simple_rnn, 0, 0, false}, {be::RnnCell::simple_rnn, 1, 0, true},
        {be::RnnCell::lstm, 0, 0, false}, {be::RnnCell::lstm, 1, 1, false}, {be::RnnCell::lstm, 2, 2, false},
        {be::RnnCell::lstm, 3, 3, false}, {be::RnnCell::lstm, 4, 0, true}, {be::RnnCell::lstm, 5, 1, true},
        {be::RnnCell::lstm, 6, 2, true}, {be::RnnCell::lstm, 7, 3, true},
        // GRU: cuDNN r (0/3) = Keras gate 1, cuDNN z (1/4) = Keras gate 0, h (2/5) = Keras gate 2.
        {be::RnnCell::gru, 0, 1, false}, {be::RnnCell::gru, 1, 0, false}, {be::RnnCell::gru, 2, 2, false},
        {be::RnnCell::gru, 3, 1, true}, {be::RnnCell::gru, 4, 0, true}, {be::RnnCell::gru, 5, 2, true},
    };
    for (const Row& r : rows) {
        INFO("linLayerID " << r.id);
        const auto k = lay::keras_gate_of(r.cell, r.id);
        CHECK(k.gate == r.gate);
        CHECK(k.recurrent == r.recurrent);
    }
    CHECK(message_of([] { lay::keras_gate_of(be::RnnCell::gru, 6); }) ==
          "cuDNN linLayerID 6 out of range [0, 6) for this cell");
}

TEST_CASE("packed weights run through cuDNN's equations give Keras's layers") {
    for (auto cell : {be::RnnCell::simple_rnn, be::RnnCell::lstm, be::RnnCell::gru})
        for (bool use_bias : {true, false}) check_emulated_cudnn_matches_keras(cell, use_bias);
}

TEST_CASE("matrix blocks are transposed gate slices; single biases use the W slot, zeros the R slot") {
    const int64_t C = 2, H = 3;
    const auto spec = spec_for(be::RnnCell::lstm, H, true);
    int64_t total = 0;
    const auto offsets = scattered_offsets(4, C, H, &total);
    const auto plan = lay::pack_plan(spec, C, offsets);
    std::vector<float> kernel(C * 4 * H), recurrent(H * 4 * H), bias(4 * H);
    std::iota(kernel.begin(), kernel.end(), 1.0f);
    std::iota(recurrent.begin(), recurrent.end(), 100.0f);
    std::iota(bias.begin(), bias.end(), 1000.0f);
    std::vector<float> ws(static_cast<size_t>(total), -1.0f);
    lay::pack_on_host(plan, kernel.data(), recurrent.data(), bias.data(), ws.data());
    // W(f) = linLayerID 1: element (unit j, input c) is Keras kernel[c][1*H + j].
    for (int64_t j = 0; j < H; ++j)
        for (int64_t c = 0; c < C; ++c) CHECK(ws[offsets[1].matrix + j * C + c] == kernel[c * 4 * H + H + j]);
    // R(o) = linLayerID 7: recurrent_kernel[k][3*H + j].
    for (int64_t j = 0; j < H; ++j)
        for (int64_t k = 0; k < H; ++k) CHECK(ws[offsets[7].matrix + j * H + k] == recurrent[k * 4 * H + 3 * H + j]);
    for (int64_t j = 0; j < H; ++j) {
        CHECK(ws[offsets[2].bias + j] == bias[2 * H + j]);
        CHECK(ws[offsets[6].bias + j] == 0.0f);
    }
}

TEST_CASE("unpacking a packed weight space gives the Keras weights back") {
    const int64_t C = 3, H = 4;
    for (auto cell : {be::RnnCell::simple_rnn, be::RnnCell::lstm, be::RnnCell::gru}) {
        const int G = lay::gate_count(cell);
        const int64_t bias_n = cell == be::RnnCell::gru ? 2 * G * H : G * H;
        const auto kernel = floats_of(ref::random_vec(C * G * H, 31));
        const auto recurrent = floats_of(ref::random_vec(H * G * H, 32));
        const auto bias = floats_of(ref::random_vec(bias_n, 33));
        int64_t total = 0;
        const auto plan = lay::pack_plan(spec_for(cell, H, true), C, scattered_offsets(G, C, H, &total));
        std::vector<float> ws(static_cast<size_t>(total), 0.0f);
        lay::pack_on_host(plan, kernel.data(), recurrent.data(), bias.data(), ws.data());
        std::vector<float> dk(kernel.size(), -7.f), dr(recurrent.size(), -7.f), db(bias.size(), -7.f);
        lay::unpack_on_host(plan, ws.data(), dk.data(), dr.data(), db.data());
        CHECK(dk == kernel);
        CHECK(dr == recurrent);
        CHECK(db == bias);
    }
}

TEST_CASE("specs cuDNN cannot run are named with the reason") {
    auto spec = spec_for(be::RnnCell::simple_rnn, 4, true);
    CHECK(lay::unsupported_reason(spec).empty());
    spec.activation = Activation::relu;
    CHECK(lay::unsupported_reason(spec).empty());
    spec.activation = Activation::sigmoid;
    CHECK(lay::unsupported_reason(spec) == "activation='sigmoid' is not supported by cuDNN's RNN (tanh, relu)");

    auto lstm = spec_for(be::RnnCell::lstm, 4, true);
    CHECK(lay::unsupported_reason(lstm).empty());
    lstm.recurrent_activation = Activation::hard_sigmoid;
    CHECK(lay::unsupported_reason(lstm) ==
          "recurrent_activation='hard_sigmoid' is not supported by cuDNN's LSTM (sigmoid only)");
    lstm.activation = Activation::relu;
    CHECK(lay::unsupported_reason(lstm) == "activation='relu' is not supported by cuDNN's LSTM (tanh only)");

    auto gru = spec_for(be::RnnCell::gru, 4, true, false);
    CHECK(lay::unsupported_reason(gru) ==
          "reset_after=False is not supported by cuDNN's GRU (it computes the reset_after=True form)");
    CHECK(message_of([&] { lay::pack_plan(gru, 3, {}); }) == "Layer \"rnn_x\": cuDNN has no GRU with reset_after=False");
    CHECK(message_of([&] { lay::pack_plan(spec_for(be::RnnCell::lstm, 4, true), 3, {}); }) ==
          "cuDNN weight offsets: expected 8 linLayerIDs, got 0");
}

TEST_CASE("go_backwards on padded data reverses each sample's valid steps and leaves padding in place") {
    namespace ri = keras::backend::rnn_index;
    // T = 6, a sample with 4 valid steps: 3 2 1 0 | 4 5.
    const int64_t expected[6] = {3, 2, 1, 0, 4, 5};
    for (int64_t t = 0; t < 6; ++t) {
        CHECK(ri::reversed_step(t, 4) == expected[t]);
        CHECK(ri::reversed_step(ri::reversed_step(t, 4), 4) == t);   // its own inverse (dx flips back)
        CHECK(ri::reversed_step(t, 6) == 5 - t);                     // full length: plain reversal
    }
}
