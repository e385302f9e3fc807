// The CUDA backend's own parts on a GPU (the whole program is reported SKIPPED by meson, printing
// "no CUDA GPU: <reason>", where no GPU can be used):
// - tensors: host <-> device round trips, device clones / slices / copies, host accessors refusing
//   device tensors;
// - our kernels against the CPU backend on random data: every activation forward and backward,
//   softmax, multiply / add / scale_ / clip_ / sum_squares, mean_over_steps, Embedding gather and
//   scatter-add (with the deferred out-of-range error), each fused optimizer update over steps, and
//   every loss (value and gradient) and metric sum;
// - the caching allocator: a warm training loop makes no cudaMalloc, and the host waits for the
//   GPU only to read results;
// - a model trained on the GPU predicts the same on the CPU, and back.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <keras/keras.hpp>

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

// |gpu - cpu| <= atol + rtol * |cpu| element by element; `gpu` is copied to the host first.
void check_close(const Tensor& gpu_result, const Tensor& cpu_result, double rtol, double atol) {
    REQUIRE(gpu_result.device() == gpu);
    const Tensor g = gpu_result.to(Device::cpu());
    REQUIRE(g.shape() == cpu_result.shape());
    const float* a = g.data<float>();
    const float* b = cpu_result.data<float>();
    int bad = 0;
    for (int64_t i = 0; i < g.numel() && bad < 5; ++i)
        if (!(std::fabs(double(a[i]) - b[i]) <= atol + rtol * std::fabs(double(b[i])))) {
            ++bad;
            FAIL_CHECK("element " << i << ": gpu " << a[i] << " cpu " << b[i]);
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

int main(int argc, char** argv) {
    const std::string reason = keras::cuda::unavailable_reason(0);
    if (!reason.empty()) {
        std::printf("SKIPPED: no CUDA GPU: %s\n", reason.c_str());
        return 77;   // meson's "skipped"
    }
    doctest::Context context(argc, argv);
    return context.run();
}
