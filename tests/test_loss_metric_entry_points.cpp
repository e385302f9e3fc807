// The backends' loss and metric entry points (Backend::loss, Backend::metric_sum) on the CPU, which
// models use off the CPU: each loss and metric maps to its device form (device_spec), the CPU's
// metric_sum loops agree with the metrics' own update_state(), and Backend::loss gives what
// Loss::compute gives. The GPU's kernels are checked against these in test_cuda_backend.cpp.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/losses.hpp"
#include "keras/metrics.hpp"
#include "test_helpers.hpp"

using keras::DType;
using keras::Shape;
using keras::Tensor;
using test_helpers::message_of;
namespace be = keras::backend;

namespace {

be::Backend& cpu() { return be::get(keras::Device::cpu()); }

Tensor uniform(Shape shape, float lo, float hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Tensor t(std::move(shape), DType::float32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(gen);
    return t;
}

// Rows of probabilities (positive, not normalised: the loss normalises them).
Tensor one_hot(const std::vector<int32_t>& ids, int64_t K) {
    Tensor t = Tensor::zeros({static_cast<int64_t>(ids.size()), K});
    for (size_t r = 0; r < ids.size(); ++r) t.data<float>()[r * K + ids[r]] = 1.0f;
    return t;
}

Tensor binary_labels(Shape shape, unsigned seed) {
    Tensor t = uniform(std::move(shape), 0, 1, seed);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = t.data<float>()[i] > 0.5f ? 1.0f : 0.0f;
    return t;
}

// Two batches through update_state, and the same two batches through metric_sum + add_position_sum.
void check_metric(const std::string& name, const std::string& loss, int64_t units,
                  const std::vector<std::pair<Tensor, Tensor>>& batches) {
    CAPTURE(name);
    auto host = keras::metrics::get(name, loss, units);
    auto device_form = keras::metrics::get(name, loss, units);
    const auto spec = device_form->device_spec();
    REQUIRE(spec.has_value());
    for (const auto& [y, p] : batches) {
        host->update_state(y, p);
        const Tensor sum = cpu().metric_sum(*spec, y.astype(DType::float32), p, Tensor());
        REQUIRE(sum.shape() == Shape{1});
        device_form->add_position_sum(sum.item(0), y.shape(), p.shape());
    }
    CHECK(device_form->result() == doctest::Approx(host->result()).epsilon(1e-6));
}

}  // namespace

TEST_CASE("every built-in loss has a device form carrying its options; custom losses have none") {
    using keras::losses::CrossentropyOptions;
    const auto bce = keras::losses::BinaryCrossentropy(CrossentropyOptions{.from_logits = true, .label_smoothing = 0.2f})
                         .device_spec();
    REQUIRE(bce);
    CHECK(bce->kind == be::LossKind::binary_crossentropy);
    CHECK(bce->from_logits);
    CHECK(bce->label_smoothing == 0.2f);
    CHECK(keras::losses::get("categorical_crossentropy")->device_spec()->kind == be::LossKind::categorical_crossentropy);
    CHECK(keras::losses::get("sparse_categorical_crossentropy")->device_spec()->kind ==
          be::LossKind::sparse_categorical_crossentropy);
    CHECK(keras::losses::get("mse")->device_spec()->kind == be::LossKind::mean_squared_error);
    CHECK(keras::losses::get("mae")->device_spec()->kind == be::LossKind::mean_absolute_error);
    struct Custom : keras::losses::Loss {
        std::string name() const override { return "custom"; }
        double compute(const Tensor&, const Tensor&, Tensor*) const override { return 0.0; }
    };
    CHECK_FALSE(Custom().device_spec().has_value());
}

TEST_CASE("Backend::loss on the CPU returns Loss::compute's value as a (1,) tensor, and its gradient") {
    const Tensor probs = uniform({8, 5}, 0.01f, 1.0f, 1);
    const Tensor logits = uniform({8, 5}, -3, 3, 2);
    const std::vector<int32_t> ids{0, 4, 2, 2, 1, 3, 0, 4};
    struct Case { keras::losses::LossPtr loss; Tensor y, p; };
    using keras::losses::CrossentropyOptions;
    const std::vector<Case> cases{
        {std::make_shared<keras::losses::BinaryCrossentropy>(), binary_labels({8, 5}, 3), uniform({8, 5}, 0, 1, 4)},
        {std::make_shared<keras::losses::BinaryCrossentropy>(CrossentropyOptions{.from_logits = true, .label_smoothing = 0.1f}),
         binary_labels({8, 5}, 5), logits},
        {std::make_shared<keras::losses::CategoricalCrossentropy>(CrossentropyOptions{.label_smoothing = 0.1f}),
         one_hot(ids, 5), probs},
        {std::make_shared<keras::losses::CategoricalCrossentropy>(CrossentropyOptions{.from_logits = true}), one_hot(ids, 5),
         logits},
        {std::make_shared<keras::losses::SparseCategoricalCrossentropy>(), Tensor(ids, {8}), probs},
        {std::make_shared<keras::losses::SparseCategoricalCrossentropy>(CrossentropyOptions{.from_logits = true}),
         Tensor(ids, {8, 1}), logits},
        {std::make_shared<keras::losses::MeanSquaredError>(), uniform({8, 5}, -1, 1, 6), logits},
        {std::make_shared<keras::losses::MeanAbsoluteError>(), uniform({8, 5}, -1, 1, 7), logits},
    };
    for (const Case& c : cases) {
        CAPTURE(c.loss->name());
        Tensor expected_grad, grad;
        const double expected = c.loss->compute(c.y, c.p, &expected_grad);
        const Tensor value = cpu().loss(*c.loss->device_spec(), c.y.astype(DType::float32), c.p, Tensor(), &grad);
        REQUIRE(value.shape() == Shape{1});
        CHECK(value.item(0) == doctest::Approx(expected).epsilon(1e-7));
        CHECK(grad.to_vector<float>() == expected_grad.to_vector<float>());
    }
}

TEST_CASE("Backend::metric_sum on the CPU gives each metric's running mean, batch sizes weighted as update_state") {
    const std::vector<int32_t> ids_a{0, 4, 2, 2, 1, 3, 0}, ids_b{1, 1, 3};
    check_metric("accuracy", "binary_crossentropy", 1,
                 {{binary_labels({7, 1}, 1), uniform({7, 1}, 0, 1, 2)}, {binary_labels({3, 1}, 3), uniform({3, 1}, 0, 1, 4)}});
    check_metric("binary_accuracy", "", 4,
                 {{binary_labels({7, 4}, 5), uniform({7, 4}, 0, 1, 6)}, {binary_labels({3}, 7), uniform({3}, 0, 1, 8)}});
    check_metric("categorical_accuracy", "", 5,
                 {{one_hot(ids_a, 5), uniform({7, 5}, 0, 1, 9)}, {one_hot(ids_b, 5), uniform({3, 5}, 0, 1, 10)}});
    check_metric("sparse_categorical_accuracy", "", 5,
                 {{Tensor(ids_a, {7}), uniform({7, 5}, 0, 1, 11)}, {Tensor(ids_b, {3, 1}), uniform({3, 5}, 0, 1, 12)}});
    check_metric("mse", "", 3,
                 {{uniform({7, 3}, -1, 1, 13), uniform({7, 3}, -1, 1, 14)}, {uniform({3}, -1, 1, 15), uniform({3}, -1, 1, 16)}});
    check_metric("mae", "", 1,
                 {{uniform({7}, -1, 1, 17), uniform({7, 1}, -1, 1, 18)}, {uniform({3, 1}, -1, 1, 19), uniform({3, 1}, -1, 1, 20)}});
}

TEST_CASE("metrics without a device form refuse add_position_sum; sparse ids are checked with the targets") {
    keras::metrics::Mean mean("loss");
    CHECK(message_of<keras::RuntimeError>([&] { mean.add_position_sum(1.0, {2}, {2}); }) ==
          "Metric 'loss' has no device form; call update_state()");
    // A model checks all its targets before the first batch: the sparse loss's check_shapes sees the ids.
    const keras::losses::SparseCategoricalCrossentropy loss;
    CHECK(message_of<keras::ValueError>([&] { loss.check_shapes(Tensor(std::vector<int32_t>{0, 5, 1}, {3}), {3, 5}); }) ==
          "Received a label value of 5 which is outside the valid range of [0, 5).");
    loss.check_shapes(Tensor(std::vector<int32_t>{0, 4, 1}, {3}), {3, 5});
}
