// GPU parity (needs an NVIDIA GPU; otherwise the whole suite is reported SKIPPED by meson with the
// reason, e.g. "no CUDA GPU: this kerascpp was built without the CUDA backend"):
// - Dense (cuBLAS) and SimpleRNN / LSTM / GRU (cuDNN) forward and gradients on the GPU against the
//   double-precision reference (tests/reference) and against the CPU backend, at FMA-math fp32
//   tolerances (~1e-5 relative; TF32 would miss them by 100x);
// - the specs cuDNN cannot run take the named CPU fallback and still match, and so do dropout masks;
// - cuDNN's per-sample lengths give each sample's state at its own last step;
// - masked models (Embedding(mask_zero) -> LSTM / GRU / Bidirectional) predict and train as on the CPU;
// - a model of every 1-D convolution, pooling and shape layer predicts and trains as on the CPU, and so
//   do one of the normalization layers and regularizers and one of the attention and merge layers;
// - stacked SimpleRNN / LSTM / GRU models (return_sequences, go_backwards) predict and train for
//   three Adam steps on the GPU as on the CPU;
// - one epoch of the IMDb SimpleRNN model (Embedding(6000,100)-SimpleRNN(16)-Dense(1,sigmoid),
//   Adam 1e-3) on the generated corpus gives the same loss on CPU and GPU from the same weights
//   and batch order, to 1e-4.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "keras/backend.hpp"
#include <keras/keras.hpp>

#include "reference/reference.hpp"
#include "keras/backend.hpp"   // be::Backend, be::RnnWeights, whether or not CUDA is built
#include "test_helpers.hpp"
#ifdef KERASCPP_HAVE_CUDA
#include "backend/cuda/cuda_backend.hpp"
#endif

using keras::Device;
using keras::DType;
using keras::Shape;
using keras::Tensor;
using test_helpers::floats;
using test_helpers::message_of;
namespace be = keras::backend;

namespace {

const Device gpu = Device::cuda(0);
be::Backend& cuda() { return be::get(gpu); }
be::Backend& cpu() { return be::get(Device::cpu()); }

ref::Vec host_values(const Tensor& t) {
    if (!t.defined()) return {};
    return test_helpers::values_of(t.to(Device::cpu()));
}

// Rounded to float first, so the reference sees exactly the values the backends see.
ref::Vec rounded(ref::Vec v) {
    for (double& a : v) a = static_cast<float>(a);
    return v;
}

// |ours - expected| <= atol + rtol |expected| everywhere.
void check_close(const ref::Vec& ours, const ref::Vec& expected, const std::string& what, double atol = 1e-5,
                 double rtol = 1e-5) {
    INFO(what << ": max |diff| = " << ref::max_abs_diff(ours, expected));
    REQUIRE(ours.size() == expected.size());
    CHECK(ref::max_rel_err(ours, expected, atol, rtol) <= 1.0);
}

// ---------------------------------------------------------------------------------------------
// RNN cases.
// ---------------------------------------------------------------------------------------------
struct Case {
    ref::Cell cell = ref::Cell::lstm;
    int N = 3, T = 5, C = 4, H = 6;
    std::string activation = "tanh", recurrent_activation = "sigmoid";
    bool use_bias = true, reset_after = true, go_backwards = false, with_states = false;

    std::string str() const {
        const char* names[] = {"simple_rnn", "lstm", "gru"};
        return std::string(names[static_cast<int>(cell)]) + " act=" + activation + " ract=" + recurrent_activation +
               " bias=" + std::to_string(use_bias) + " reset_after=" + std::to_string(reset_after) +
               " go_backwards=" + std::to_string(go_backwards) + " states=" + std::to_string(with_states);
    }
    int G() const { return ref::gates(cell); }
    ref::RnnConfig config(bool return_sequences) const {
        return {.cell = cell, .N = N, .T = T, .C = C, .H = H, .activation = activation,
                .recurrent_activation = recurrent_activation, .use_bias = use_bias, .reset_after = reset_after,
                .go_backwards = go_backwards, .return_sequences = return_sequences};
    }
    be::RnnSpec spec() const {
        const be::RnnCell cells[] = {be::RnnCell::simple_rnn, be::RnnCell::lstm, be::RnnCell::gru};
        return {.cell = cells[static_cast<int>(cell)], .units = H,
                .activation = keras::activation_from_string(activation),
                .recurrent_activation = keras::activation_from_string(recurrent_activation), .use_bias = use_bias,
                .reset_after = reset_after, .go_backwards = go_backwards, .layer_name = "gpu_rnn"};
    }
};

struct Inputs {
    ref::Vec x, kernel, recurrent, bias, h0, c0, dseq, dh, dc;
};

Inputs make_inputs(const Case& c, unsigned seed) {
    const size_t NH = static_cast<size_t>(c.N) * c.H;
    Inputs in;
    in.x = rounded(ref::random_vec(static_cast<size_t>(c.N) * c.T * c.C, seed + 1));
    in.kernel = rounded(ref::random_vec(static_cast<size_t>(c.C) * c.G() * c.H, seed + 2, -0.6, 0.6));
    in.recurrent = rounded(ref::random_vec(static_cast<size_t>(c.H) * c.G() * c.H, seed + 3, -0.6, 0.6));
    in.bias = rounded(ref::random_vec(ref::bias_size(c.config(false)), seed + 4, -0.5, 0.5));
    if (c.with_states) {
        in.h0 = rounded(ref::random_vec(NH, seed + 5, -0.8, 0.8));
        if (c.cell == ref::Cell::lstm) in.c0 = rounded(ref::random_vec(NH, seed + 6, -0.8, 0.8));
    }
    in.dseq = rounded(ref::random_vec(NH * c.T, seed + 7));
    in.dh = rounded(ref::random_vec(NH, seed + 8));
    if (c.cell == ref::Cell::lstm) in.dc = rounded(ref::random_vec(NH, seed + 9));
    return in;
}

be::RnnWeights weights_on(const Case& c, const Inputs& in, Device d) {
    const int64_t GH = static_cast<int64_t>(c.G()) * c.H;
    be::RnnWeights w{floats(in.kernel, {c.C, GH}).to(d), floats(in.recurrent, {c.H, GH}).to(d), Tensor()};
    if (c.use_bias)
        w.bias = floats(in.bias, c.cell == ref::Cell::gru && c.reset_after ? Shape{2, GH} : Shape{GH}).to(d);
    return w;
}

Tensor maybe(const ref::Vec& v, Shape shape, Device d) { return v.empty() ? Tensor() : floats(v, shape).to(d); }

// Forward + backward of one case on one backend, everything returned on the host.
struct Run {
    ref::Vec seq, h, c, dx, dh0, dc0, dk, dr, db;
};

Run run_on(be::Backend& backend, const Case& c, const Inputs& in) {
    const Device d = backend.device();
    const auto spec = c.spec();
    const auto w = weights_on(c, in, d);
    be::RnnForward f = backend.rnn_forward(spec, floats(in.x, {c.N, c.T, c.C}).to(d), w, maybe(in.h0, {c.N, c.H}, d),
                                           maybe(in.c0, {c.N, c.H}, d), true);
    const auto g = backend.rnn_backward(spec, w, f, floats(in.dseq, {c.N, c.T, c.H}).to(d),
                                        maybe(in.dh, {c.N, c.H}, d), maybe(in.dc, {c.N, c.H}, d));
    return {host_values(f.sequences), host_values(f.h), host_values(f.c), host_values(g.dx), host_values(g.dh0),
            host_values(g.dc0), host_values(g.dweights.kernel), host_values(g.dweights.recurrent_kernel),
            host_values(g.dweights.bias)};
}

void check_case(const Case& c) {
    INFO(c.str());
    const Inputs in = make_inputs(c, 17);
    const auto cfg = c.config(true);
    const auto expected = ref::rnn_forward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);
    const auto grads = ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0, in.dseq, in.dh,
                                         in.dc);
    const Run g = run_on(cuda(), c, in);
    const Run h = run_on(cpu(), c, in);
    check_close(g.seq, expected.y, "sequences vs reference");
    check_close(g.h, expected.h, "h vs reference");
    if (c.cell == ref::Cell::lstm) check_close(g.c, expected.c, "c vs reference");
    check_close(g.dx, grads.dx, "dx vs reference", 1e-5, 1e-4);
    check_close(g.dh0, grads.dh0, "dh0 vs reference", 1e-5, 1e-4);
    if (c.cell == ref::Cell::lstm) check_close(g.dc0, grads.dc0, "dc0 vs reference", 1e-5, 1e-4);
    check_close(g.dk, grads.dkernel, "dkernel vs reference", 1e-5, 1e-4);
    check_close(g.dr, grads.drecurrent, "drecurrent vs reference", 1e-5, 1e-4);
    if (c.use_bias) check_close(g.db, grads.dbias, "dbias vs reference", 1e-5, 1e-4);
    else CHECK(g.db.empty());
    // And the GPU against the CPU backend, in float both.
    check_close(g.seq, h.seq, "sequences vs CPU backend");
    check_close(g.dx, h.dx, "dx vs CPU backend", 1e-5, 1e-4);
    check_close(g.dk, h.dk, "dkernel vs CPU backend", 1e-5, 1e-4);
    check_close(g.dr, h.dr, "drecurrent vs CPU backend", 1e-5, 1e-4);
}

}  // namespace

TEST_CASE("Dense on cuBLAS: forward and gradients match the reference and the CPU backend") {
    for (bool with_bias : {true, false}) {
        INFO("bias " << with_bias);
        const int M = 37, C = 53, U = 29;
        const auto x = rounded(ref::random_vec(M * C, 1)), k = rounded(ref::random_vec(C * U, 2));
        const auto b = with_bias ? rounded(ref::random_vec(U, 3)) : ref::Vec{};
        const auto dy = rounded(ref::random_vec(M * U, 4));
        const Tensor bias = with_bias ? floats(b, {U}).to(gpu) : Tensor();
        const Tensor y = cuda().matmul_bias(floats(x, {M, C}).to(gpu), floats(k, {C, U}).to(gpu), bias);
        CHECK(y.device() == gpu);
        check_close(host_values(y), ref::dense_forward(x, M, C, k, U, b, "linear"), "y");
        Tensor dx, dk, db;
        cuda().matmul_bias_backward(floats(x, {M, C}).to(gpu), floats(k, {C, U}).to(gpu), floats(dy, {M, U}).to(gpu),
                                    dx, dk, with_bias ? &db : nullptr);
        const auto g = ref::dense_backward(x, M, C, k, U, b, "linear", dy);
        check_close(host_values(dx), g.dx, "dx");
        check_close(host_values(dk), g.dkernel, "dkernel");
        if (with_bias) check_close(host_values(db), g.dbias, "dbias");
        Tensor cdx, cdk;
        cpu().matmul_bias_backward(floats(x, {M, C}), floats(k, {C, U}), floats(dy, {M, U}), cdx, cdk, nullptr);
        check_close(host_values(dk), host_values(cdk), "dkernel vs CPU backend");
    }
}

TEST_CASE("Dense on the GPU rejects host tensors and mismatched shapes, naming them") {
    const Tensor k = Tensor::zeros({3, 2}, DType::float32, gpu);
    CHECK(message_of([&] { cuda().matmul_bias(Tensor::zeros({4, 3}), k, Tensor()); }) ==
          "cuda:0 backend: matmul input is on cpu, expected cuda:0 (move it with .to())");
    CHECK(message_of([&] { cuda().matmul_bias(Tensor::zeros({4, 5}, DType::float32, gpu), k, Tensor()); }) ==
          "matmul: input has 5 features but the kernel expects 3 (kernel shape (3, 2))");
    CHECK(message_of([&] {
              cuda().matmul_bias(Tensor::zeros({4, 3}, DType::float32, gpu), k, Tensor::zeros({3}, DType::float32, gpu));
          }) == "matmul: bias must have shape (2,), got (3,)");
}

TEST_CASE("SimpleRNN, LSTM and GRU on cuDNN: forward and gradients match the reference and the CPU") {
    std::vector<Case> cases;
    for (auto cell : {ref::Cell::simple_rnn, ref::Cell::lstm, ref::Cell::gru})
        for (bool use_bias : {true, false})
            for (bool go_backwards : {false, true})
                for (bool with_states : {false, true})
                    cases.push_back({.cell = cell, .use_bias = use_bias, .go_backwards = go_backwards,
                                     .with_states = with_states});
    cases.push_back({.cell = ref::Cell::simple_rnn, .activation = "relu"});
    cases.push_back({.cell = ref::Cell::lstm, .N = 64, .T = 20, .C = 32, .H = 48});   // cuDNN's bigger tiles
    for (const Case& c : cases) {
        CHECK(cuda().rnn_path(c.spec()).fused);
        check_case(c);
    }
}

TEST_CASE("specs cuDNN lacks run on the named CPU fallback and still match") {
    const Case gru_v1{.cell = ref::Cell::gru, .reset_after = false, .with_states = true};
    const Case hard{.cell = ref::Cell::lstm, .recurrent_activation = "hard_sigmoid"};
    const Case sigmoid_rnn{.cell = ref::Cell::simple_rnn, .activation = "sigmoid", .go_backwards = true};
    CHECK(cuda().rnn_path(gru_v1.spec()).description ==
          "CPU fallback (host round trip): reset_after=False is not supported by cuDNN's GRU (it computes the "
          "reset_after=True form)");
    CHECK(cuda().rnn_path(hard.spec()).description ==
          "CPU fallback (host round trip): recurrent_activation='hard_sigmoid' is not supported by cuDNN's LSTM "
          "(sigmoid only)");
    for (const Case& c : {gru_v1, hard, sigmoid_rnn}) {
        CHECK_FALSE(cuda().rnn_path(c.spec()).fused);
        check_case(c);
    }
    CHECK(cuda().rnn_path(Case{.cell = ref::Cell::gru}.spec()).description == "cuDNN gru");
    CHECK(cuda().rnn_path(Case{.cell = ref::Cell::simple_rnn, .activation = "relu"}.spec()).description ==
          "cuDNN rnn_relu");
}

TEST_CASE("dropout masks on the GPU run the CPU step loop (host round trip) and match the reference") {
    for (const Case& c : {Case{.cell = ref::Cell::lstm, .with_states = true}, Case{.cell = ref::Cell::gru},
                          Case{.cell = ref::Cell::simple_rnn, .go_backwards = true}}) {
        INFO(c.str());
        const Inputs in = make_inputs(c, 23);
        auto mask = [&](int width, unsigned seed) {
            ref::Vec m = ref::random_vec(static_cast<size_t>(c.N) * c.G() * width, seed, 0.0, 1.0);
            for (double& v : m) v = v < 0.3 ? 0.0 : static_cast<float>(1.0 / 0.7);
            return m;
        };
        auto cfg = c.config(true);
        cfg.recurrent_mask = mask(c.H, 31);
        if (c.cell != ref::Cell::simple_rnn) cfg.input_mask = mask(c.C, 37);
        const be::RnnDropoutMasks masks{
            .input = cfg.input_mask.empty() ? Tensor() : floats(cfg.input_mask, {c.N, c.G() * c.C}).to(gpu),
            .recurrent = floats(cfg.recurrent_mask, {c.N, c.G() * c.H}).to(gpu)};
        const auto w = weights_on(c, in, gpu);
        be::RnnForward f = cuda().rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu), w,
                                              maybe(in.h0, {c.N, c.H}, gpu), maybe(in.c0, {c.N, c.H}, gpu), true, masks);
        CHECK(f.sequences.device() == gpu);
        const auto g = cuda().rnn_backward(c.spec(), w, f, floats(in.dseq, {c.N, c.T, c.H}).to(gpu), Tensor(), Tensor());
        const auto expected = ref::rnn_forward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0);
        const auto grads = ref::rnn_backward(cfg, in.x, in.kernel, in.recurrent, in.bias, in.h0, in.c0, in.dseq);
        check_close(host_values(f.sequences), expected.y, "sequences");
        check_close(host_values(g.dx), grads.dx, "dx", 1e-5, 1e-4);
        check_close(host_values(g.dweights.kernel), grads.dkernel, "dkernel", 1e-5, 1e-4);
        check_close(host_values(g.dweights.recurrent_kernel), grads.drecurrent, "drecurrent", 1e-5, 1e-4);
    }
    be::RnnSpec spec = Case{.cell = ref::Cell::lstm}.spec();
    spec.recurrent_dropout = 0.25f;
    CHECK(cuda().rnn_path(spec).description ==
          "cuDNN lstm; training with recurrent_dropout=0.25: CPU fallback loop (host round trip)");
}

TEST_CASE("the GPU RNN names bad inputs and a reused forward pass") {
    const Case c{.cell = ref::Cell::lstm};
    const Inputs in = make_inputs(c, 3);
    const auto w = weights_on(c, in, gpu);
    CHECK(message_of([&] { cuda().rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}), w, {}, {}, false); }) ==
          "Layer \"gpu_rnn\": the input is on cpu, expected cuda:0 (move it with .to())");
    CHECK(message_of([&] {
              cuda().rnn_forward(c.spec(), Tensor::zeros({c.N, c.T, c.C + 1}, DType::float32, gpu), w, {}, {}, false);
          }) == "Layer \"gpu_rnn\": kernel must be float32 of shape (5, 24), got (4, 24)");
    auto f = cuda().rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu), w, {}, {}, true);
    const Tensor dh = floats(in.dh, {c.N, c.H}).to(gpu);
    cuda().rnn_backward(c.spec(), w, f, {}, dh, {});
    CHECK(message_of([&] { cuda().rnn_backward(c.spec(), w, f, {}, dh, {}); }) ==
          "Layer \"gpu_rnn\": this forward pass was already used by a backward pass (a fused RNN forward serves one backward: run the layer again, or ask a persistent GradientTape for its gradients in one call)");
    auto inference = cuda().rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu), w, {}, {}, false);
    CHECK(message_of([&] { cuda().rnn_backward(c.spec(), w, inference, {}, dh, {}); }) ==
          "Layer \"gpu_rnn\": rnn_backward needs a forward pass run with training=true");
}

#ifdef KERASCPP_HAVE_CUDA
TEST_CASE("per-sample lengths: each sample's states are those at its own last step") {
    auto& backend = dynamic_cast<be::CudaBackend&>(cuda());
    for (bool go_backwards : {false, true}) {
        const Case c{.cell = ref::Cell::lstm, .N = 3, .T = 6, .go_backwards = go_backwards};
        INFO(c.str());
        const Inputs in = make_inputs(c, 5);
        const std::vector<int32_t> lengths{6, 2, 4};
        const auto f = backend.rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu),
                                                        weights_on(c, in, gpu), {}, {}, false, {}, lengths);
        const auto h = host_values(f.h), cs = host_values(f.c);
        for (int n = 0; n < c.N; ++n) {
            // The reference on this sample's first lengths[n] steps alone.
            Case one = c;
            one.N = 1;
            one.T = lengths[n];
            const ref::Vec x(in.x.begin() + n * c.T * c.C, in.x.begin() + (n * c.T + lengths[n]) * c.C);
            const auto e = ref::rnn_forward(one.config(false), x, in.kernel, in.recurrent, in.bias);
            check_close(ref::Vec(h.begin() + n * c.H, h.begin() + (n + 1) * c.H), e.h, "h of sample " + std::to_string(n));
            check_close(ref::Vec(cs.begin() + n * c.H, cs.begin() + (n + 1) * c.H), e.c, "c of sample " + std::to_string(n));
        }
        CHECK(message_of([&] {
                  backend.rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu),
                                                   weights_on(c, in, gpu), {}, {}, false, {}, {6, -1, 4});
              }) == "Layer \"gpu_rnn\": sequence length -1 of sample 1 is outside [0, 6]");
        CHECK(message_of([&] {
                  backend.rnn_forward(c.spec(), floats(in.x, {c.N, c.T, c.C}).to(gpu),
                                                   weights_on(c, in, gpu), {}, {}, false, {}, {6, 6});
              }) == "Layer \"gpu_rnn\": 2 sequence lengths given for a batch of 3");
    }
}
#endif

namespace {
// Embedding -> the recurrent layer under test (return_sequences) -> another, go_backwards -> Dense.
keras::Sequential recurrent_model(const std::string& cell) {
    namespace kl = keras::layers;
    keras::Sequential model;
    model.add(kl::Input({12}));
    model.add(kl::Embedding(50, 8));
    if (cell == "SimpleRNN") {
        model.add(kl::SimpleRNN(7, {.return_sequences = true}));
        model.add(kl::SimpleRNN(5, {.activation = "relu", .go_backwards = true}));
    } else if (cell == "LSTM") {
        model.add(kl::LSTM(7, {.return_sequences = true}));
        model.add(kl::LSTM(5, {.go_backwards = true}));
    } else {
        model.add(kl::GRU(7, {.return_sequences = true}));
        model.add(kl::GRU(5, {.go_backwards = true}));
    }
    model.add(kl::Dense(3, "softmax"));
    model.compile(keras::optimizers::Adam(0.01f), "sparse_categorical_crossentropy");
    model.build({-1, 12});
    return model;
}

std::vector<double> flat(const std::vector<Tensor>& tensors) {
    std::vector<double> out;
    for (const Tensor& t : tensors) {
        const auto v = host_values(t);
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

// 16 rows of 12 token ids and 3 classes; `padded`: zeros at the ends of some rows (mask_zero's padding).
std::pair<Tensor, Tensor> token_batch(unsigned seed, bool padded = false) {
    std::vector<std::vector<int32_t>> rows;
    std::vector<std::vector<float>> labels;
    const auto ids = ref::random_vec(16 * 12, seed, 1.0, 50.0);
    const auto cls = ref::random_vec(16, seed + 1, 0.0, 3.0);
    for (int n = 0; n < 16; ++n) {
        rows.emplace_back();
        for (int t = 0; t < 12; ++t)
            rows.back().push_back(padded && t >= 12 - n % 4 ? 0 : static_cast<int32_t>(ids[n * 12 + t]));
        labels.push_back({static_cast<float>(static_cast<int>(cls[n]))});
    }
    return {Tensor::from_rows(rows), Tensor::from_rows(labels)};
}

// The model `make` builds (a Sequential or a functional Model), once on the CPU and once on the GPU
// with the same weights: predictions, the losses of three Adam steps and the weights after them agree.
template <typename MakeModel>
void check_training_matches_cpu(const MakeModel& make, const Tensor& x, const Tensor& y, unsigned seed) {
    keras::utils::set_random_seed(seed);
    auto on_cpu = make();
    keras::set_default_device(gpu);
    auto on_gpu = make();
    keras::set_default_device(Device::cpu());
    on_gpu.set_weights(on_cpu.get_weights());
    check_close(host_values(on_gpu.predict(x, {.verbose = 0})), host_values(on_cpu.predict(x, {.verbose = 0})),
                "predict");
    for (int step = 0; step < 3; ++step) {
        const double cpu_loss = on_cpu.train_on_batch(x, y).at("loss");
        const double gpu_loss = on_gpu.train_on_batch(x, y).at("loss");
        CHECK(std::abs(cpu_loss - gpu_loss) < 1e-5);
    }
    check_close(flat(on_gpu.get_weights()), flat(on_cpu.get_weights()), "weights after 3 Adam steps", 1e-5, 1e-4);
}
}  // namespace

TEST_CASE("models of every recurrent layer: predict and training steps on the GPU match the CPU") {
    const auto [x, y] = token_batch(41);
    for (const std::string cell : {"SimpleRNN", "LSTM", "GRU"}) {
        INFO(cell);
        check_training_matches_cpu([&] { return recurrent_model(cell); }, x, y, 3);
    }
}

namespace {
// Every 1-D convolution, pooling and shape layer (ops-based: the CUDA backend's generic kernels).
keras::Sequential conv_model() {
    namespace kl = keras::layers;
    keras::Sequential model;
    model.add(kl::Input({12}));
    model.add(kl::Embedding(50, 8));
    model.add(kl::Conv1D(6, 3, {.padding = "causal", .dilation_rate = 2, .groups = 2, .activation = "relu"}));
    model.add(kl::SeparableConv1D(4, 2, {.padding = "same", .depth_multiplier = 2, .activation = "tanh"}));
    model.add(kl::MaxPooling1D(2));
    model.add(kl::AveragePooling1D(2, {.strides = 1, .padding = "same"}));
    model.add(kl::ZeroPadding1D({1, 2}));
    model.add(kl::Cropping1D({2, 1}));
    model.add(kl::UpSampling1D(2));
    model.add(kl::Permute({2, 1}));
    model.add(kl::Reshape({-1, 4}));
    model.add(kl::Identity());
    model.add(kl::LSTM(5));
    model.add(kl::Dense(3, "softmax"));
    model.compile(keras::optimizers::Adam(0.01f), "sparse_categorical_crossentropy");
    model.build({-1, 12});
    return model;
}
}  // namespace

TEST_CASE("Conv1D, SeparableConv1D, the poolings and the shape layers: predict and training steps on the GPU "
          "match the CPU") {
    const auto [x, y] = token_batch(43);
    check_training_matches_cpu(conv_model, x, y, 7);
}

namespace {
// The normalization layers and the regularizers (no random layers: the two devices draw different
// numbers), between a Conv1D and a pooling.
keras::Sequential normalization_model() {
    namespace kl = keras::layers;
    keras::Sequential model;
    model.add(kl::Input({12}));
    model.add(kl::Embedding(50, 8));
    model.add(kl::BatchNormalization({.momentum = 0.9f}));
    model.add(kl::Conv1D(6, 3, {.padding = "same", .kernel_regularizer = keras::regularizers::L2(0.01)}));
    model.add(kl::LayerNormalization());
    model.add(kl::UnitNormalization());
    model.add(kl::ActivityRegularization(0.01f));
    model.add(kl::GlobalMaxPooling1D());
    model.add(kl::Dense(3, "softmax"));
    model.compile(keras::optimizers::Adam(0.01f), "sparse_categorical_crossentropy");
    model.build({-1, 12});
    return model;
}

// The attention layers over a masked embedding (MultiHeadAttention causal, Attention returning its
// scores, AdditiveAttention) and the merge layers of two inputs, as a functional model.
keras::Model attention_model() {
    namespace kl = keras::layers;
    using keras::share;
    auto ids = keras::Input({12}, {.dtype = DType::int32});
    auto e = (*share(kl::Embedding(50, 8, {.mask_zero = true})))(ids);
    auto a = (*share(kl::MultiHeadAttention(2, 4, {.use_causal_mask = true})))({e, e});
    auto b = (*share(kl::LayerNormalization()))((*share(kl::Add()))({e, a}));
    const std::vector<keras::KerasTensor> cs = share(kl::Attention({.use_scale = true}))->call_with_scores({b, e});
    auto d = (*share(kl::AdditiveAttention()))({cs[0], b});
    auto m = (*share(kl::Maximum()))({(*share(kl::Subtract()))({cs[0], d}), (*share(kl::Minimum()))({b, d})});
    auto pooled = (*share(kl::GlobalAveragePooling1D()))(m);
    auto from_scores = (*share(kl::Dense(4, "tanh")))((*share(kl::Flatten()))(cs[1]));
    auto out = (*share(kl::Dense(3, "softmax")))((*share(kl::Concatenate()))({pooled, from_scores}));
    keras::Model model({ids}, {out});
    model.compile(keras::optimizers::Adam(0.01f), "sparse_categorical_crossentropy");
    return model;
}

}  // namespace

TEST_CASE("the normalization layers and regularizers: predict and training steps on the GPU match the CPU") {
    const auto [x, y] = token_batch(45, true);
    check_training_matches_cpu(normalization_model, x, y, 9);
}

TEST_CASE("the attention and merge layers (masks, causal, scores as a node output): the GPU matches the CPU") {
    const auto [x, y] = token_batch(47, true);
    check_training_matches_cpu(attention_model, x, y, 11);
}

namespace {
// Embedding(mask_zero) -> masked recurrent layers (cuDNN with lengths, the CPU round trip, Bidirectional).
keras::Sequential masked_model(const std::string& kind) {
    namespace kl = keras::layers;
    keras::Sequential model;
    model.add(kl::Input({8}));
    model.add(kl::Embedding(20, 4, {.mask_zero = true}));
    if (kind == "LSTM") {
        model.add(kl::LSTM(5, {.return_sequences = true}));
        model.add(kl::LSTM(3, {.go_backwards = true}));
    } else if (kind == "GRU") {
        model.add(kl::GRU(5, {.return_sequences = true, .go_backwards = true}));
        model.add(kl::GRU(3, {.reset_after = false}));   // cuDNN lacks it: the CPU round trip, with lengths
    } else {
        model.add(kl::Bidirectional(kl::SimpleRNN(5, {.activation = "relu", .return_sequences = true}),
                                    {.merge_mode = "mul"}));
        model.add(kl::Bidirectional(kl::LSTM(3)));
    }
    model.add(kl::Dense(3, "softmax"));
    model.compile(keras::optimizers::Adam(0.01f), "sparse_categorical_crossentropy");
    model.build({-1, 8});
    return model;
}
}  // namespace

TEST_CASE("masked recurrent models (pre / post padding, holes, empty rows) on the GPU match the CPU") {
    const std::vector<std::vector<int32_t>> rows = {{0, 0, 0, 3, 4, 5, 6, 7}, {1, 2, 3, 0, 0, 0, 0, 0},
                                                    {0, 0, 0, 0, 0, 0, 0, 0}, {5, 0, 6, 0, 7, 0, 8, 9},
                                                    {0, 0, 0, 0, 0, 0, 0, 11}, {1, 2, 3, 4, 5, 6, 7, 8}};
    const Tensor x = Tensor::from_rows(rows), y = Tensor::from_rows(std::vector<std::vector<float>>{
                                                   {0}, {1}, {2}, {1}, {0}, {2}});
    for (const std::string kind : {"LSTM", "GRU", "Bidirectional"}) {
        INFO(kind);
        check_training_matches_cpu([&] { return masked_model(kind); }, x, y, 5);
    }
}

namespace {
// One epoch of the IMDb SimpleRNN model on `device` from the given weights; returns the epoch loss.
double imdb_epoch_loss(Device device, const Tensor& x, const Tensor& y, const std::vector<Tensor>* weights,
                       std::vector<Tensor>* initial) {
    keras::set_default_device(device);
    keras::utils::set_random_seed(42);
    keras::Sequential model;
    model.add(keras::layers::Input({x.dim(1)}));
    model.add(keras::layers::Embedding(6000, 100));
    model.add(keras::layers::SimpleRNN(16));
    model.add(keras::layers::Dense(1, "sigmoid"));
    model.compile(keras::optimizers::Adam(0.001f), "binary_crossentropy", {"accuracy"});
    model.build({-1, x.dim(1)});
    if (weights) model.set_weights(*weights);
    if (initial) *initial = model.get_weights();
    keras::utils::set_random_seed(7);   // the same shuffles on both devices
    const auto history = model.fit(x, y, {.batch_size = 64, .epochs = 1, .shuffle = true, .verbose = 0});
    keras::set_default_device(Device::cpu());
    return history["loss"].at(0);
}
}  // namespace

TEST_CASE("one epoch of the IMDb SimpleRNN model gives the same loss on CPU and GPU") {
    auto [train, test] = keras::datasets::synthetic_sentiment::load_data({.num_train = 4096, .num_test = 10});
    const Tensor x = keras::utils::pad_sequences(train.x, {.maxlen = 130});
    std::vector<Tensor> initial;
    const double cpu_loss = imdb_epoch_loss(Device::cpu(), x, train.y, nullptr, &initial);
    const double gpu_loss = imdb_epoch_loss(gpu, x, train.y, &initial, nullptr);
    MESSAGE("IMDb SimpleRNN epoch loss: CPU " << cpu_loss << ", GPU " << gpu_loss);
    CHECK(std::isfinite(cpu_loss));
    CHECK(cpu_loss < 0.75);   // binary cross-entropy starts near ln 2 = 0.693: no divergence
    CHECK(std::abs(cpu_loss - gpu_loss) < 1e-4);
}

int main(int argc, char** argv) {
    const std::string reason = keras::cuda::unavailable_reason(0);
    if (!reason.empty()) {
        std::printf("SKIPPED: no CUDA GPU: %s\n", reason.c_str());
        return 77;   // meson's "skipped"
    }
    doctest::Context context(argc, argv);
    return context.run();
}
