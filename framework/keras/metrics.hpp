// Keras metrics: stateful accumulators over an epoch (reset_state / update_state / result).
#pragma once

#include "keras/export.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keras/backend_types.hpp"
#include "keras/tensor.hpp"

namespace keras::metrics {

// Keras's Metric: reset_state(), update_state() per batch, result() for the epoch so far.
class KERAS_API Metric {
public:
    virtual ~Metric() = default;
    // The name shown in logs and History ("accuracy" even when it resolved to binary_accuracy).
    const std::string& name() const { return name_; }
    virtual void reset_state() { total_ = 0; count_ = 0; }
    // y_true / y_pred on the CPU, batch-first.
    virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
    // update_state() for an output carrying a mask (Keras's MeanMetricWrapper): `mask` has one value
    // per step of y_pred (its shape without the last axis), 1 = real, 0 = padding. Masked steps count
    // for nothing; the result is the mean over the real steps (binary_accuracy first averages its
    // elements per step). An undefined mask = update_state(). The built-in metrics implement it; a
    // metric that does not throws ValueError for a defined mask.
    virtual void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask);
    virtual double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
    // The running sum and count result() divides: a distributed model adds each batch's share of
    // them up over its workers, so every worker's result is the whole batch's.
    std::pair<double, double> state() const { return {total_, count_}; }
    void set_state(double total, double count) { total_ = total; count_ = count; }
    // What a backend needs to compute this metric on the device (Backend::metric_sum); nullopt for
    // metrics that only update on the host.
    virtual std::optional<backend::MetricSpec> device_spec() const { return std::nullopt; }
    // update_state() from Backend::metric_sum's value for a batch of these shapes (y_true already
    // checked): the same running mean, with positions and samples counted as update_state does.
    void add_position_sum(double sum, const Shape& y_true_shape, const Shape& y_pred_shape);
    // The same for Backend::metric_sum's value with a mask (its masked sum of per-step values).
    void add_masked_position_sum(double sum, const Tensor& mask);

protected:
    explicit Metric(std::string name) : name_(std::move(name)) {}
    // Keras's Mean over one batch of per-position values (all samples hold the same number of
    // positions): each sample contributes the mean of its values and the count grows by `samples`.
    void add_samplewise(const std::vector<double>& values, int64_t samples);
    // add_samplewise, or with a defined mask Keras's masked Mean: each step's value (the mean of its
    // values.size() / steps values) weighs its mask value.
    void add_values(const std::vector<double>& values, int64_t samples, const Tensor& mask, const Shape& y_pred_shape);
    double total_ = 0;   // sum of per-sample values
    double count_ = 0;   // number of samples
private:
    std::string name_;
};
// How a compiled model holds its metrics.
using MetricPtr = std::shared_ptr<Metric>;

// The fraction of y_pred > threshold that equal y_true (0 / 1).
class KERAS_API BinaryAccuracy : public Metric {
public:
    explicit BinaryAccuracy(std::string name = "binary_accuracy", float threshold = 0.5f)
        : Metric(std::move(name)), threshold(threshold) {}
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;
    std::optional<backend::MetricSpec> device_spec() const override {
        return backend::MetricSpec{backend::MetricKind::binary_accuracy, threshold};
    }
    float threshold;
};
// The fraction of samples whose argmax of y_pred is the argmax of the one-hot y_true.
class KERAS_API CategoricalAccuracy : public Metric {
public:
    explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : Metric(std::move(name)) {}
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;
    std::optional<backend::MetricSpec> device_spec() const override {
        return backend::MetricSpec{backend::MetricKind::categorical_accuracy};
    }
};
// The fraction of samples whose argmax of y_pred is the class id in y_true.
class KERAS_API SparseCategoricalAccuracy : public Metric {
public:
    explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy")
        : Metric(std::move(name)) {}
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;
    std::optional<backend::MetricSpec> device_spec() const override {
        return backend::MetricSpec{backend::MetricKind::sparse_categorical_accuracy};
    }
};
// Mean of per-sample values of a loss function ("mse", "mae" as metrics).
class KERAS_API MeanSquaredError : public Metric {
public:
    explicit MeanSquaredError(std::string name = "mean_squared_error") : Metric(std::move(name)) {}
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;
    std::optional<backend::MetricSpec> device_spec() const override {
        return backend::MetricSpec{backend::MetricKind::mean_squared_error};
    }
};
// Mean of per-sample mean absolute errors ("mae").
class KERAS_API MeanAbsoluteError : public Metric {
public:
    explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : Metric(std::move(name)) {}
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;
    std::optional<backend::MetricSpec> device_spec() const override {
        return backend::MetricSpec{backend::MetricKind::mean_absolute_error};
    }
};
// Weighted mean of scalar values (the running loss).
class KERAS_API Mean : public Metric {
public:
    explicit Mean(std::string name) : Metric(std::move(name)) {}
    void update_state(const Tensor&, const Tensor&) override {}
    void add(double value, double weight) { total_ += value * weight; count_ += weight; }
};

// A metric written as a function of ops (Keras's MeanMetricWrapper, what compile() makes of a Python
// function): fn(y_true, y_pred) returns one value per sample (or per step, which an output mask
// weighs); the metric is their running mean over the epoch.
class KERAS_API MeanMetricWrapper : public Metric {
public:
    using Function = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
    MeanMetricWrapper(Function fn, std::string name);
    void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state_masked(y_true, y_pred, {}); }
    void update_state_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask) override;

private:
    Function fn_;
};

// Makes `name` a metric that compile() (and load_model(), for a saved training config) resolves:
// Keras's custom_objects. `factory` makes a fresh metric each time.
KERAS_API void register_metric(const std::string& name, std::function<MetricPtr()> factory);

// Resolves a Keras metric string. "accuracy"/"acc" (any case) picks binary accuracy when the model
// has one output unit or the loss is binary crossentropy, sparse categorical accuracy for the sparse
// loss, categorical accuracy otherwise; the metric keeps the name the user wrote. loss_name may be any
// string losses::get accepts (or empty). Also (case-sensitive, as Keras): "binary_accuracy",
// "categorical_accuracy", "sparse_categorical_accuracy", "mse" / "MSE" / "mean_squared_error",
// "mae" / "MAE" / "mean_absolute_error" and the class names ("BinaryAccuracy", ...).
// Unknown strings throw ValueError.
KERAS_API MetricPtr get(const std::string& name, const std::string& loss_name, int64_t output_units);

}  // namespace keras::metrics
