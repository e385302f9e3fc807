// Keras metrics as running means. Each update turns a batch into per-position values the way the
// Keras 3 metric function does (binary_accuracy per element, mse per row, ...); Keras's Mean then
// averages them per sample and counts samples (the first axis; 1 when the values are a scalar).
#include "keras/backend.hpp"
#include "keras/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>

#include "keras/errors.hpp"
#include "keras/losses.hpp"

namespace keras::metrics {

namespace {

std::vector<double> to_doubles(const Tensor& t) {
    std::vector<double> out(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.item(static_cast<int64_t>(i));
    return out;
}

// Number of samples in values of the given shape: the first axis, or 1 for a scalar.
int64_t samples_of(const Shape& values_shape) { return values_shape.empty() ? 1 : values_shape[0]; }

// Index of the largest value in row r (the first one on ties, like argmax).
int64_t argmax_row(const std::vector<double>& x, int64_t r, int64_t K) {
    const auto begin = x.begin() + r * K;
    return std::max_element(begin, begin + K) - begin;
}

// Per-row mean over the last axis of f(y, p) for element-wise metrics (mse, mae).
void per_row_means(const Tensor& y_true, const Tensor& y_pred, const std::function<double(double, double)>& f,
                   std::vector<double>& values, int64_t& samples) {
    const Shape shape = losses::check_same_shape(y_true.shape(), y_pred.shape());
    const std::vector<double> t = to_doubles(y_true), p = to_doubles(y_pred);
    const int64_t K = shape.empty() ? 1 : shape.back();
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    values.assign(static_cast<size_t>(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
        double sum = 0.0;
        for (int64_t j = 0; j < K; ++j) sum += f(t[r * K + j], p[r * K + j]);
        values[r] = sum / static_cast<double>(K);
    }
    // mean(..., axis=-1) drops the last axis: rank-1 inputs give one scalar, counted as one sample.
    samples = shape.size() >= 2 ? shape[0] : 1;
}

}  // namespace

void Metric::add_samplewise(const std::vector<double>& values, int64_t samples) {
    if (values.empty() || samples <= 0) return;
    double sum = 0.0;
    for (double v : values) sum += v;
    // Every sample holds values.size() / samples positions; add the sum of the per-sample means.
    total_ += sum * static_cast<double>(samples) / static_cast<double>(values.size());
    count_ += static_cast<double>(samples);
}

void Metric::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    if (!mask.defined()) return update_state(y_true, y_pred);
    value_error("Metric '{}' cannot skip masked steps: it only implements update_state(y_true, y_pred). Override "
                "update_state_masked(), or drop the mask before the output", name_);
}

namespace {
// Keras's Mean with the mask as sample weights reduces each sample to mean(value * mask) over its
// steps and counts mean(mask): over a run, sum(value * mask) / sum(mask) when all batches hold as
// many steps per sample.
double steps_per_sample(const Tensor& mask) {
    return mask.ndim() == 0 || mask.dim(0) == 0 ? 1.0 : static_cast<double>(mask.numel() / mask.dim(0));
}
}  // namespace

void Metric::add_values(const std::vector<double>& values, int64_t samples, const Tensor& mask,
                        const Shape& y_pred_shape) {
    if (!mask.defined()) return add_samplewise(values, samples);
    const std::vector<double> weights = losses::position_weights(mask, y_pred_shape);   // checks the shape
    if (weights.empty() || values.size() % weights.size() != 0)
        runtime_error("Metric '{}': {} values for {} masked steps", name_, values.size(), weights.size());
    const size_t per_step = values.size() / weights.size();
    double sum = 0.0, valid = 0.0;
    for (size_t r = 0; r < weights.size(); ++r) {
        if (weights[r] == 0.0) continue;   // a masked step: its values are not read
        double step = 0.0;
        for (size_t j = 0; j < per_step; ++j) step += values[r * per_step + j];
        sum += step / static_cast<double>(per_step);
        valid += 1.0;
    }
    total_ += sum / steps_per_sample(mask);
    count_ += valid / steps_per_sample(mask);
}

void Metric::add_masked_position_sum(double sum, const Tensor& mask) {
    const Tensor m = mask.to(Device::cpu());
    double valid = 0.0;
    for (int64_t r = 0; r < m.numel(); ++r) valid += m.item(r) != 0.0;
    total_ += sum / steps_per_sample(m);
    count_ += valid / steps_per_sample(m);
}

void Metric::add_position_sum(double sum, const Shape& y_true_shape, const Shape& y_pred_shape) {
    const auto spec = device_spec();
    if (!spec) runtime_error("Metric '{}' has no device form; call update_state()", name_);
    const int64_t K = y_pred_shape.empty() ? 1 : y_pred_shape.back();
    const int64_t rows = K > 0 ? num_elements(y_pred_shape) / K : 0;
    const Shape batch_axes(y_pred_shape.begin(), y_pred_shape.empty() ? y_pred_shape.end() : y_pred_shape.end() - 1);
    int64_t positions = rows, samples = samples_of(batch_axes);
    if (spec->kind == backend::MetricKind::binary_accuracy) {
        const Shape shape = losses::check_same_shape(y_true_shape, y_pred_shape);
        positions = num_elements(shape);
        samples = samples_of(shape);
    } else if (spec->kind == backend::MetricKind::mean_squared_error ||
               spec->kind == backend::MetricKind::mean_absolute_error) {
        const Shape shape = losses::check_same_shape(y_true_shape, y_pred_shape);
        samples = shape.size() >= 2 ? shape[0] : 1;
    }
    if (positions == 0 || samples <= 0) return;
    total_ += sum * static_cast<double>(samples) / static_cast<double>(positions);
    count_ += static_cast<double>(samples);
}

void BinaryAccuracy::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    const Shape shape = losses::check_same_shape(y_true.shape(), y_pred.shape());
    const std::vector<double> t = to_doubles(y_true), p = to_doubles(y_pred);
    std::vector<double> matches(t.size());
    // Keras: equal(y_true, cast(y_pred > threshold)), element by element.
    for (size_t i = 0; i < t.size(); ++i) matches[i] = t[i] == (p[i] > threshold ? 1.0 : 0.0) ? 1.0 : 0.0;
    add_values(matches, samples_of(shape), mask, y_pred.shape());
}

void CategoricalAccuracy::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    if (y_true.shape() != y_pred.shape() || y_pred.ndim() == 0)
        value_error("Arguments `target` and `output` must have the same shape. Received: target.shape={}, "
                    "output.shape={}", shape_str(y_true.shape()), shape_str(y_pred.shape()));
    const std::vector<double> t = to_doubles(y_true), p = to_doubles(y_pred);
    const int64_t K = y_pred.dim(-1);
    const int64_t rows = K > 0 ? y_pred.numel() / K : 0;
    std::vector<double> matches(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) matches[r] = argmax_row(t, r, K) == argmax_row(p, r, K) ? 1.0 : 0.0;
    // One match per row: the values have y_pred's shape without its last axis.
    add_values(matches, samples_of(Shape(y_pred.shape().begin(), y_pred.shape().end() - 1)), mask, y_pred.shape());
}

void SparseCategoricalAccuracy::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    // Same shape rule as the sparse loss: ids (N,) or (N, 1) against (N, K).
    losses::SparseCategoricalCrossentropy().check_shapes(y_true, y_pred.shape());
    const std::vector<double> ids = to_doubles(y_true), p = to_doubles(y_pred);
    const int64_t K = y_pred.dim(-1);
    std::vector<double> matches(ids.size());
    // Keras compares the id, cast to y_pred's float dtype, with the argmax: 1.0 matches 1, 1.5 never does.
    for (size_t r = 0; r < ids.size(); ++r)
        matches[r] = ids[r] == static_cast<double>(argmax_row(p, static_cast<int64_t>(r), K)) ? 1.0 : 0.0;
    add_values(matches, samples_of(Shape(y_pred.shape().begin(), y_pred.shape().end() - 1)), mask, y_pred.shape());
}

void MeanSquaredError::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    std::vector<double> values;
    int64_t samples = 0;
    per_row_means(y_true, y_pred, [](double y, double p) { return (y - p) * (y - p); }, values, samples);
    add_values(values, samples, mask, y_pred.shape());
}

void MeanAbsoluteError::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    std::vector<double> values;
    int64_t samples = 0;
    per_row_means(y_true, y_pred, [](double y, double p) { return std::fabs(y - p); }, values, samples);
    add_values(values, samples, mask, y_pred.shape());
}

namespace {

// The canonical Keras function name of a loss string ("mse" -> "mean_squared_error"), or the string.
std::string canonical_loss_name(const std::string& loss_name) {
    try {
        return losses::get(loss_name)->name();
    } catch (const ValueError&) {
        return loss_name;
    }
}

bool is_accuracy_alias(std::string name) {
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name == "accuracy" || name == "acc";
}

}  // namespace

namespace {
// Guards the table: compile() in one thread may look up while another thread registers.
std::mutex registry_mutex;
std::map<std::string, std::function<MetricPtr()>>& registered_metrics() {
    static std::map<std::string, std::function<MetricPtr()>> table;
    return table;
}

// The registered factory for name; empty when none is.
std::function<MetricPtr()> registered_factory(const std::string& name) {
    std::lock_guard lock(registry_mutex);
    const auto it = registered_metrics().find(name);
    return it == registered_metrics().end() ? nullptr : it->second;
}
}  // namespace

void register_metric(const std::string& name, std::function<MetricPtr()> factory) {
    if (name.empty() || !factory) value_error("register_metric: needs a name and a factory");
    std::lock_guard lock(registry_mutex);
    registered_metrics()[name] = std::move(factory);
}

MeanMetricWrapper::MeanMetricWrapper(Function fn, std::string name) : Metric(std::move(name)), fn_(std::move(fn)) {
    if (!fn_) value_error("MeanMetricWrapper \"{}\": the function is empty", this->name());
}

void MeanMetricWrapper::update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) {
    const Tensor values = fn_(y_true, y_pred).to(Device::cpu());
    if (!values.defined() || values.dtype() != DType::float32 || values.numel() == 0)
        value_error("Metric \"{}\" must return a float32 tensor of per-sample (or per-step) values", name());
    add_values(to_doubles(values), y_pred.ndim() ? y_pred.dim(0) : 1, mask, y_pred.shape());
}

MetricPtr get(const std::string& name, const std::string& loss_name, int64_t output_units) {
    if (auto factory = registered_factory(name)) return factory();
    if (is_accuracy_alias(name)) {
        const std::string loss = canonical_loss_name(loss_name);
        if (output_units == 1 || loss == "binary_crossentropy") return std::make_shared<BinaryAccuracy>(name);
        if (loss == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalAccuracy>(name);
        return std::make_shared<CategoricalAccuracy>(name);
    }
    using Factory = std::function<MetricPtr(const std::string&)>;
    const Factory binary = [](const std::string& n) { return std::make_shared<BinaryAccuracy>(n); };
    const Factory categorical = [](const std::string& n) { return std::make_shared<CategoricalAccuracy>(n); };
    const Factory sparse = [](const std::string& n) { return std::make_shared<SparseCategoricalAccuracy>(n); };
    const Factory mse = [](const std::string& n) { return std::make_shared<MeanSquaredError>(n); };
    const Factory mae = [](const std::string& n) { return std::make_shared<MeanAbsoluteError>(n); };
    const std::map<std::string, Factory> table = {
        {"binary_accuracy", binary}, {"BinaryAccuracy", binary},
        {"categorical_accuracy", categorical}, {"CategoricalAccuracy", categorical},
        {"sparse_categorical_accuracy", sparse}, {"SparseCategoricalAccuracy", sparse},
        {"mean_squared_error", mse}, {"mse", mse}, {"MSE", mse}, {"MeanSquaredError", mse},
        {"mean_absolute_error", mae}, {"mae", mae}, {"MAE", mae}, {"MeanAbsoluteError", mae},
    };
    auto it = table.find(name);
    if (it == table.end()) value_error("Could not interpret metric identifier: {}", name);
    return it->second(name);
}

}  // namespace keras::metrics
