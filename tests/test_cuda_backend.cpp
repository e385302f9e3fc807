// The CUDA backend's own parts on a GPU (the whole program is reported SKIPPED by meson, printing
// "no CUDA GPU: <reason>", where no GPU can be used):
// - tensors: host <-> device round trips, device clones / slices / copies, host accessors refusing
//   device tensors;
// - our kernels against the CPU backend on random data: every activation forward and backward,
//   softmax, multiply / add / scale_ / clip_ / sum_squares, mean_over_steps, Embedding gather and
//   scatter-add (with the deferred out-of-range error), each fused optimizer update over steps, and
//   every loss (value and gradient) and metric sum;
// - the generic tensor ops of keras::ops against the CPU backend on random shapes (broadcasting,
//   size-1 axes, ranks 0..4, empty tensors, every dtype for the moves, int32 / int64 indices), their
//   NaNs against the host loops, a chain of them without a host wait, and ops gradients;
// - the caching allocator: a warm training loop makes no cudaMalloc, and the host waits for the
//   GPU only to read results;
// - a model trained on the GPU predicts the same on the CPU, and back.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <keras/keras.hpp>

#include "host/host_ops.hpp"
#include "keras/backend.hpp"
#include "test_helpers.hpp"

using keras::Activation;
using keras::Device;
using keras::DType;
using keras::Shape;
using keras::Tensor;
using test_helpers::message_of;
namespace be = keras::backend;

namespace {

const Device gpu = Device::cuda(0);
be::Backend& cuda() { return be::get(gpu); }
be::Backend& cpu() { return be::get(Device::cpu()); }

Tensor random_tensor(Shape shape, float lo, float hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Tensor t(std::move(shape), DType::float32);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(gen);
    return t;
}

// |gpu - cpu| <= atol + rtol * |cpu| element by element (NaN matches NaN, an infinity itself);
// `gpu` is copied to the host first.
void check_close(const Tensor& gpu_result, const Tensor& cpu_result, double rtol, double atol) {
    REQUIRE(gpu_result.device() == gpu);
    const Tensor g = gpu_result.to(Device::cpu());
    REQUIRE(g.shape() == cpu_result.shape());
    const float* a = g.data<float>();
    const float* b = cpu_result.data<float>();
    int bad = 0;
    for (int64_t i = 0; i < g.numel() && bad < 5; ++i) {
        if (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) continue;   // infinities, NaNs: exactly
        if (!(std::fabs(double(a[i]) - b[i]) <= atol + rtol * std::fabs(double(b[i])))) {
            ++bad;
            FAIL_CHECK("element " << i << ": gpu " << a[i] << " cpu " << b[i]);
        }
    }
}

}  // namespace

TEST_CASE("tensors move between host and GPU unchanged, and host accessors refuse GPU tensors") {
    const Tensor host = random_tensor({3, 5}, -2, 2, 1);
    const Tensor dev = host.to(gpu);
    CHECK(dev.device() == gpu);
    CHECK(dev.shape() == host.shape());
    CHECK(dev.to(gpu).raw() == dev.raw());
    CHECK(dev.to(Device::cpu()).to_vector<float>() == host.to_vector<float>());
    CHECK(dev.clone().to(Device::cpu()).to_vector<float>() == host.to_vector<float>());
    CHECK(dev.slice_rows(1, 3).to(Device::cpu()).to_vector<float>() == host.slice_rows(1, 3).to_vector<float>());
    CHECK(dev.gather_rows({2, 0}).to(Device::cpu()).to_vector<float>() == host.gather_rows({2, 0}).to_vector<float>());
    Tensor z = Tensor::zeros({3, 5}, DType::float32, gpu);
    CHECK(z.to(Device::cpu()).to_vector<float>() == std::vector<float>(15, 0.0f));
    z.copy_from(host);
    CHECK(z.to(Device::cpu()).to_vector<float>() == host.to_vector<float>());
    CHECK(Tensor::full({4}, 1.5f, gpu).to(Device::cpu()).to_vector<float>() == std::vector<float>(4, 1.5f));
    const Tensor ids = Tensor(std::vector<int32_t>{1, 2, 3}, {3}).to(gpu);
    CHECK(ids.astype(DType::int64).to(Device::cpu()).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
    CHECK(message_of<keras::RuntimeError>([&] { dev.data<float>(); }) ==
          "Tensor of shape (3, 5) on cuda:0 accessed from the host: copy it with .to(keras::Device::cpu()) first");
    CHECK(message_of<keras::RuntimeError>([&] { dev.item(0); }).find("on cuda:0 accessed from the host") !=
          std::string::npos);
}

TEST_CASE("activations forward and backward match the CPU backend") {
    const Tensor x = random_tensor({37, 19}, -4, 4, 2);
    const Tensor dy = random_tensor({37, 19}, -1, 1, 3);
    for (Activation a : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                         Activation::softmax, Activation::hard_sigmoid, Activation::hard_sigmoid_keras2, Activation::elu,
                         Activation::selu, Activation::softplus, Activation::softsign, Activation::swish,
                         Activation::gelu, Activation::exponential}) {
        CAPTURE(keras::to_string(a));
        const Tensor y_cpu = cpu().activation(a, x);
        const Tensor y_gpu = cuda().activation(a, x.to(gpu));
        check_close(y_gpu, y_cpu, 2e-6, 1e-7);
        const Tensor dx_cpu = cpu().activation_backward(a, x, y_cpu, dy);
        const Tensor dx_gpu = cuda().activation_backward(a, x.to(gpu), y_gpu, dy.to(gpu));
        check_close(dx_gpu, dx_cpu, 1e-5, 1e-6);
    }
}

TEST_CASE("element-wise helpers and mean_over_steps match the CPU backend") {
    const Tensor a = random_tensor({6, 7, 5}, -3, 3, 4), b = random_tensor({6, 7, 5}, -3, 3, 5);
    check_close(cuda().multiply(a.to(gpu), b.to(gpu)), cpu().multiply(a, b), 0, 0);
    check_close(cuda().add(a.to(gpu), b.to(gpu)), cpu().add(a, b), 0, 0);
    Tensor sc = a.clone(), sg = a.to(gpu);
    cpu().scale_(sc, 0.37f);
    cuda().scale_(sg, 0.37f);
    check_close(sg, sc, 0, 0);
    Tensor cc = a.clone(), cg = a.to(gpu);
    cpu().clip_(cc, -1.0f, 0.5f);
    cuda().clip_(cg, -1.0f, 0.5f);
    check_close(cg, cc, 0, 0);
    CHECK(cuda().sum_squares(a.to(gpu)) == doctest::Approx(cpu().sum_squares(a)).epsilon(1e-12));
    check_close(cuda().mean_over_steps(a.to(gpu)), cpu().mean_over_steps(a), 1e-6, 1e-7);
    const Tensor dy = random_tensor({6, 5}, -1, 1, 6);
    check_close(cuda().mean_over_steps_backward(dy.to(gpu), 7), cpu().mean_over_steps_backward(dy, 7), 0, 0);
    CHECK(message_of<keras::ValueError>([&] { cuda().add(a.to(gpu), b); }) ==
          "cuda:0 backend: add operand is on cpu, expected cuda:0 (move it with .to())");
    CHECK(message_of<keras::ValueError>([&] { cuda().multiply(a.to(gpu), dy.to(gpu)); }) ==
          "multiply: shapes (6, 7, 5) and (6, 5) do not match");
}

TEST_CASE("Embedding gather and scatter-add match the CPU backend; bad ids are reported like the CPU's") {
    const Tensor table = random_tensor({50, 8}, -1, 1, 7);
    std::mt19937 gen(8);
    std::vector<int32_t> id_values(4 * 9);
    for (auto& v : id_values) v = static_cast<int32_t>(gen() % 50);
    id_values[3] = id_values[5] = 7;   // repeated ids meet in atomicAdd
    for (DType dtype : {DType::int32, DType::int64}) {
        const Tensor ids = Tensor(id_values, {4, 9}).astype(dtype);
        check_close(cuda().embedding(ids.to(gpu), table.to(gpu), "embedding"), cpu().embedding(ids, table, "embedding"),
                    0, 0);
        const Tensor dy = random_tensor({4, 9, 8}, -1, 1, 9);
        // atomicAdd sums repeated rows in any order: equal up to rounding, not bit for bit.
        check_close(cuda().embedding_backward(ids.to(gpu), dy.to(gpu), 50), cpu().embedding_backward(ids, dy, 50),
                    1e-6, 1e-7);
    }
    std::vector<int32_t> bad = id_values;
    bad[13] = 50;
    const Tensor bad_ids = Tensor(bad, {4, 9});
    const std::string cpu_message = message_of<keras::ValueError>([&] { cpu().embedding(bad_ids, table, "emb"); });
    CHECK(cpu_message == "Embedding layer \"emb\": input id 50 at position [1, 4] is outside [0, 50) (input_dim=50)");
    // The GPU finds it without stopping the host; the error comes at the next read back to the host.
    const Tensor out = cuda().embedding(bad_ids.to(gpu), table.to(gpu), "emb");
    CHECK(message_of<keras::ValueError>([&] { out.to(Device::cpu()); }) == cpu_message);
    // Reported once: the next good call and read work again.
    const Tensor good = cuda().embedding(Tensor(id_values, {4, 9}).to(gpu), table.to(gpu), "emb");
    CHECK(good.to(Device::cpu()).numel() == 4 * 9 * 8);
}

TEST_CASE("fused optimizer updates match the CPU backend over several steps") {
    const Shape shape{33, 17};
    auto grads = [&](int step) { return random_tensor(shape, -1, 1, 100 + step); };
    SUBCASE("SGD, momentum and Nesterov") {
        for (int variant = 0; variant < 3; ++variant) {
            Tensor pc = random_tensor(shape, -1, 1, 10), pg = pc.to(gpu);
            Tensor mc = variant ? Tensor::zeros(shape) : Tensor(), mg = variant ? mc.to(gpu) : Tensor();
            for (int s = 0; s < 4; ++s) {
                cpu().sgd_update(pc, grads(s), mc, 0.1f, 0.9f, variant == 2);
                cuda().sgd_update(pg, grads(s).to(gpu), mg, 0.1f, 0.9f, variant == 2);
            }
            check_close(pg, pc, 1e-6, 1e-7);
        }
    }
    SUBCASE("Adam and AMSGrad") {
        for (bool amsgrad : {false, true}) {
            Tensor pc = random_tensor(shape, -1, 1, 11), pg = pc.to(gpu);
            Tensor mc = Tensor::zeros(shape), vc = Tensor::zeros(shape), hc = amsgrad ? Tensor::zeros(shape) : Tensor();
            Tensor mg = mc.to(gpu), vg = vc.to(gpu), hg = amsgrad ? hc.to(gpu) : Tensor();
            for (int s = 1; s <= 4; ++s) {
                cpu().adam_update(pc, grads(s), mc, vc, hc, 0.01f, 0.9f, 0.999f, 1e-7f, s);
                cuda().adam_update(pg, grads(s).to(gpu), mg, vg, hg, 0.01f, 0.9f, 0.999f, 1e-7f, s);
            }
            check_close(pg, pc, 1e-6, 1e-7);
            check_close(vg, vc, 1e-6, 1e-9);
        }
    }
    SUBCASE("RMSprop plain, with momentum, centered") {
        for (int variant = 0; variant < 3; ++variant) {
            Tensor pc = random_tensor(shape, -1, 1, 12), pg = pc.to(gpu);
            Tensor vc = Tensor::zeros(shape), vg = vc.to(gpu);
            Tensor momc = variant == 1 ? Tensor::zeros(shape) : Tensor(), momg = momc.to(gpu);
            Tensor agc = variant == 2 ? Tensor::zeros(shape) : Tensor(), agg = agc.to(gpu);
            for (int s = 0; s < 4; ++s) {
                cpu().rmsprop_update(pc, grads(s), vc, momc, agc, 0.01f, 0.9f, 0.5f, 1e-7f);
                cuda().rmsprop_update(pg, grads(s).to(gpu), vg, momg, agg, 0.01f, 0.9f, 0.5f, 1e-7f);
            }
            check_close(pg, pc, 1e-6, 1e-7);
        }
    }
    SUBCASE("Adagrad") {
        Tensor pc = random_tensor(shape, -1, 1, 13), pg = pc.to(gpu);
        Tensor ac = Tensor::full(shape, 0.1f), ag = ac.to(gpu);
        for (int s = 0; s < 4; ++s) {
            cpu().adagrad_update(pc, grads(s), ac, 0.01f, 1e-7f);
            cuda().adagrad_update(pg, grads(s).to(gpu), ag, 0.01f, 1e-7f);
        }
        check_close(pg, pc, 1e-6, 1e-7);
    }
}

TEST_CASE("losses with gradients and metric sums on the GPU match the CPU backend") {
    const Tensor probs = random_tensor({16, 6}, 0.0f, 1.0f, 20);
    const Tensor logits = random_tensor({16, 6}, -4, 4, 21);
    std::vector<float> ids(16), onehot(16 * 6, 0.0f), bits(16 * 6);
    std::mt19937 gen(22);
    for (int r = 0; r < 16; ++r) {
        ids[r] = static_cast<float>(gen() % 6);
        onehot[r * 6 + static_cast<int>(ids[r])] = 1.0f;
    }
    for (auto& b : bits) b = static_cast<float>(gen() % 2);
    const Tensor sparse(ids, {16}), dense(onehot, {16, 6}), binary(bits, {16, 6});
    struct Case { be::LossSpec spec; Tensor y, p; };
    const std::vector<Case> cases{
        {{be::LossKind::binary_crossentropy, false, 0.0f}, binary, probs},
        {{be::LossKind::binary_crossentropy, false, 0.2f}, binary, probs},
        {{be::LossKind::binary_crossentropy, true, 0.1f}, binary, logits},
        {{be::LossKind::categorical_crossentropy, false, 0.1f}, dense, probs},
        {{be::LossKind::categorical_crossentropy, true, 0.0f}, dense, logits},
        {{be::LossKind::sparse_categorical_crossentropy, false, 0.0f}, sparse, probs},
        {{be::LossKind::sparse_categorical_crossentropy, true, 0.0f}, sparse, logits},
        {{be::LossKind::mean_squared_error}, binary, logits},
        {{be::LossKind::mean_absolute_error}, binary, logits},
    };
    // A mask over the 16 rows (host, as models give it): every third row masked.
    std::vector<float> mask_values(16);
    for (int r = 0; r < 16; ++r) mask_values[r] = r % 3 == 1 ? 0.0f : 1.0f;
    const Tensor mask(mask_values, {16});
    for (size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        const Case& c = cases[i];
        for (const Tensor& m : {Tensor(), mask}) {
            CAPTURE(m.defined());
            Tensor g_cpu, g_gpu;
            const Tensor v_cpu = cpu().loss(c.spec, c.y, c.p, m, &g_cpu);
            const Tensor v_gpu = cuda().loss(c.spec, c.y.to(gpu), c.p.to(gpu), m, &g_gpu);
            check_close(v_gpu, v_cpu, 1e-6, 0);
            check_close(g_gpu, g_cpu, 1e-6, 1e-9);
        }
    }
    const std::vector<std::pair<be::MetricSpec, Case>> metrics{
        {{be::MetricKind::binary_accuracy, 0.5f}, {{}, binary, probs}},
        {{be::MetricKind::binary_accuracy, 0.3f}, {{}, binary, probs}},
        {{be::MetricKind::categorical_accuracy}, {{}, dense, probs}},
        {{be::MetricKind::sparse_categorical_accuracy}, {{}, sparse, logits}},
        {{be::MetricKind::mean_squared_error}, {{}, binary, logits}},
        {{be::MetricKind::mean_absolute_error}, {{}, binary, logits}},
    };
    for (const auto& entry : metrics) {
        const be::MetricSpec& spec = entry.first;   // not structured bindings: clang 14 cannot capture those in lambdas
        const Case& c = entry.second;
        CAPTURE(static_cast<int>(spec.kind));
        check_close(cuda().metric_sum(spec, c.y.to(gpu), c.p.to(gpu), Tensor()), cpu().metric_sum(spec, c.y, c.p, Tensor()), 1e-6, 0);
        check_close(cuda().metric_sum(spec, c.y.to(gpu), c.p.to(gpu), mask), cpu().metric_sum(spec, c.y, c.p, mask), 1e-6, 0);
    }
}

namespace {
keras::Sequential small_model() {
    keras::utils::set_random_seed(3);
    keras::Sequential model;
    model.add(keras::layers::Embedding(100, 8));
    model.add(keras::layers::GlobalAveragePooling1D());
    model.add(keras::layers::Dense(1, {.activation = "sigmoid"}));
    model.compile(keras::optimizers::Adam(0.01f), "binary_crossentropy", {"accuracy"});
    return model;
}

std::pair<Tensor, Tensor> small_data() {
    std::mt19937 gen(5);
    std::vector<int32_t> ids(256 * 12);
    for (auto& v : ids) v = static_cast<int32_t>(gen() % 100);
    std::vector<float> labels(256);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = ids[i * 12] < 50 ? 1.0f : 0.0f;
    return {Tensor(ids, {256, 12}), Tensor(labels, {256, 1})};
}
}  // namespace

TEST_CASE("a warm training loop makes no cudaMalloc and waits for the GPU only to read results") {
    auto model = small_model();
    model.to(gpu);
    auto [x, y] = small_data();
    model.train_on_batch(x.slice_rows(0, 32), y.slice_rows(0, 32));   // warm-up: allocates
    const keras::cuda::MemoryStats warm = keras::cuda::memory_stats(0);
    for (int step = 1; step < 8; ++step)
        model.train_on_batch(x.slice_rows(step * 32, step * 32 + 32), y.slice_rows(step * 32, step * 32 + 32));
    const keras::cuda::MemoryStats after = keras::cuda::memory_stats(0);
    MESSAGE("driver allocations " << warm.driver_allocations << ", peak bytes " << after.peak_bytes_in_use
            << ", host waits per step " << double(after.host_synchronizations - warm.host_synchronizations) / 7);
    CHECK(after.driver_allocations == warm.driver_allocations);
    // Loss, gradient and accuracy stay on the GPU: one wait per step, the copy of the batch's values
    // for its logs after the whole step is queued.
    CHECK(after.host_synchronizations - warm.host_synchronizations == 7);

    // Forward, backward and the optimizer on their own: not a single wait.
    const Tensor xb = x.slice_rows(0, 32).to(gpu);
    const auto before = keras::cuda::memory_stats(0).host_synchronizations;
    for (int step = 0; step < 3; ++step) {
        std::vector<keras::CallContext> contexts(model.layers().size());
        Tensor h = xb;
        for (size_t i = 0; i < model.layers().size(); ++i) {
            contexts[i].training = true;
            h = model.layers()[i]->call(h, contexts[i]);
        }
        Tensor g = Tensor::full(h.shape(), 0.01f, gpu);
        for (size_t i = model.layers().size(); i-- > 0;) {
            g = model.layers()[i]->backward(g, contexts[i]);
            if (!g.defined()) break;
        }
        model.optimizer().apply_gradients(model.trainable_weights());
    }
    CHECK(keras::cuda::memory_stats(0).host_synchronizations == before);
}

TEST_CASE("a model trained on the GPU predicts the same on the CPU, and weights move both ways") {
    auto [x, y] = small_data();
    auto model = small_model();
    model.to(gpu);
    model.fit(x, y, {.batch_size = 32, .epochs = 2, .verbose = 0});
    CHECK(model.weights()[0]->value.device() == gpu);
    const Tensor on_gpu = model.predict(x, {.verbose = 0});
    CHECK(on_gpu.device() == Device::cpu());
    const auto weights = model.get_weights();
    for (const Tensor& w : weights) CHECK(w.device() == Device::cpu());

    auto cpu_model = small_model();
    cpu_model.build({-1, 12});
    cpu_model.set_weights(weights);
    check_close(on_gpu.to(gpu), cpu_model.predict(x, {.verbose = 0}), 1e-5, 1e-6);

    // And back: the GPU model takes the CPU model's weights, then the CPU model itself moves.
    model.set_weights(cpu_model.get_weights());
    CHECK(model.weights()[0]->value.device() == gpu);
    cpu_model.to(gpu);
    check_close(cpu_model.predict(x, {.verbose = 0}).to(gpu), model.predict(x, {.verbose = 0}), 0, 0);
    cpu_model.to(Device::cpu());
    CHECK(cpu_model.weights()[0]->value.device() == Device::cpu());
}

// ---------------------------------------------------------------- generic tensor ops (keras::ops)

namespace {

using be::BinaryOp;
using be::ReduceOp;
using be::UnaryOp;
using keras::shape_str;

// Element moves compare exactly, whatever the dtype.
template <typename T>
void check_equal_values(const Tensor& gpu_result, const Tensor& cpu_result) {
    REQUIRE(gpu_result.device() == gpu);
    const Tensor g = gpu_result.to(Device::cpu());
    REQUIRE(g.shape() == cpu_result.shape());
    REQUIRE(g.dtype() == cpu_result.dtype());
    CHECK(g.to_vector<T>() == cpu_result.to_vector<T>());
}

void check_equal(const Tensor& gpu_result, const Tensor& cpu_result) {
    switch (cpu_result.dtype()) {
        case DType::float32: check_close(gpu_result, cpu_result, 0, 0); break;
        case DType::int32: check_equal_values<int32_t>(gpu_result, cpu_result); break;
        case DType::int64: check_equal_values<int64_t>(gpu_result, cpu_result); break;
    }
}

// `rank` sizes in 1..4; with allow_empty, one axis is 0 now and then.
Shape random_shape(std::mt19937& gen, int rank, bool allow_empty = false) {
    std::uniform_int_distribution<int> size(1, 4);
    Shape s(rank);
    for (auto& d : s) d = size(gen);
    if (allow_empty && rank > 0 && gen() % 4 == 0) s[gen() % rank] = 0;
    return s;
}

// A shape that broadcasts to `out`: some leading axes dropped, some sizes replaced by 1.
Shape broadcast_from(std::mt19937& gen, const Shape& out) {
    const size_t drop = gen() % (out.size() + 1);
    Shape s(out.begin() + static_cast<std::ptrdiff_t>(drop), out.end());
    for (auto& d : s)
        if (gen() % 3 == 0) d = 1;
    return s;
}

// Multiples of 0.5 in [-3, 3]: equal operands, zeros and exact results occur often.
Tensor grid_tensor(Shape shape, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> step(-6, 6);
    Tensor t(std::move(shape), DType::float32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(step(gen)) * 0.5f;
    return t;
}

// Values in [lo, hi) of any dtype.
Tensor typed_tensor(Shape shape, DType dtype, int64_t lo, int64_t hi, unsigned seed) {
    if (dtype == DType::float32) return random_tensor(std::move(shape), static_cast<float>(lo), static_cast<float>(hi), seed);
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int64_t> value(lo, hi - 1);
    Tensor t(std::move(shape), dtype);
    for (int64_t i = 0; i < t.numel(); ++i) {
        if (dtype == DType::int32) t.data<int32_t>()[i] = static_cast<int32_t>(value(gen));
        else t.data<int64_t>()[i] = value(gen);
    }
    return t;
}

const DType kDTypes[] = {DType::float32, DType::int32, DType::int64};

}  // namespace

TEST_CASE("generic unary ops and clip match the CPU backend at every rank, empty tensors included") {
    const std::vector<Shape> shapes = {{}, {0}, {7}, {3, 1, 4}, {2, 3, 4, 5}, {2, 0, 3}};
    unsigned seed = 1000;
    for (int op = 0; op <= static_cast<int>(UnaryOp::reciprocal); ++op) {
        const auto u = static_cast<UnaryOp>(op);
        const bool positive = u == UnaryOp::log || u == UnaryOp::sqrt || u == UnaryOp::reciprocal;
        for (const Shape& s : shapes) {
            INFO("op " << op << " shape " << shape_str(s));
            const Tensor x = random_tensor(s, positive ? 0.1f : -4.0f, 4.0f, seed++);
            // atol 1e-5: oneDNN's log is within ~1.5e-6 of the true value near x = 1, the GPU's closer
            check_close(cuda().unary(u, x.to(gpu)), cpu().unary(u, x), 1e-5, 1e-5);
        }
    }
    for (const Shape& s : shapes) {
        const Tensor x = random_tensor(s, -2, 2, seed++);
        check_close(cuda().clip(x.to(gpu), -0.5f, 0.7f), cpu().clip(x, -0.5f, 0.7f), 0, 0);
    }
}

TEST_CASE("generic binary ops broadcast as on the CPU backend; comparisons give float 1 / 0") {
    std::mt19937 gen(11);
    std::vector<std::pair<Shape, Shape>> pairs = {{{}, {}},         {{3}, {}},         {{}, {2, 3}},
                                                  {{0, 3}, {1, 3}}, {{2, 0}, {1}},     {{4, 1, 3}, {5, 1}},
                                                  {{1, 1}, {1}},    {{2, 1, 3, 1}, {1, 4, 1, 5}}};
    for (int i = 0; i < 12; ++i) {
        const Shape out = random_shape(gen, 1 + i % 4, true);
        if (gen() % 2) pairs.emplace_back(broadcast_from(gen, out), out);
        else pairs.emplace_back(out, broadcast_from(gen, out));
    }
    unsigned seed = 2000;
    for (const auto& [sa, sb] : pairs)
        for (int op = 0; op <= static_cast<int>(BinaryOp::not_equal); ++op) {
            INFO("op " << op << ": " << shape_str(sa) << " with " << shape_str(sb));
            const auto bop = static_cast<BinaryOp>(op);
            const Tensor a = grid_tensor(sa, seed++), b = grid_tensor(sb, seed++);
            check_close(cuda().binary(bop, a.to(gpu), b.to(gpu)), cpu().binary(bop, a, b), 1e-5, 1e-6);
        }
    const Tensor a = random_tensor({2, 3}, -1, 1, 1).to(gpu), b = random_tensor({4}, -1, 1, 2).to(gpu);
    CHECK(message_of<keras::ValueError>([&] { cuda().binary(BinaryOp::add, a, b); }) ==
          message_of<keras::ValueError>([&] { cpu().binary(BinaryOp::add, a.to(Device::cpu()), b.to(Device::cpu())); }));
    CHECK(message_of<keras::ValueError>([&] { cuda().binary(BinaryOp::add, a, b.to(Device::cpu())); }) ==
          "cuda:0 backend: binary operand is on cpu, expected cuda:0 (move it with .to())");
}

TEST_CASE("generic where broadcasts its three operands as on the CPU backend") {
    std::mt19937 gen(12);
    unsigned seed = 3000;
    for (int i = 0; i < 16; ++i) {
        const Shape out = random_shape(gen, 1 + i % 4, true);
        Tensor cond = grid_tensor(broadcast_from(gen, out), seed++);
        for (int64_t j = 0; j < cond.numel(); ++j) cond.data<float>()[j] = cond.data<float>()[j] > 0 ? 1.0f : 0.0f;
        const Tensor a = grid_tensor(broadcast_from(gen, out), seed++), b = grid_tensor(broadcast_from(gen, out), seed++);
        INFO(shape_str(cond.shape()) << " " << shape_str(a.shape()) << " " << shape_str(b.shape()));
        check_close(cuda().where(cond.to(gpu), a.to(gpu), b.to(gpu)), cpu().where(cond, a, b), 0, 0);
    }
}

TEST_CASE("generic reductions over any set of axes match the CPU backend") {
    std::mt19937 gen(21);
    unsigned seed = 4000;
    for (int i = 0; i < 32; ++i) {
        const int rank = 1 + i % 4;
        const Shape s = random_shape(gen, rank, true);
        std::vector<int> axes;
        for (int a = 0; a < rank; ++a)
            if (gen() % 2) axes.push_back(a);
        if (axes.empty()) axes.push_back(static_cast<int>(gen() % rank));
        bool empty_axis = false;
        for (int a : axes) empty_axis = empty_axis || s[a] == 0;
        const Tensor x = random_tensor(s, -3, 3, seed++);
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
            if (empty_axis && (op == ReduceOp::max || op == ReduceOp::min)) continue;   // ops.max refuses these
            INFO("op " << static_cast<int>(op) << " shape " << shape_str(s) << " axes " << axes.size());
            check_close(cuda().reduce(op, x.to(gpu), axes), cpu().reduce(op, x, axes), 1e-5, 1e-6);
        }
    }
    // Long reductions: many elements per thread, and everything into one value.
    const Tensor big = random_tensor({300, 7, 40}, -1, 1, 4999);
    for (const std::vector<int>& axes : std::vector<std::vector<int>>{{0}, {1}, {0, 2}, {0, 1, 2}})
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
            INFO("op " << static_cast<int>(op) << " axes " << axes.size());
            check_close(cuda().reduce(op, big.to(gpu), axes), cpu().reduce(op, big, axes), 1e-4, 1e-4);
        }
}

TEST_CASE("generic softmax and log_softmax along every axis match the CPU backend") {
    std::mt19937 gen(31);
    unsigned seed = 5000;
    std::vector<Shape> shapes = {{3, 1000}, {1000, 3}, {2, 0, 3}, {1}, {5, 1, 2}};
    for (int i = 0; i < 8; ++i) shapes.push_back(random_shape(gen, 1 + i % 4));
    for (const Shape& s : shapes) {
        const Tensor x = random_tensor(s, -5, 5, seed++);
        for (int axis = 0; axis < static_cast<int>(s.size()); ++axis)
            for (bool log : {false, true}) {
                INFO(shape_str(s) << " axis " << axis << " log " << log);
                check_close(cuda().softmax(x.to(gpu), axis, log), cpu().softmax(x, axis, log), 1e-5, 1e-5);   // as log
            }
    }
}

TEST_CASE("generic matmul on cuBLAS matches the CPU backend, broadcast batch axes and empty sizes included") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{7, 3}, {3, 4}},         {{1, 5}, {5, 1}},       {{2, 3, 4, 5}, {2, 3, 5, 6}}, {{2, 1, 4, 5}, {1, 3, 5, 2}},
        {{1, 4, 5}, {3, 5, 2}},   {{3, 4, 5}, {1, 5, 2}}, {{0, 3}, {3, 4}},             {{2, 0}, {0, 3}},
        {{0, 2, 3}, {1, 3, 4}},   {{64, 33}, {33, 65}}};
    unsigned seed = 6000;
    for (const auto& [sa, sb] : cases) {
        INFO(shape_str(sa) << " @ " << shape_str(sb));
        const Tensor a = random_tensor(sa, -1, 1, seed++), b = random_tensor(sb, -1, 1, seed++);
        check_close(cuda().matmul(a.to(gpu), b.to(gpu)), cpu().matmul(a, b), 1e-5, 1e-5);
    }
}

TEST_CASE("generic transpose, concatenate, slice and slice_backward move every dtype as the CPU backend does") {
    std::mt19937 gen(41);
    unsigned seed = 7000;
    for (int i = 0; i < 18; ++i) {
        const int rank = 1 + i % 4;
        const DType dtype = kDTypes[i % 3];
        const Shape s = random_shape(gen, rank, true);
        INFO("shape " << shape_str(s) << " dtype " << keras::to_string(dtype));
        const Tensor x = typed_tensor(s, dtype, -50, 50, seed++);

        std::vector<int> perm(rank);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), gen);
        check_equal(cuda().transpose(x.to(gpu), perm), cpu().transpose(x, perm));

        const int axis = static_cast<int>(gen() % rank);
        std::vector<Tensor> parts_cpu, parts_gpu;
        for (int p = 0; p < 3; ++p) {
            Shape ps = s;
            ps[axis] = static_cast<int64_t>(gen() % 3);   // 0 .. 2, empty parts included
            parts_cpu.push_back(typed_tensor(ps, dtype, -50, 50, seed++));
            parts_gpu.push_back(parts_cpu.back().to(gpu));
        }
        check_equal(cuda().concatenate(parts_gpu, axis), cpu().concatenate(parts_cpu, axis));

        std::vector<int64_t> start(rank);
        Shape block(rank);
        for (int d = 0; d < rank; ++d) {
            start[d] = static_cast<int64_t>(gen() % (s[d] + 1));
            block[d] = static_cast<int64_t>(gen() % (s[d] - start[d] + 1));
        }
        check_equal(cuda().slice(x.to(gpu), start, block), cpu().slice(x, start, block));
        const Tensor dy = random_tensor(block, -1, 1, seed++);
        check_equal(cuda().slice_backward(dy.to(gpu), s, start), cpu().slice_backward(dy, s, start));
    }
}

TEST_CASE("generic take gathers and take_backward scatter-adds as the CPU backend, int32 and int64 indices") {
    std::mt19937 gen(51);
    unsigned seed = 8000;
    const std::vector<Shape> index_shapes = {{}, {5}, {2, 3}, {0}};
    for (int i = 0; i < 24; ++i) {
        const int rank = 1 + i % 4;
        const Shape s = random_shape(gen, rank);
        const int axis = static_cast<int>(gen() % rank);
        const DType index_dtype = i % 2 ? DType::int64 : DType::int32;
        const DType dtype = kDTypes[i % 3];
        const Tensor ids = typed_tensor(index_shapes[i % 4], index_dtype, 0, s[axis], seed++);   // repeats likely
        const Tensor x = typed_tensor(s, dtype, -50, 50, seed++);
        INFO("x " << shape_str(s) << " axis " << axis << " ids " << shape_str(ids.shape()) << " "
                  << keras::to_string(index_dtype));
        const Tensor y_cpu = cpu().take(x, ids, axis);
        check_equal(cuda().take(x.to(gpu), ids.to(gpu), axis), y_cpu);
        const Tensor dy = random_tensor(y_cpu.shape(), -1, 1, seed++);
        check_close(cuda().take_backward(dy.to(gpu), ids.to(gpu), axis, s), cpu().take_backward(dy, ids, axis, s),
                    1e-6, 1e-6);
    }
}

TEST_CASE("generic ops above rank 8 take the host path; bad arguments are ValueErrors naming them") {
    const Shape s9 = {2, 1, 2, 1, 2, 1, 2, 1, 3}, s9b = {1, 2, 1, 1, 2, 1, 1, 2, 3};
    const Tensor a = random_tensor(s9, -1, 1, 9100), b = random_tensor(s9b, -1, 1, 9101);
    check_close(cuda().binary(BinaryOp::multiply, a.to(gpu), b.to(gpu)), cpu().binary(BinaryOp::multiply, a, b), 0, 0);
    check_close(cuda().reduce(ReduceOp::sum, a.to(gpu), {0, 8}), cpu().reduce(ReduceOp::sum, a, {0, 8}), 1e-6, 1e-6);
    const std::vector<int> reversed = {8, 7, 6, 5, 4, 3, 2, 1, 0};
    check_equal(cuda().transpose(a.to(gpu), reversed), cpu().transpose(a, reversed));

    const Tensor x = random_tensor({2, 3}, -1, 1, 9102).to(gpu);
    CHECK(message_of<keras::ValueError>([&] { cuda().take(x, Tensor::zeros({2}, DType::float32, gpu), 0); }) ==
          "take: indices must be int32 or int64 on cuda:0");
    CHECK(message_of<keras::ValueError>([&] { cuda().concatenate({x, random_tensor({3, 3}, -1, 1, 1).to(gpu)}, 1); }) ==
          "concatenate: (3, 3) (float32) does not match (2, 3) (float32) except along axis 1");
    CHECK(message_of<keras::ValueError>([&] { cuda().slice(x, {1, 2}, {1, 2}); }) ==
          "slice: the block at (1, 2) of shape (1, 2) does not fit in (2, 3)");
    CHECK(message_of<keras::ValueError>([&] { cuda().reduce(ReduceOp::sum, x, {2}); }) ==
          "reduce: axis 2 is out of range for rank 2");
    CHECK(message_of<keras::ValueError>([&] { cuda().unary(UnaryOp::exp, x.to(Device::cpu())); }) ==
          "cuda:0 backend: unary operand is on cpu, expected cuda:0 (move it with .to())");
}

TEST_CASE("generic ops give the host loops' NaNs: relu, maximum / minimum, clip, reductions, softmax") {
    namespace host = be::host;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor x(std::vector<float>{nan, -1.0f, 2.0f, nan, 0.5f, -3.0f}, {2, 3});
    const Tensor y(std::vector<float>{1.0f, nan, nan, nan, 0.0f, -4.0f}, {2, 3});
    for (int op = 0; op <= static_cast<int>(UnaryOp::reciprocal); ++op)
        check_close(cuda().unary(static_cast<UnaryOp>(op), x.to(gpu)), host::unary(static_cast<UnaryOp>(op), x), 1e-6, 0);
    for (int op = 0; op <= static_cast<int>(BinaryOp::not_equal); ++op)
        check_close(cuda().binary(static_cast<BinaryOp>(op), x.to(gpu), y.to(gpu)),
                    host::binary(static_cast<BinaryOp>(op), x, y), 1e-6, 0);
    check_close(cuda().clip(x.to(gpu), -2.0f, 1.0f), host::clip(x, -2.0f, 1.0f), 0, 0);
    for (const std::vector<int>& axes : std::vector<std::vector<int>>{{0}, {1}, {0, 1}})
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min})
            check_close(cuda().reduce(op, x.to(gpu), axes), host::reduce(op, x, axes), 0, 0);
    for (int axis : {0, 1})
        for (bool log : {false, true})
            check_close(cuda().softmax(x.to(gpu), axis, log), host::softmax(x, axis, log), 1e-6, 0);
    // Spelled out, as Keras: relu(NaN) = NaN, maximum(NaN, 1) = maximum(-1, NaN) = NaN, max of a row
    // holding a NaN is NaN.
    CHECK(std::isnan(cuda().unary(UnaryOp::relu, x.to(gpu)).to(Device::cpu()).item(0)));
    const Tensor mx = cuda().binary(BinaryOp::maximum, x.to(gpu), y.to(gpu)).to(Device::cpu());
    CHECK(std::isnan(mx.item(0)));
    CHECK(std::isnan(mx.item(1)));
    const Tensor row_max = cuda().reduce(ReduceOp::max, x.to(gpu), {1}).to(Device::cpu());
    CHECK(std::isnan(row_max.item(0)));
    CHECK(std::isnan(row_max.item(1)));
}

TEST_CASE("generic ops run on the GPU: a chain of them never waits for the host") {
    const Tensor a = random_tensor({4, 5, 6}, -1, 1, 9000).to(gpu);
    const Tensor b = random_tensor({1, 6, 3}, -1, 1, 9001).to(gpu);
    const Tensor ids = Tensor(std::vector<int64_t>{2, 0, 2}, {3}).to(gpu);
    const Tensor half = Tensor::full({}, 0.5f, gpu);
    const auto before = keras::cuda::memory_stats(0).host_synchronizations;
    Tensor y = cuda().matmul(a, b);                                                  // (4, 5, 3)
    y = cuda().binary(BinaryOp::subtract, y, cuda().reduce(ReduceOp::mean, y, {0, 2}));
    y = cuda().softmax(y, 1, true);
    y = cuda().transpose(y, {2, 0, 1});                                              // (3, 4, 5)
    y = cuda().concatenate({y, cuda().unary(UnaryOp::tanh, y)}, 0);                  // (6, 4, 5)
    y = cuda().slice(y, {1, 0, 0}, {4, 4, 5});
    y = cuda().where(cuda().binary(BinaryOp::greater, y, half), y, cuda().clip(y, -0.1f, 0.1f));
    y = cuda().take(y, ids, 2);                                                      // (4, 4, 3)
    const Tensor dx = cuda().take_backward(y, ids, 2, {4, 4, 5});
    const Tensor full = cuda().slice_backward(dx, {6, 4, 5}, {1, 0, 0});
    CHECK(keras::cuda::memory_stats(0).host_synchronizations == before);
    CHECK(full.shape() == Shape{6, 4, 5});
}

TEST_CASE("keras::ops gradients on the GPU match the CPU's") {
    namespace ops = keras::ops;
    const Tensor x0 = random_tensor({2, 3, 4}, -1, 1, 9500), w0 = random_tensor({4, 5}, -1, 1, 9501);
    const Tensor b0 = random_tensor({5}, -1, 1, 9502);
    const Tensor ids(std::vector<int32_t>{4, 0, 2, 2}, {4});
    auto run = [&](Device d) {
        Tensor x = x0.to(d), w = w0.to(d), b = b0.to(d);
        keras::GradientTape tape;
        tape.watch(x);
        tape.watch(w);
        tape.watch(b);
        const Tensor h = ops::add(ops::matmul(x, w), b);                                   // (2, 3, 5)
        const Tensor s = ops::softmax(h, 1), l = ops::log_softmax(h, -1);
        const Tensor t = ops::take(l, ids, 2);                                             // (2, 3, 4), a repeat
        const Tensor u = ops::transpose(ops::slice(ops::transpose(s, {2, 0, 1}), {1, 0, 0}, {4, 2, 3}), {1, 2, 0});
        const Tensor c = ops::concatenate({t, u}, 1);                                      // (2, 6, 4)
        const Tensor m = ops::maximum(c, ops::multiply(c, 0.5f));
        const Tensor r = ops::where(ops::greater(c, -1.5f), ops::square(m), ops::clip(m, -0.3f, 0.3f));
        const Tensor p = ops::power(ops::add(ops::abs(r), 1.0f), 1.5f);
        const Tensor q = ops::add(ops::sum(ops::max(p, 2)), ops::mean(ops::min(p, keras::ops::Axes{0, 1})));
        const Tensor e = ops::mean(ops::divide(ops::exp(ops::tanh(x)), ops::add(ops::sigmoid(x), 1.0f)));
        const Tensor loss = ops::subtract(ops::add(q, e), ops::mean(ops::sqrt(ops::add(ops::square(h), 1.0f))));
        auto grads = tape.gradient(loss, std::vector<Tensor>{x, w, b});
        grads.push_back(loss);
        return grads;
    };
    const auto on_cpu = run(Device::cpu());
    const auto on_gpu = run(gpu);
    REQUIRE(on_gpu.size() == on_cpu.size());
    for (size_t i = 0; i < on_cpu.size(); ++i) {
        INFO("result " << i);
        REQUIRE(on_gpu[i].defined());
        check_close(on_gpu[i], on_cpu[i], 1e-4, 1e-5);
    }
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
