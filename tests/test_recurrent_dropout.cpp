// recurrent_dropout on SimpleRNN, LSTM and GRU: the backend's masked step loop against the
// double-precision reference (tests/reference, mask folded into a per-sample recurrent matrix) and
// against REAL Keras 3 run with the same injected mask (fixtures/recurrent_dropout_keras.json, made
// by fixtures/gen_recurrent_dropout_fixtures.py); the mask the layer draws (rate, scaling, one per
// sequence, per sample, per gate); inference on the fused path; fit; config and .h5 round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/onednn/onednn_backend.hpp"
#include "keras/keras.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/models.hpp"
#include "keras/random.hpp"
#include "layer_factory.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using keras::CallContext;
using keras::Shape;
using keras::Tensor;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
namespace be = keras::backend;
namespace kl = keras::layers;

namespace {

// One configuration: cell, shapes and the flags the mask interacts with.
struct Case {
    ref::Cell cell = ref::Cell::lstm;
    bool reset_after = true, go_backwards = false, return_sequences = true;
    int N = 3, T = 4, C = 2, H = 3;
    int G() const { return ref::gates(cell); }
};

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    for (const Case base : {Case{.cell = ref::Cell::simple_rnn}, Case{.cell = ref::Cell::lstm},
                            Case{.cell = ref::Cell::gru}, Case{.cell = ref::Cell::gru, .reset_after = false}})
        for (bool backwards : {false, true}) {
            Case c = base;
            c.go_backwards = backwards;
            c.return_sequences = !backwards;
            cases.push_back(c);
        }
    return cases;
}

std::string name_of(const Case& c) {
    const char* names[] = {"simple_rnn", "lstm", "gru"};
    return std::string(names[static_cast<int>(c.cell)]) + (c.reset_after ? "" : " reset_before") +
           (c.go_backwards ? " go_backwards" : "") + (c.return_sequences ? " return_sequences" : "");
}

be::RnnSpec spec_of(const Case& c) {
    const be::RnnCell cells[] = {be::RnnCell::simple_rnn, be::RnnCell::lstm, be::RnnCell::gru};
    return be::RnnSpec{.cell = cells[static_cast<int>(c.cell)], .units = c.H, .reset_after = c.reset_after,
                       .go_backwards = c.go_backwards, .layer_name = "rd"};
}

ref::RnnConfig config_of(const Case& c, const ref::Vec& mask, const ref::Vec& input_mask = {}) {
    return ref::RnnConfig{.cell = c.cell, .N = c.N, .T = c.T, .C = c.C, .H = c.H, .reset_after = c.reset_after,
                          .go_backwards = c.go_backwards, .return_sequences = c.return_sequences,
                          .recurrent_mask = mask, .input_mask = input_mask};
}

ref::Vec rounded(ref::Vec v) {
    for (double& a : v) a = static_cast<float>(a);
    return v;
}

// Weights and input of a case, as doubles that are exact floats.
struct Inputs {
    ref::Vec x, kernel, recurrent, bias, h0, c0;
};

Inputs make_inputs(const Case& c, unsigned seed) {
    const size_t GH = static_cast<size_t>(c.G()) * c.H;
    Inputs in;
    in.x = rounded(ref::random_vec(static_cast<size_t>(c.N) * c.T * c.C, seed, -1.0, 1.0));
    in.kernel = rounded(ref::random_vec(c.C * GH, seed + 1, -0.7, 0.7));
    in.recurrent = rounded(ref::random_vec(c.H * GH, seed + 2, -0.7, 0.7));
    in.bias = rounded(ref::random_vec(ref::bias_size(config_of(c, {})), seed + 3, -0.5, 0.5));
    in.h0 = rounded(ref::random_vec(static_cast<size_t>(c.N) * c.H, seed + 4, -0.8, 0.8));
    if (c.cell == ref::Cell::lstm) in.c0 = rounded(ref::random_vec(in.h0.size(), seed + 5, -0.8, 0.8));
    return in;
}

// A dropout-like mask (N, G*width): 0 or 1 / (1 - 0.4), seeded.
ref::Vec dropout_like_mask(const Case& c, unsigned seed, int width) {
    ref::Vec m = ref::random_vec(static_cast<size_t>(c.N) * c.G() * width, seed, 0.0, 1.0);
    for (double& v : m) v = v < 0.4 ? 0.0 : static_cast<float>(1.0 / 0.6);
    return m;
}

// The backend's masks from the reference's (an empty one stays undefined).
be::RnnDropoutMasks masks_of(const Case& c, const ref::Vec& recurrent, const ref::Vec& input = {}) {
    be::RnnDropoutMasks masks;
    if (!input.empty()) masks.input = floats(input, {c.N, c.G() * c.C});
    if (!recurrent.empty()) masks.recurrent = floats(recurrent, {c.N, c.G() * c.H});
    return masks;
}

be::RnnWeights weights_of(const Case& c, const Inputs& in) {
    const int64_t GH = static_cast<int64_t>(c.G()) * c.H;
    const bool two_rows = c.cell == ref::Cell::gru && c.reset_after;
    return {floats(in.kernel, {c.C, GH}), floats(in.recurrent, {c.H, GH}),
            floats(in.bias, two_rows ? Shape{2, GH} : Shape{GH})};
}

Tensor state_of(const Case& c, const ref::Vec& v) { return v.empty() ? Tensor() : floats(v, {c.N, c.H}); }

be::Backend& cpu() { return be::get(keras::Device::cpu()); }

void check_close(const ref::Vec& ours, const ref::Vec& expected, const std::string& what, double atol = 1e-5,
                 double rtol = 1e-4) {
    INFO(what << ": max |diff| = " << ref::max_abs_diff(ours, expected));
    REQUIRE(ours.size() == expected.size());
    CHECK(ref::max_rel_err(ours, expected, atol, rtol) <= 1.0);
}

// The output gradient for a case: on the sequences, or on the last state.
ref::Vec output_gradient(const Case& c, unsigned seed) {
    const size_t NH = static_cast<size_t>(c.N) * c.H;
    return ref::random_vec(c.return_sequences ? NH * c.T : NH, seed, -1.0, 1.0);
}

be::RnnGradients backend_backward(const Case& c, const Inputs& in, be::RnnForward& fwd, const ref::Vec& dy) {
    if (c.return_sequences) return cpu().rnn_backward(spec_of(c), weights_of(c, in), fwd, floats(dy, {c.N, c.T, c.H}),
                                                      Tensor(), Tensor());
    return cpu().rnn_backward(spec_of(c), weights_of(c, in), fwd, Tensor(), floats(dy, {c.N, c.H}), Tensor());
}

ref::Vec output_of(const Case& c, const be::RnnForward& fwd) {
    return values_of(c.return_sequences ? fwd.sequences : fwd.h);
}

const nlohmann::json& keras_fixtures() {
    static const nlohmann::json data = [] {
        std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/recurrent_dropout_keras.json");
        REQUIRE(in.good());
        return nlohmann::json::parse(in);
    }();
    return data;
}

ref::Vec vec(const nlohmann::json& j) { return j.get<ref::Vec>(); }

}  // namespace

TEST_CASE("backend: forward and gradients with a recurrent mask equal the reference") {
    unsigned seed = 10;
    for (const Case& c : all_cases()) {
        INFO(name_of(c));
        const Inputs in = make_inputs(c, seed);
        const ref::Vec mask = dropout_like_mask(c, seed + 7, c.H);
        // LSTM / GRU with recurrent dropout also take per-gate input masks (Keras's implementation 1).
        const bool with_input = c.cell != ref::Cell::simple_rnn && c.return_sequences;
        const ref::Vec input_mask = with_input ? dropout_like_mask(c, seed + 9, c.C) : ref::Vec{};
        const ref::RnnConfig cfg = config_of(c, mask, input_mask);
        be::RnnForward fwd = cpu().rnn_forward(spec_of(c), floats(in.x, {c.N, c.T, c.C}), weights_of(c, in),
                                               state_of(c, in.h0), state_of(c, in.c0), true,
                                               masks_of(c, mask, input_mask));
        const auto expected = ref::rnn_forward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);
        check_close(output_of(c, fwd), expected.y, "y");
        check_close(values_of(fwd.h), expected.h, "h");
        if (c.cell == ref::Cell::lstm) check_close(values_of(fwd.c), expected.c, "c");
        // The mask acted: without it the numbers differ.
        const auto plain = ref::rnn_forward(config_of(c, {}), in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);
        CHECK(ref::max_abs_diff(expected.y, plain.y) > 1e-2);

        const ref::Vec dy = output_gradient(c, seed + 8);
        const auto g = backend_backward(c, in, fwd, dy);
        const auto eg = ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0, dy);
        check_close(values_of(g.dx), eg.dx, "dx");
        check_close(values_of(g.dweights.kernel), eg.dkernel, "dkernel");
        check_close(values_of(g.dweights.recurrent_kernel), eg.drecurrent, "drecurrent_kernel");
        check_close(values_of(g.dweights.bias), eg.dbias, "dbias");
        check_close(values_of(g.dh0), eg.dh0, "dh0");
        if (c.cell == ref::Cell::lstm) check_close(values_of(g.dc0), eg.dc0, "dc0");
        seed += 20;
    }
}

TEST_CASE("backend: gradients with a recurrent mask equal central differences of our forward") {
    // float32 forward: eps 1e-2 on a loss of O(1) keeps the rounding error near 1e-5.
    for (const Case& c : all_cases()) {
        if (c.go_backwards) continue;
        INFO(name_of(c));
        Inputs in = make_inputs(c, 300);
        const ref::Vec mask = dropout_like_mask(c, 307, c.H);
        const ref::Vec input_mask = c.cell != ref::Cell::simple_rnn ? dropout_like_mask(c, 309, c.C) : ref::Vec{};
        const ref::Vec dy = output_gradient(c, 308);
        auto loss = [&] {
            const auto f = cpu().rnn_forward(spec_of(c), floats(in.x, {c.N, c.T, c.C}), weights_of(c, in),
                                             state_of(c, in.h0), state_of(c, in.c0), true,
                                             masks_of(c, mask, input_mask));
            return ref::dot(dy, output_of(c, f));
        };
        be::RnnForward fwd = cpu().rnn_forward(spec_of(c), floats(in.x, {c.N, c.T, c.C}), weights_of(c, in),
                                               state_of(c, in.h0), state_of(c, in.c0), true,
                                               masks_of(c, mask, input_mask));
        const auto g = backend_backward(c, in, fwd, dy);
        auto numeric = [&](ref::Vec& v, size_t i) {
            const double saved = v[i], eps = 1e-2;
            v[i] = saved + eps;
            const double up = loss();
            v[i] = saved - eps;
            const double down = loss();
            v[i] = saved;
            return (up - down) / (2 * eps);
        };
        const auto dR = values_of(g.dweights.recurrent_kernel);
        for (size_t i = 0; i < in.recurrent.size(); i += 2)
            CHECK(dR[i] == doctest::Approx(numeric(in.recurrent, i)).epsilon(2e-3).scale(1.0));
        const auto dh0 = values_of(g.dh0);
        for (size_t i = 0; i < in.h0.size(); ++i)
            CHECK(dh0[i] == doctest::Approx(numeric(in.h0, i)).epsilon(2e-3).scale(1.0));
        const auto dK = values_of(g.dweights.kernel), dx = values_of(g.dx);
        for (size_t i = 0; i < in.kernel.size(); i += 2)
            CHECK(dK[i] == doctest::Approx(numeric(in.kernel, i)).epsilon(2e-3).scale(1.0));
        for (size_t i = 0; i < in.x.size(); i += 3)
            CHECK(dx[i] == doctest::Approx(numeric(in.x, i)).epsilon(2e-3).scale(1.0));
    }
}

TEST_CASE("backend: training with the injected mask equals REAL Keras 3 (output and gradients)") {
    const auto& fx = keras_fixtures();
    REQUIRE(fx["cases"].size() == 8);
    int with_input_masks = 0;
    for (const auto& k : fx["cases"]) {
        INFO(k["name"].get<std::string>());
        const std::string cell = k["cell"];
        Case c{.cell = cell == "SimpleRNN" ? ref::Cell::simple_rnn : cell == "LSTM" ? ref::Cell::lstm : ref::Cell::gru,
               .reset_after = k["reset_after"], .go_backwards = k["go_backwards"],
               .return_sequences = k["return_sequences"], .N = k["N"], .T = k["T"], .C = k["C"], .H = k["H"]};
        const Inputs in{vec(k["x"]), vec(k["kernel"]), vec(k["recurrent_kernel"]), vec(k["bias"]), {}, {}};
        be::RnnForward fwd = cpu().rnn_forward(spec_of(c), floats(in.x, {c.N, c.T, c.C}), weights_of(c, in), Tensor(),
                                               Tensor(), true, masks_of(c, vec(k["recurrent_mask"]), vec(k["input_mask"])));
        check_close(output_of(c, fwd), vec(k["y"]), "y");
        const auto g = backend_backward(c, in, fwd, vec(k["w_out"]));
        check_close(values_of(g.dx), vec(k["dx"]), "dx");
        check_close(values_of(g.dweights.kernel), vec(k["dkernel"]), "dkernel");
        check_close(values_of(g.dweights.recurrent_kernel), vec(k["drecurrent_kernel"]), "drecurrent_kernel");
        check_close(values_of(g.dweights.bias), vec(k["dbias"]), "dbias");
        with_input_masks += !k["input_mask"].empty();
    }
    CHECK(with_input_masks == 3);
}

TEST_CASE("backend: a dropout mask of the wrong shape is a ValueError naming the layer") {
    const Case c{.cell = ref::Cell::gru};
    const Inputs in = make_inputs(c, 40);
    auto run = [&](const be::RnnDropoutMasks& masks) {
        cpu().rnn_forward(spec_of(c), floats(in.x, {c.N, c.T, c.C}), weights_of(c, in), Tensor(), Tensor(), true, masks);
    };
    CHECK(message_of<keras::ValueError>([&] { run({.recurrent = Tensor::zeros({3, 3})}); }) ==
          "Layer \"rd\": the recurrent dropout mask must be float32 of shape (3, 9) (batch, gates * units), got "
          "float32 (3, 3)");
    CHECK(message_of<keras::ValueError>([&] { run({.recurrent = Tensor::zeros({3, 9}, keras::DType::int32)}); }) ==
          "Layer \"rd\": the recurrent dropout mask must be float32 of shape (3, 9) (batch, gates * units), got "
          "int32 (3, 9)");
    CHECK(message_of<keras::ValueError>([&] { run({.input = Tensor::zeros({3, 2})}); }) ==
          "Layer \"rd\": the input dropout mask must be float32 of shape (3, 6) (batch, gates * features), got "
          "float32 (3, 2)");
}

// ---------------------------------------------------------------------------------------------
// The layer: the mask it draws and where it goes.
// ---------------------------------------------------------------------------------------------
namespace {

std::shared_ptr<kl::RNNBase> make_layer(const Case& c, float recurrent_dropout, float dropout = 0.0f) {
    switch (c.cell) {
        case ref::Cell::simple_rnn:
            return std::make_shared<kl::SimpleRNN>(c.H, kl::SimpleRNNOptions{.dropout = dropout,
                                                                             .recurrent_dropout = recurrent_dropout,
                                                                             .return_sequences = c.return_sequences,
                                                                             .go_backwards = c.go_backwards});
        case ref::Cell::lstm:
            return std::make_shared<kl::LSTM>(c.H, kl::LSTMOptions{.dropout = dropout,
                                                                   .recurrent_dropout = recurrent_dropout,
                                                                   .return_sequences = c.return_sequences,
                                                                   .go_backwards = c.go_backwards});
        case ref::Cell::gru:
            return std::make_shared<kl::GRU>(c.H, kl::GRUOptions{.dropout = dropout,
                                                                 .recurrent_dropout = recurrent_dropout,
                                                                 .return_sequences = c.return_sequences,
                                                                 .go_backwards = c.go_backwards,
                                                                 .reset_after = c.reset_after});
    }
    return nullptr;
}

void set_weights(kl::RNNBase& layer, const Case& c, const Inputs& in) {
    const be::RnnWeights w = weights_of(c, in);
    layer.weights()[0]->value.copy_from(w.kernel);
    layer.weights()[1]->value.copy_from(w.recurrent_kernel);
    layer.weights()[2]->value.copy_from(w.bias);
}

}  // namespace

namespace {

// What the layer draws after seeding: N * G * width uniforms in (sample, gate, unit) order, kept
// when u < 1 - rate.
ref::Vec expected_masks(int64_t count, float rate) {
    ref::Vec mask(static_cast<size_t>(count));
    for (double& m : mask) m = keras::random::uniform01() < 1.0 - rate ? double(1.0f / (1.0f - rate)) : 0.0;
    return mask;
}

}  // namespace

TEST_CASE("layer: training draws per-gate masks after seeding, keeps u < 1 - rate, scales by 1/(1-rate)") {
    // LSTM / GRU also use dropout: Keras 3's implementation 1 draws its input mask per gate, first.
    const float rate = 0.3f, input_rate = 0.2f;
    for (const Case& c : all_cases()) {
        INFO(name_of(c));
        const bool gated_input = c.cell != ref::Cell::simple_rnn;
        auto layer = make_layer(c, rate, gated_input ? input_rate : 0.0f);
        layer->build_for({-1, c.T, c.C});
        const Inputs in = make_inputs(c, 500);
        set_weights(*layer, c, in);

        keras::utils::set_random_seed(77);
        const ref::Vec input_mask = gated_input ? expected_masks(c.N * c.G() * c.C, input_rate) : ref::Vec{};
        const ref::Vec mask = expected_masks(c.N * c.G() * c.H, rate);

        keras::utils::set_random_seed(77);
        CallContext ctx;
        ctx.training = true;
        const Tensor y = layer->call(floats(in.x, {c.N, c.T, c.C}), ctx);
        const ref::RnnConfig cfg = config_of(c, mask, input_mask);
        const auto expected = ref::rnn_forward(cfg, in.x, in.kernel, in.recurrent, in.bias);
        check_close(values_of(y), expected.y, "y");

        const ref::Vec dy = output_gradient(c, 501);
        const Tensor dx = layer->backward(floats(dy, y.shape()), ctx);
        const auto g = ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, {}, {}, dy);
        check_close(values_of(dx), g.dx, "dx");
        check_close(values_of(layer->weights()[1]->grad), g.drecurrent, "recurrent_kernel grad");
        check_close(values_of(layer->weights()[0]->grad), g.dkernel, "kernel grad");
        check_close(values_of(layer->weights()[2]->grad), g.dbias, "bias grad");
    }
}

namespace {

// A SimpleRNN whose outputs ARE its recurrent mask: linear activation, kernel = recurrent = I, no
// bias, x = 1 at the first step and 0 after, so y_0 = 1 and y_t = y_{t-1} * m = m^t (elementwise).
struct MaskProbe {
    int64_t N, T, H;
    kl::SimpleRNN layer;
    Tensor x;
    MaskProbe(int64_t n, int64_t t, int64_t h, float rate)
        : N(n), T(t), H(h),
          layer(h, {.activation = "linear", .use_bias = false, .recurrent_dropout = rate, .return_sequences = true}) {
        layer.build_for({-1, T, H});
        std::vector<float> eye(static_cast<size_t>(H * H), 0.0f);
        for (int64_t i = 0; i < H; ++i) eye[i * H + i] = 1.0f;
        layer.weights()[0]->value.copy_from(Tensor(eye, {H, H}));
        layer.weights()[1]->value.copy_from(Tensor(eye, {H, H}));
        std::vector<float> xs(static_cast<size_t>(N * T * H), 0.0f);
        for (int64_t n = 0; n < N; ++n) std::fill_n(xs.begin() + n * T * H, H, 1.0f);
        x = Tensor(xs, {N, T, H});
    }
    // y (N, T, H) as floats.
    std::vector<float> run(bool training) {
        CallContext ctx;
        ctx.training = training;
        return layer.call(x, ctx).to_vector<float>();
    }
    float at(const std::vector<float>& y, int64_t n, int64_t t, int64_t j) const { return y[(n * T + t) * H + j]; }
};

}  // namespace

TEST_CASE("layer: the mask's statistics (rate, scale, one per sequence, per sample, new each call)") {
    const float rate = 0.25f;
    MaskProbe probe(400, 3, 50, rate);
    const auto y = probe.run(true);
    const float kept = 1.0f / (1.0f - rate);
    int64_t zeros = 0;
    bool rows_differ = false;
    for (int64_t n = 0; n < probe.N; ++n)
        for (int64_t j = 0; j < probe.H; ++j) {
            CHECK(probe.at(y, n, 0, j) == 1.0f);
            const float m = probe.at(y, n, 1, j);
            REQUIRE((m == 0.0f || m == kept));
            zeros += m == 0.0f;
            // The same mask at the next step: m * m.
            CHECK(probe.at(y, n, 2, j) == m * m);
            if (n > 0 && m != probe.at(y, n - 1, 1, j)) rows_differ = true;
        }
    // 20000 Bernoulli(0.25) draws: mean 5000, sd 61; 5 sd either side.
    CHECK(std::abs(double(zeros) - 5000.0) < 5 * 61.3);
    CHECK(rows_differ);
    // A new mask each call (each batch), none at inference.
    CHECK(probe.run(true) != y);
    for (float v : probe.run(false)) CHECK(v == 1.0f);
}

TEST_CASE("layer: rates are clipped to [0, 1] as in Keras; SimpleRNN at 1 zeroes h_{t-1}, LSTM / GRU skip it") {
    CHECK(kl::LSTM(2, {.recurrent_dropout = 1.5f}).common().recurrent_dropout == 1.0f);
    CHECK(kl::GRU(2, {.recurrent_dropout = -0.5f}).common().recurrent_dropout == 0.0f);
    MaskProbe probe(4, 2, 3, 1.0f);
    for (int64_t n = 0; n < 4; ++n)
        for (int64_t j = 0; j < 3; ++j) CHECK(probe.at(probe.run(true), n, 1, j) == 0.0f);

    // Keras's LSTMCell / GRUCell apply recurrent dropout only for 0 < rate < 1.
    const Case c{.cell = ref::Cell::lstm};
    auto one = make_layer(c, 1.0f), none = make_layer(c, 0.0f);
    for (auto* l : {one.get(), none.get()}) {
        l->build_for({-1, c.T, c.C});
        set_weights(*l, c, make_inputs(c, 600));
    }
    CallContext a, b;
    a.training = b.training = true;
    const Tensor x = floats(make_inputs(c, 600).x, {c.N, c.T, c.C});
    CHECK(one->call(x, a).to_vector<float>() == none->call(x, b).to_vector<float>());
    CHECK(one->implementation_note() == "GEMM-step lstm (oneDNN matmul) in training; oneDNN lstm in inference");
}

TEST_CASE("layer: input dropout at rate 1 is skipped by LSTM / GRU and zeroes SimpleRNN's input, as in Keras 3") {
    // Checked with real Keras 3.15 (TF, CPU): LSTM(dropout=1.0) and GRU(dropout=1.0) give their
    // inference output while training; SimpleRNN(dropout=1.0) sees zeros.
    for (const ref::Cell cell : {ref::Cell::simple_rnn, ref::Cell::lstm, ref::Cell::gru}) {
        const Case c{.cell = cell};
        INFO(name_of(c));
        auto one = make_layer(c, 0.0f, 1.0f), none = make_layer(c, 0.0f, 0.0f);
        for (auto* l : {one.get(), none.get()}) {
            l->build_for({-1, c.T, c.C});
            set_weights(*l, c, make_inputs(c, 610));
        }
        CallContext a, b, z;
        a.training = b.training = z.training = true;
        const Tensor x = floats(make_inputs(c, 610).x, {c.N, c.T, c.C});
        const auto trained = one->call(x, a).to_vector<float>();
        if (cell == ref::Cell::simple_rnn)
            CHECK(trained == none->call(Tensor::zeros(x.shape(), keras::DType::float32), z).to_vector<float>());
        else
            CHECK(trained == none->call(x, b).to_vector<float>());
    }
}

TEST_CASE("layer: inference runs the fused primitive and equals the dropout-free layer bit for bit") {
    for (const Case& c : all_cases()) {
        INFO(name_of(c));
        auto with = make_layer(c, 0.3f), without = make_layer(c, 0.0f);
        const Inputs in = make_inputs(c, 700);
        for (auto* l : {with.get(), without.get()}) {
            l->build_for({-1, c.T, c.C});
            set_weights(*l, c, in);
        }
        CallContext a, b;
        const Tensor x = floats(in.x, {c.N, c.T, c.C});
        CHECK(with->call(x, a).to_vector<float>() == without->call(x, b).to_vector<float>());
    }
    // Fused for inference; the note says why training runs the step loop.
    CHECK(kl::LSTM(4, {.recurrent_dropout = 0.25f}).implementation_note() ==
          "oneDNN lstm; training with recurrent_dropout=0.25: fallback loop (the primitive cannot mask the "
          "recurrent state per step)");
    CHECK(kl::GRU(4, {.recurrent_dropout = 0.5f}).spec().recurrent_dropout == 0.5f);
    CHECK(cpu().rnn_path(kl::GRU(4, {.recurrent_dropout = 0.5f}).spec()).fused);
    CHECK(kl::GRU(4).implementation_note() == "GEMM-step gru (oneDNN matmul) in training; oneDNN lbr_gru in inference");
}

TEST_CASE("fit with recurrent_dropout trains and is reproducible with set_random_seed") {
    using namespace keras;
    // Label: whether token 1 appears in the sequence (tokens 1..9, length 8).
    const int64_t n = 256, T = 8;
    std::vector<int32_t> ids(static_cast<size_t>(n * T));
    std::vector<float> labels(static_cast<size_t>(n));
    utils::set_random_seed(3);
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t t = 0; t < T; ++t) ids[i * T + t] = 2 + static_cast<int32_t>(random::uniform01() * 8);
        if (i % 2 == 0) ids[i * T + static_cast<int64_t>(random::uniform01() * T)] = 1;
        labels[i] = i % 2 == 0 ? 1.0f : 0.0f;
    }
    const Tensor x(ids, {n, T}), y(labels, {n, 1});
    auto train = [&](uint64_t seed) {
        utils::set_random_seed(seed);
        Sequential model;
        model.add(layers::Input({T}));
        model.add(layers::Embedding(10, 8));
        model.add(layers::LSTM(8, {.recurrent_dropout = 0.3f}));
        model.add(layers::Dense(1, "sigmoid"));
        model.compile(optimizers::Adam(0.02f), "binary_crossentropy");
        const auto history = model.fit(x, y, {.batch_size = 32, .epochs = 8, .verbose = 0});
        std::vector<float> flat;
        for (const Tensor& w : model.get_weights())
            for (float v : w.to_vector<float>()) flat.push_back(v);
        return std::make_pair(history["loss"], flat);
    };
    const auto [loss, weights] = train(11);
    MESSAGE("loss by epoch: first " << loss.front() << ", last " << loss.back());
    CHECK(loss.back() < 0.5 * loss.front());
    CHECK(train(11).second == weights);
    CHECK(train(12).second != weights);
}

TEST_CASE("config: recurrent_dropout round-trips; a real Keras 3 .h5 with it loads, predicts and saves back") {
    kl::LSTM lstm(3, {.recurrent_dropout = 0.25f, .name = "l"});
    const auto cfg = lstm.get_config();
    CHECK(cfg["recurrent_dropout"].get<double>() == 0.25);
    auto copy = kl::layer_from_config("LSTM", cfg, {.keras_major = 3, .file = "test"});
    CHECK(copy->get_config() == cfg);
    CHECK(std::dynamic_pointer_cast<kl::RNNBase>(copy)->common().recurrent_dropout == 0.25f);

    const auto& h5 = keras_fixtures()["h5"];
    const std::string file = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/" + h5["file"].get<std::string>();
    auto model = keras::models::load_model(file, {.compile = false});
    const auto& layers = model->layers();
    std::vector<double> rates;
    for (const auto& l : layers)
        if (auto rnn = std::dynamic_pointer_cast<kl::RNNBase>(l)) rates.push_back(rnn->get_config()["recurrent_dropout"]);
    CHECK(rates == std::vector<double>{0.25, 0.1});
    const std::vector<int32_t> tokens = h5["tokens"].get<std::vector<int32_t>>();
    const Tensor x(tokens, {4, 6});
    check_close(values_of(model->predict(x, {.verbose = 0})), vec(h5["predict"]), "predict");

    const auto dir = std::filesystem::temp_directory_path() / "kerascpp_test_recurrent_dropout";
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "resaved.h5").string();
    model->save(path);
    auto again = keras::models::load_model(path, {.compile = false});
    std::vector<double> again_rates;
    for (const auto& l : again->layers())
        if (auto rnn = std::dynamic_pointer_cast<kl::RNNBase>(l))
            again_rates.push_back(rnn->get_config()["recurrent_dropout"]);
    CHECK(again_rates == rates);
    CHECK(values_of(again->predict(x, {.verbose = 0})) == values_of(model->predict(x, {.verbose = 0})));
}

TEST_CASE("layer: a NaN dropout or recurrent_dropout is a ValueError (clipping would make it 0 silently)") {
    const float nan = std::nanf("");
    for (const Case& c : all_cases()) {
        INFO(name_of(c));
        const std::string layer = c.cell == ref::Cell::simple_rnn ? "SimpleRNN" : c.cell == ref::Cell::lstm ? "LSTM" : "GRU";
        CHECK(message_of<keras::ValueError>([&] { make_layer(c, nan); }) ==
              layer + ": Invalid value received for argument `recurrent_dropout`. Expected a float value between 0 "
                      "and 1. Received: recurrent_dropout=nan");
        CHECK(message_of<keras::ValueError>([&] { make_layer(c, 0.0f, nan); }).find("argument `dropout`") !=
              std::string::npos);
    }
    CHECK(message_of<keras::ValueError>([&] { keras::layers::Dropout layer(nan); }).find("rate=nan") != std::string::npos);
}
