// Keras losses. Each computes the batch mean (Keras's "sum_over_batch_size" reduction) and,
// when asked, the gradient of that mean with respect to y_pred. Tensors are on the CPU.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/backend_types.hpp"
#include "keras/export.hpp"
#include "keras/tensor.hpp"

namespace keras::losses {

// Keras's Loss: the batch-mean loss and its gradient with respect to y_pred.
class KERAS_API Loss {
public:
    virtual ~Loss() = default;
    // Keras's function name, e.g. "binary_crossentropy".
    virtual std::string name() const = 0;
    // y_true: float32 of y_pred's shape, or integer class ids for the sparse loss.
    // grad (optional) receives d(mean loss)/d(y_pred), shape of y_pred.
    virtual double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const = 0;
    // The same with the output's mask (Keras's masked loss): `mask` holds one value per step of
    // y_pred (its shape without the last axis), 1 = a real step, 0 = padding. The batch value is
    // sum(loss * mask) / sum(mask), 0 when every step is masked, and masked steps get zero gradient
    // (their y_true is never read into the result). An undefined mask = compute(). The built-in
    // losses implement it; a loss that does not throws ValueError for a defined mask.
    virtual double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const;
    // Keras's loss_fn(y_true, y_pred): the batch-mean loss as a scalar (0-d) on y_pred's device, for
    // custom training loops. Under a GradientTape it is one recorded op whose backward is the loss's
    // own gradient (the fused kernel on a GPU, the double-precision formulas on the CPU).
    Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask = {}) const;
    virtual nlohmann::json get_config() const;
    // Validates y_true against y_pred's shape; throws ValueError naming both shapes.
    virtual void check_shapes(const Tensor& y_true, const Shape& y_pred_shape) const;
    // What a backend needs to compute this loss on the device (Backend::loss); nullopt for losses
    // only compute() knows (user-defined ones), which then run on the host.
    virtual std::optional<backend::LossSpec> device_spec() const { return std::nullopt; }
};
// How compile() and LossArg hold losses.
using LossPtr = std::shared_ptr<Loss>;

// The crossentropy losses' keyword arguments.
struct KERAS_API CrossentropyOptions {
    bool from_logits = false;
    float label_smoothing = 0.0f;   // binary / categorical only
};

// Keras's binary_crossentropy: y_true 0 / 1, y_pred a probability (or a logit with from_logits).
class KERAS_API BinaryCrossentropy : public Loss {
public:
    explicit BinaryCrossentropy(CrossentropyOptions options = {}) : options(options) {}
    std::string name() const override { return "binary_crossentropy"; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    std::optional<backend::LossSpec> device_spec() const override {
        return backend::LossSpec{backend::LossKind::binary_crossentropy, options.from_logits, options.label_smoothing};
    }
    nlohmann::json get_config() const override;
    CrossentropyOptions options;
};

// Keras's categorical_crossentropy: one-hot y_true against class probabilities (or logits).
class KERAS_API CategoricalCrossentropy : public Loss {
public:
    explicit CategoricalCrossentropy(CrossentropyOptions options = {}) : options(options) {}
    std::string name() const override { return "categorical_crossentropy"; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    std::optional<backend::LossSpec> device_spec() const override {
        return backend::LossSpec{backend::LossKind::categorical_crossentropy, options.from_logits, options.label_smoothing};
    }
    nlohmann::json get_config() const override;
    CrossentropyOptions options;
};

// y_true holds class ids (int32, int64 or integral floats) of shape (N,) or (N, 1) against y_pred (N, K).
// check_shapes() also checks host ids against [0, K), so a model checks all its targets up front.
// Keras's SparseCategoricalCrossentropy has no label smoothing: a nonzero label_smoothing is a ValueError.
class KERAS_API SparseCategoricalCrossentropy : public Loss {
public:
    explicit SparseCategoricalCrossentropy(CrossentropyOptions options = {});
    std::string name() const override { return "sparse_categorical_crossentropy"; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    std::optional<backend::LossSpec> device_spec() const override {
        return backend::LossSpec{backend::LossKind::sparse_categorical_crossentropy, options.from_logits, options.label_smoothing};
    }
    nlohmann::json get_config() const override;
    void check_shapes(const Tensor& y_true, const Shape& y_pred_shape) const override;
    CrossentropyOptions options;
};

// Keras's mean_squared_error ("mse").
class KERAS_API MeanSquaredError : public Loss {
public:
    std::string name() const override { return "mean_squared_error"; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    std::optional<backend::LossSpec> device_spec() const override {
        return backend::LossSpec{backend::LossKind::mean_squared_error};
    }
};

// Keras's mean_absolute_error ("mae").
class KERAS_API MeanAbsoluteError : public Loss {
public:
    std::string name() const override { return "mean_absolute_error"; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    std::optional<backend::LossSpec> device_spec() const override {
        return backend::LossSpec{backend::LossKind::mean_absolute_error};
    }
};

// A loss written as a function of ops (Keras's LossFunctionWrapper, what compile() makes of a Python
// function): fn(y_true, y_pred) returns the loss per sample, or per step (y_pred's shape without its
// last axis, which a mask then weighs); the batch value is their mean and the gradient is automatic.
//
//     auto huber = losses::LossFunctionWrapper([](const Tensor& y, const Tensor& p) {
//         Tensor e = ops::abs(ops::subtract(y, p));
//         return ops::mean(ops::where(ops::less(e, 1.0f), ops::multiply(ops::square(e), 0.5f),
//                                     ops::subtract(e, 0.5f)), -1);
//     }, "huber");
//     model.compile(optimizers::Adam(), huber);
class KERAS_API LossFunctionWrapper : public Loss {
public:
    using Function = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
    explicit LossFunctionWrapper(Function fn, std::string name = "loss_function_wrapper");
    std::string name() const override { return name_; }
    double compute(const Tensor& y_true, const Tensor& y_pred, Tensor* grad) const override {
        return compute_masked(y_true, y_pred, Tensor(), grad);
    }
    double compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask, Tensor* grad) const override;
    void check_shapes(const Tensor& y_true, const Shape& y_pred_shape) const override;
    nlohmann::json get_config() const override;

private:
    Function fn_;
    std::string name_;
};

// Makes `name` a loss that compile() and load_model() (a saved training config) resolve: Keras's
// custom_objects. `factory` makes a fresh loss each time.
KERAS_API void register_loss(const std::string& name, std::function<LossPtr()> factory);

// Keras's shape rule for element-wise losses and metrics: y_true must have y_pred's shape, except that
// a trailing axis of size 1 may be missing on either side ((N,) against (N, 1) is accepted, as Keras's
// squeeze_or_expand_to_same_rank does). Returns the common shape after that alignment; otherwise
// throws ValueError naming both shapes.
KERAS_API Shape check_same_shape(const Shape& y_true_shape, const Shape& y_pred_shape);

// Each position's weight in a loss's batch value, the positions being y_pred's shape without its
// last axis: 1/positions each without a mask (the plain mean); with one, Keras's masked mean:
// 1/valid for a real step (mask != 0), 0 for a masked one, all 0 when every step is masked.
// A mask of another shape is a ValueError naming both shapes.
KERAS_API std::vector<double> position_weights(const Tensor& mask, const Shape& y_pred_shape);

// Keras strings (case-sensitive, as in Keras): "binary_crossentropy" / "bce" / "BCE",
// "categorical_crossentropy", "sparse_categorical_crossentropy", "mean_squared_error" / "mse" / "MSE", "mean_absolute_error" / "mae" / "MAE", and the class names
// ("BinaryCrossentropy", ...). Unknown strings throw ValueError.
KERAS_API LossPtr get(const std::string& name);

}  // namespace keras::losses
