// Keras losses with their exact gradients. Values are accumulated in double; the batch mean follows
// Keras's "sum_over_batch_size": element-wise losses average every element, crossentropies average
// the per-row losses (a row is the last axis).
#include "keras/backend.hpp"
#include "keras/losses.hpp"

#include "keras/autodiff.hpp"
#include "keras/ops.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::losses {

namespace {

// keras.config.epsilon() is 1e-7 and Keras clips float32 tensors, so the bounds are float32 values.
const double kClipLow = static_cast<double>(1e-7f);
const double kClipHigh = static_cast<double>(1.0f - 1e-7f);

// Probabilities are clipped into [kClipLow, kClipHigh]; the clip's gradient is zero outside it.
double clip_probability(double p) { return std::clamp(p, kClipLow, kClipHigh); }
bool clip_is_active(double p) { return p < kClipLow || p > kClipHigh; }

// Shortest decimal form of a float as a double, so configs read 0.1 rather than 0.10000000149.
double config_float(float f) { return std::stod(fmt::format("{}", f)); }

const float* float_data(const Tensor& y_pred) {
    if (y_pred.dtype() != DType::float32)
        value_error("y_pred must be float32, received dtype {}", to_string(y_pred.dtype()));
    return y_pred.data<float>();
}

// y_true of any dtype as doubles (Keras casts y_true to y_pred's dtype).
std::vector<double> to_doubles(const Tensor& t) {
    std::vector<double> out(static_cast<size_t>(t.numel()));
    switch (t.dtype()) {
        case DType::float32: std::copy_n(t.data<float>(), out.size(), out.begin()); break;
        case DType::int32: std::copy_n(t.data<int32_t>(), out.size(), out.begin()); break;
        case DType::int64: std::copy_n(t.data<int64_t>(), out.size(), out.begin()); break;
    }
    return out;
}

// Allocates *grad with y_pred's shape (when asked for) and returns its data, else nullptr.
float* prepare_grad(Tensor* grad, const Tensor& y_pred) {
    if (!grad) return nullptr;
    *grad = Tensor(y_pred.shape(), DType::float32);
    return grad->data<float>();
}

double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}

// Keras's reduction of an element-wise loss: each position (a row along the last axis) takes the mean
// of its K elements, and the positions are summed with `weights` (1/rows each: the plain mean; see
// position_weights for a mask). `term(y, p, &dloss_dp)` returns one element's loss.
double elementwise_mean(const Tensor& y_true, const Tensor& y_pred, const std::vector<double>& weights, Tensor* grad,
                        const std::function<double(double, double, double*)>& term) {
    const std::vector<double> t = to_doubles(y_true);
    const float* p = float_data(y_pred);
    float* g = prepare_grad(grad, y_pred);
    const size_t n = t.size();
    if (n == 0 || weights.empty()) return 0.0;
    const size_t K = n / weights.size();
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double w = weights[i / K] / static_cast<double>(K);
        if (w == 0.0) {   // a masked step: its targets are not read, so garbage there changes nothing
            if (g) g[i] = 0.0f;
            continue;
        }
        double d = 0.0;
        total += w * term(t[i], p[i], &d);
        if (g) g[i] = static_cast<float>(w * d);
    }
    return total;
}

// Crossentropy of one row against the target distribution `target` (K values). Writes
// d(row loss)/d(pred) into `g` (K values) when g is not null.
double crossentropy_row(const float* pred, const double* target, int64_t K, bool from_logits, double* g) {
    double loss = 0.0;
    if (from_logits) {
        // log_softmax(x)_j = x_j - logsumexp(x); d/dx_k = softmax_k * sum(t) - t_k.
        double mx = pred[0];
        for (int64_t j = 1; j < K; ++j) mx = std::max(mx, static_cast<double>(pred[j]));
        double sum_exp = 0.0, sum_t = 0.0;
        for (int64_t j = 0; j < K; ++j) sum_exp += std::exp(pred[j] - mx);
        const double log_sum = mx + std::log(sum_exp);
        for (int64_t j = 0; j < K; ++j) {
            loss -= target[j] * (pred[j] - log_sum);
            sum_t += target[j];
        }
        if (g)
            for (int64_t j = 0; j < K; ++j) g[j] = std::exp(pred[j] - log_sum) * sum_t - target[j];
        return loss;
    }
    // Keras normalises the row to sum 1, clips to [eps, 1 - eps], then takes -sum(t * log(q)).
    // With a_j = dL/dq_j (zero where clipped) and q = p / S: dL/dp_k = (a_k - sum_j a_j q_j) / S.
    double S = 0.0;
    for (int64_t j = 0; j < K; ++j) S += pred[j];
    double a_dot_q = 0.0;
    for (int64_t j = 0; j < K; ++j) {
        const double q = pred[j] / S;
        loss -= target[j] * std::log(clip_probability(q));
        const double a = clip_is_active(q) ? 0.0 : -target[j] / q;
        if (g) g[j] = a;
        a_dot_q += a * q;
    }
    if (g)
        for (int64_t j = 0; j < K; ++j) g[j] = (g[j] - a_dot_q) / S;
    return loss;
}

// Sum over rows of crossentropy_row with `weights` (see elementwise_mean); `fill_target(row, target)`
// writes the row's K target values.
double crossentropy_mean(const Tensor& y_pred, const std::vector<double>& weights, Tensor* grad, bool from_logits,
                         const std::function<void(int64_t, double*)>& fill_target) {
    const float* p = float_data(y_pred);
    float* g = prepare_grad(grad, y_pred);
    const int64_t K = y_pred.ndim() > 0 ? y_pred.dim(-1) : 1;
    const int64_t rows = static_cast<int64_t>(weights.size());
    if (rows == 0 || K == 0) return 0.0;
    std::vector<double> target(static_cast<size_t>(K)), row_grad(static_cast<size_t>(K));
    double total = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        if (weights[r] == 0.0) {   // a masked step (see elementwise_mean)
            if (g) std::fill_n(g + r * K, K, 0.0f);
            continue;
        }
        fill_target(r, target.data());
        total += weights[r] * crossentropy_row(p + r * K, target.data(), K, from_logits, g ? row_grad.data() : nullptr);
        if (g)
            for (int64_t j = 0; j < K; ++j) g[r * K + j] = static_cast<float>(weights[r] * row_grad[j]);
    }
    return total;
}

// Keras casts the ids to int32 (truncation toward zero), so the valid range is (-1, K).
void check_class_ids(const std::vector<double>& ids, int64_t K) {
    for (double id : ids)
        if (!(id > -1.0 && id < static_cast<double>(K)))
            value_error("Received a label value of {} which is outside the valid range of [0, {}).", id, K);
}

nlohmann::json crossentropy_config(const Loss& loss, const CrossentropyOptions& options) {
    nlohmann::json config = loss.Loss::get_config();
    config["from_logits"] = options.from_logits;
    config["label_smoothing"] = config_float(options.label_smoothing);
    config["axis"] = -1;
    return config;
}

}  // namespace

Shape check_same_shape(const Shape& y_true_shape, const Shape& y_pred_shape) {
    // Keras's squeeze_or_expand_to_same_rank: when the ranks differ by one and the longer shape ends
    // in 1, that axis is dropped (or, against a rank-1 shape, added to the shorter one).
    Shape t = y_true_shape, p = y_pred_shape;
    if (t.size() == p.size() + 1 && t.back() == 1) {
        if (p.size() == 1) p = Shape{p[0], 1}; else t.pop_back();
    } else if (p.size() == t.size() + 1 && p.back() == 1) {
        if (t.size() == 1) t = Shape{t[0], 1}; else p.pop_back();
    }
    if (t != p)
        value_error("Arguments `target` and `output` must have the same shape. Received: target.shape={}, "
                    "output.shape={}", shape_str(y_true_shape), shape_str(y_pred_shape));
    return p;
}

std::vector<double> position_weights(const Tensor& mask, const Shape& y_pred_shape) {
    const Shape positions_shape(y_pred_shape.begin(), y_pred_shape.empty() ? y_pred_shape.end() : y_pred_shape.end() - 1);
    const auto positions = static_cast<size_t>(num_elements(positions_shape));
    if (!mask.defined()) return std::vector<double>(positions, positions ? 1.0 / static_cast<double>(positions) : 0.0);
    if (mask.shape() != positions_shape)
        value_error("The output's mask has shape {}, but a loss or metric needs one mask value per step of the output "
                    "{} (its shape without the last axis, {})", shape_str(mask.shape()), shape_str(y_pred_shape),
                    shape_str(positions_shape));
    // Keras's apply_mask: a real step weighs total / valid in a mean over all `total` steps, i.e.
    // 1 / valid here; a masked step 0; divide_no_nan makes a fully masked batch's loss 0.
    const Tensor m = mask.to(Device::cpu());
    std::vector<double> weights(positions, 0.0);
    size_t valid = 0;
    for (size_t r = 0; r < positions; ++r) valid += m.item(static_cast<int64_t>(r)) != 0.0;
    for (size_t r = 0; r < positions; ++r)
        if (m.item(static_cast<int64_t>(r)) != 0.0) weights[r] = 1.0 / static_cast<double>(valid);
    return weights;
}

double Loss::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const {
    if (!mask.defined()) return compute(y_true, y_pred, grad);
    value_error("Loss '{}' cannot skip masked steps: it only implements compute(y_true, y_pred, grad). Override "
                "compute_masked(), or drop the mask before the output (e.g. no mask_zero / Masking)", name());
}

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) const {
    if (!y_true.defined() || !y_pred.defined())
        value_error("Loss '{}': y_true and y_pred must both be defined tensors", name());
    const Device d = y_pred.device();
    return custom_gradient(name(), {y_pred}, [&](const std::vector<Tensor>& in) {
        Tensor grad, value;
        // The device's fused kernel where it has one (the GPU's); the formulas on host copies otherwise.
        const auto spec = d.is_cpu() ? std::nullopt : device_spec();
        if (spec) {
            value = backend::get(d).loss(*spec, y_true.astype(DType::float32).to(d), in[0], mask, &grad);
        } else {
            const Tensor host_mask = mask.defined() ? mask.to(Device::cpu()) : mask;
            const double v = compute_masked(y_true.to(Device::cpu()), in[0].to(Device::cpu()), host_mask, &grad);
            value = Tensor(std::vector<float>{static_cast<float>(v)}, {1}).to(d);
            grad = grad.to(d);
        }
        autodiff::BackwardFn backward = [grad](const Tensor& dy) {
            return std::vector<Tensor>{ops::multiply(grad, dy)};
        };
        return std::pair{ops::reshape(value, {}), backward};
    });
}

nlohmann::json Loss::get_config() const {
    return {{"name", name()}, {"reduction", "sum_over_batch_size"}};
}

void Loss::check_shapes(const Tensor& y_true, const Shape& y_pred_shape) const {
    check_same_shape(y_true.shape(), y_pred_shape);
}

// ---- binary crossentropy

double BinaryCrossentropy::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                          Tensor* grad) const {
    check_shapes(y_true, y_pred.shape());
    const std::vector<double> weights = position_weights(mask, y_pred.shape());
    const double ls = options.label_smoothing;
    if (options.from_logits) {
        // max(x, 0) - x*y + log(1 + exp(-|x|)) is log(1+e^x) - x*y without overflow; d/dx = sigmoid(x) - y.
        return elementwise_mean(y_true, y_pred, weights, grad, [ls](double y, double x, double* d) {
            y = y * (1.0 - ls) + 0.5 * ls;
            *d = sigmoid(x) - y;
            return std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
        });
    }
    return elementwise_mean(y_true, y_pred, weights, grad, [ls](double y, double p, double* d) {
        y = y * (1.0 - ls) + 0.5 * ls;
        const double q = clip_probability(p);
        *d = clip_is_active(p) ? 0.0 : -y / q + (1.0 - y) / (1.0 - q);
        return -(y * std::log(q) + (1.0 - y) * std::log(1.0 - q));
    });
}

nlohmann::json BinaryCrossentropy::get_config() const { return crossentropy_config(*this, options); }

// ---- categorical crossentropy

double CategoricalCrossentropy::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                               Tensor* grad) const {
    check_shapes(y_true, y_pred.shape());
    const std::vector<double> weights = position_weights(mask, y_pred.shape());
    const std::vector<double> t = to_doubles(y_true);
    const int64_t K = y_pred.ndim() > 0 ? y_pred.dim(-1) : 1;
    const double ls = options.label_smoothing;
    // Keras smooths one-hot targets towards the uniform distribution: y * (1 - ls) + ls / K.
    return crossentropy_mean(y_pred, weights, grad, options.from_logits, [&](int64_t row, double* target) {
        for (int64_t j = 0; j < K; ++j) target[j] = t[row * K + j] * (1.0 - ls) + ls / static_cast<double>(K);
    });
}

nlohmann::json CategoricalCrossentropy::get_config() const { return crossentropy_config(*this, options); }

// ---- sparse categorical crossentropy

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(CrossentropyOptions options) : options(options) {
    if (options.label_smoothing != 0.0f)
        value_error("SparseCategoricalCrossentropy does not support `label_smoothing`. Received: "
                    "label_smoothing={}", options.label_smoothing);
}

void SparseCategoricalCrossentropy::check_shapes(const Tensor& y_true, const Shape& y_pred_shape) const {
    if (y_pred_shape.empty())
        value_error("Argument `output` must be at least rank 1. Received: output.shape={}", shape_str(y_pred_shape));
    // Class ids of shape (N, 1) are squeezed to (N,), then must match y_pred without its class axis.
    Shape ids = y_true.shape();
    if (ids.size() == y_pred_shape.size() && ids.back() == 1) ids.pop_back();
    if (ids != Shape(y_pred_shape.begin(), y_pred_shape.end() - 1))
        value_error("Arguments `target` and `output` must have the same shape up until the last dimension: "
                    "target.shape={}, output.shape={}", shape_str(y_true.shape()), shape_str(y_pred_shape));
    if (y_true.device().is_cpu()) check_class_ids(to_doubles(y_true), y_pred_shape.back());
}

double SparseCategoricalCrossentropy::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                                     Tensor* grad) const {
    check_shapes(y_true, y_pred.shape());
    const std::vector<double> weights = position_weights(mask, y_pred.shape());
    const std::vector<double> ids = to_doubles(y_true);
    const int64_t K = y_pred.dim(-1);
    return crossentropy_mean(y_pred, weights, grad, options.from_logits, [&](int64_t row, double* target) {
        std::fill_n(target, K, 0.0);
        target[static_cast<int64_t>(ids[row])] = 1.0;
    });
}

nlohmann::json SparseCategoricalCrossentropy::get_config() const {
    nlohmann::json config = Loss::get_config();
    config["from_logits"] = options.from_logits;
    config["ignore_class"] = nullptr;
    return config;
}

// ---- regression losses

double MeanSquaredError::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                        Tensor* grad) const {
    check_shapes(y_true, y_pred.shape());
    const std::vector<double> weights = position_weights(mask, y_pred.shape());
    return elementwise_mean(y_true, y_pred, weights, grad, [](double y, double p, double* d) {
        *d = 2.0 * (p - y);
        return (p - y) * (p - y);
    });
}

double MeanAbsoluteError::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                         Tensor* grad) const {
    check_shapes(y_true, y_pred.shape());
    const std::vector<double> weights = position_weights(mask, y_pred.shape());
    // The derivative of |p - y| is sign(p - y), 0 at p == y (as in TensorFlow and JAX).
    return elementwise_mean(y_true, y_pred, weights, grad, [](double y, double p, double* d) {
        *d = p > y ? 1.0 : (p < y ? -1.0 : 0.0);
        return std::fabs(p - y);
    });
}

// ---- lookup by Keras identifier

namespace {
// Guards the table: compile() in one thread may look up while another thread registers.
std::mutex registry_mutex;
std::map<std::string, std::function<LossPtr()>>& registered_losses() {
    static std::map<std::string, std::function<LossPtr()>> table;
    return table;
}

// The registered factory for name; empty when none is.
std::function<LossPtr()> registered_factory(const std::string& name) {
    std::lock_guard lock(registry_mutex);
    const auto it = registered_losses().find(name);
    return it == registered_losses().end() ? nullptr : it->second;
}
}  // namespace

void register_loss(const std::string& name, std::function<LossPtr()> factory) {
    if (name.empty() || !factory) value_error("register_loss: needs a name and a factory");
    std::lock_guard lock(registry_mutex);
    registered_losses()[name] = std::move(factory);
}

LossPtr get(const std::string& name) {
    if (auto factory = registered_factory(name)) return factory();
    using Factory = std::function<LossPtr()>;
    static const std::map<std::string, Factory> table = {
        {"binary_crossentropy", [] { return std::make_shared<BinaryCrossentropy>(); }},
        {"bce", [] { return std::make_shared<BinaryCrossentropy>(); }},
        {"BCE", [] { return std::make_shared<BinaryCrossentropy>(); }},
        {"BinaryCrossentropy", [] { return std::make_shared<BinaryCrossentropy>(); }},
        {"categorical_crossentropy", [] { return std::make_shared<CategoricalCrossentropy>(); }},
        {"CategoricalCrossentropy", [] { return std::make_shared<CategoricalCrossentropy>(); }},
        {"sparse_categorical_crossentropy", [] { return std::make_shared<SparseCategoricalCrossentropy>(); }},
        {"SparseCategoricalCrossentropy", [] { return std::make_shared<SparseCategoricalCrossentropy>(); }},
        {"mean_squared_error", [] { return std::make_shared<MeanSquaredError>(); }},
        {"mse", [] { return std::make_shared<MeanSquaredError>(); }},
        {"MSE", [] { return std::make_shared<MeanSquaredError>(); }},
        {"MeanSquaredError", [] { return std::make_shared<MeanSquaredError>(); }},
        {"mean_absolute_error", [] { return std::make_shared<MeanAbsoluteError>(); }},
        {"mae", [] { return std::make_shared<MeanAbsoluteError>(); }},
        {"MAE", [] { return std::make_shared<MeanAbsoluteError>(); }},
        {"MeanAbsoluteError", [] { return std::make_shared<MeanAbsoluteError>(); }},
    };
    auto it = table.find(name);
    if (it == table.end()) value_error("Could not interpret loss identifier: {}", name);
    return it->second();
}

}  // namespace keras::losses
