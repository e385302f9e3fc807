// keras::ops: tensor operations in Keras 3's names (keras.ops.matmul, keras.ops.sum, ...), run on the
// tensors' device by its backend (oneDNN primitives on the CPU) and recorded for automatic gradients
// while a GradientTape, or a layer's automatic backward, is recording (keras/autodiff.hpp).
//
//     Tensor call(const Tensor& x) override {            // a Dense-like layer
//         return ops::relu(ops::add(ops::matmul(x, kernel), bias));
//     }
//
// Tensors are float32 unless said (take / one_hot / embedding read int32 or int64 ids). Shapes
// broadcast as NumPy's. Axes may be negative (counted from the end). A wrong shape, axis or index
// is a ValueError naming the op and what is wrong.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keras/export.hpp"
#include "keras/tensor.hpp"
#include "keras/variable.hpp"

namespace keras::ops {

// An op's tensor argument: a Tensor, a Variable (its value, read for gradients) or a number (a 0-d
// tensor, on the other argument's device).
struct KERAS_API Operand {
    Operand(const Tensor& t) : tensor(t) {}
    Operand(const Variable& v) : tensor(v) {}
    Operand(const VariablePtr& v);
    Operand(float value);
    Operand(double value) : Operand(static_cast<float>(value)) {}
    Operand(int value) : Operand(static_cast<float>(value)) {}
    Tensor tensor;
    bool scalar = false;
};

// Keras's `axis` argument: None (every axis), one axis, or a list.
struct KERAS_API Axes {
    Axes() = default;   // None
    Axes(int axis) : list{axis}, all(false) {}
    Axes(std::initializer_list<int> axes) : list(axes), all(false) {}
    Axes(std::vector<int> axes) : list(std::move(axes)), all(false) {}
    std::vector<int> list;
    bool all = true;
};

// ---- Creation
KERAS_API Tensor convert_to_tensor(const Operand& x);   // The operand as a tensor (a number becomes a 0-d float32 tensor).
KERAS_API Tensor zeros(const Shape& shape, Device device = Device::cpu());   // float32 zeros.
KERAS_API Tensor ones(const Shape& shape, Device device = Device::cpu());   // float32 ones.
KERAS_API Tensor zeros_like(const Tensor& x);   // Zeros of x's shape and device.
KERAS_API Tensor ones_like(const Tensor& x);   // Ones of x's shape and device.
KERAS_API Tensor cast(const Tensor& x, DType dtype);   // x converted to dtype.
// The value without its gradient (TensorFlow's tf.stop_gradient).
KERAS_API Tensor stop_gradient(const Tensor& x);

// ---- Element-wise
KERAS_API Tensor add(const Operand& x1, const Operand& x2);   // x1 + x2, broadcast.
KERAS_API Tensor subtract(const Operand& x1, const Operand& x2);   // x1 - x2, broadcast.
KERAS_API Tensor multiply(const Operand& x1, const Operand& x2);   // x1 * x2, broadcast.
KERAS_API Tensor divide(const Operand& x1, const Operand& x2);   // x1 / x2, broadcast.
KERAS_API Tensor maximum(const Operand& x1, const Operand& x2);   // The larger of x1 and x2, element-wise.
KERAS_API Tensor minimum(const Operand& x1, const Operand& x2);   // The smaller of x1 and x2, element-wise.
KERAS_API Tensor power(const Operand& x1, const Operand& x2);   // x1 ** x2, element-wise.
// Comparisons give float32 1 / 0 and no gradient.
KERAS_API Tensor greater(const Operand& x1, const Operand& x2);   // x1 > x2 as 1 / 0.
KERAS_API Tensor greater_equal(const Operand& x1, const Operand& x2);   // x1 >= x2 as 1 / 0.
KERAS_API Tensor less(const Operand& x1, const Operand& x2);   // x1 < x2 as 1 / 0.
KERAS_API Tensor less_equal(const Operand& x1, const Operand& x2);   // x1 <= x2 as 1 / 0.
KERAS_API Tensor equal(const Operand& x1, const Operand& x2);   // x1 == x2 as 1 / 0.
KERAS_API Tensor not_equal(const Operand& x1, const Operand& x2);   // x1 != x2 as 1 / 0.

KERAS_API Tensor negative(const Operand& x);   // -x.
KERAS_API Tensor exp(const Operand& x);   // e ** x.
KERAS_API Tensor log(const Operand& x);   // Natural logarithm.
KERAS_API Tensor tanh(const Operand& x);   // Hyperbolic tangent.
KERAS_API Tensor sigmoid(const Operand& x);   // 1 / (1 + exp(-x)).
KERAS_API Tensor relu(const Operand& x);   // max(x, 0).
KERAS_API Tensor sqrt(const Operand& x);   // Square root.
KERAS_API Tensor square(const Operand& x);   // x * x.
KERAS_API Tensor abs(const Operand& x);   // |x|.
KERAS_API Tensor sign(const Operand& x);   // -1, 0 or 1.
KERAS_API Tensor reciprocal(const Operand& x);   // 1 / x.
KERAS_API Tensor softplus(const Operand& x);   // log(1 + exp(x)), computed stably
KERAS_API Tensor clip(const Operand& x, float x_min, float x_max);   // x limited to [x_min, x_max].
// condition (nonzero = true) ? x1 : x2, all three broadcast.
KERAS_API Tensor where(const Operand& condition, const Operand& x1, const Operand& x2);

// ---- Reductions (keepdims keeps the reduced axes with size 1)
KERAS_API Tensor sum(const Tensor& x, const Axes& axis = {}, bool keepdims = false);   // Sum over axis (every axis by default).
KERAS_API Tensor mean(const Tensor& x, const Axes& axis = {}, bool keepdims = false);   // Mean over axis.
KERAS_API Tensor max(const Tensor& x, const Axes& axis = {}, bool keepdims = false);   // Maximum over axis.
KERAS_API Tensor min(const Tensor& x, const Axes& axis = {}, bool keepdims = false);   // Minimum over axis.
// Keras's ops.argmax / argmin: int32 index of the largest / smallest value along axis (the first one
// on ties; a NaN counts as the extreme, as in numpy), over the flattened x when no axis is given.
// Any dtype; no gradient.
KERAS_API Tensor argmax(const Tensor& x, std::optional<int> axis = std::nullopt, bool keepdims = false);
KERAS_API Tensor argmin(const Tensor& x, std::optional<int> axis = std::nullopt, bool keepdims = false);   // As argmax, for the smallest value.
KERAS_API Tensor softmax(const Tensor& x, int axis = -1);   // exp(x) / sum(exp(x)) along axis.
KERAS_API Tensor log_softmax(const Tensor& x, int axis = -1);   // log(softmax(x)), computed stably.

// ---- Linear algebra. matmul: NumPy's rules (1-D operands become a row / column and lose that axis
// again; batch axes broadcast).
KERAS_API Tensor matmul(const Operand& x1, const Operand& x2);   // Matrix product (NumPy's matmul rules, see above).

// ---- Shapes
KERAS_API Tensor reshape(const Tensor& x, const Shape& newshape);   // one -1 is inferred
KERAS_API Tensor transpose(const Tensor& x, const std::vector<int>& axes = {});   // empty: reversed axes
KERAS_API Tensor expand_dims(const Tensor& x, int axis);   // A new axis of size 1 at axis.
KERAS_API Tensor squeeze(const Tensor& x, const Axes& axis = {});   // Removes axes of size 1 (all of them by default).
KERAS_API Tensor broadcast_to(const Tensor& x, const Shape& shape);   // x repeated to `shape` (NumPy's rules).
KERAS_API Tensor concatenate(const std::vector<Tensor>& xs, int axis = 0);   // Joins along an existing axis.
KERAS_API Tensor stack(const std::vector<Tensor>& xs, int axis = 0);   // Joins equal shapes along a new axis.
// Into `sections` equal parts along axis (ValueError when it does not divide).
KERAS_API std::vector<Tensor> split(const Tensor& x, int sections, int axis = 0);
// Into parts at the given indices along axis: {2, 5} gives [:2], [2:5], [5:].
KERAS_API std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& indices, int axis = 0);
// The block of `shape` at `start_indices` (Keras's ops.slice).
KERAS_API Tensor slice(const Tensor& inputs, const std::vector<int64_t>& start_indices, const Shape& shape);
// Entries at integer `indices` along `axis`; no axis = the flattened x (Keras's ops.take).
KERAS_API Tensor take(const Tensor& x, const Tensor& indices, std::optional<int> axis = std::nullopt);
KERAS_API Tensor one_hot(const Tensor& x, int64_t num_classes, int axis = -1);   // float32 one-hot of integer ids, the classes on axis.

// ---- Neural-network pieces
// Rows of `embeddings` (V, D) at the ids: (..., D). Ids out of [0, V) are a ValueError naming the
// value and its position.
KERAS_API Tensor embedding(const Tensor& ids, const Operand& embeddings);
// Keras's ops.layer_normalization: (x - mean) / sqrt(variance + epsilon) * gamma + beta, the mean and
// (biased) variance taken over `axis`; gamma / beta hold the normalized axes' values (undefined: no
// scale / no offset). rms_scaling: x / sqrt(variance + epsilon) * gamma, as Keras 3 computes it (the
// variance, not the mean square). Over the last axis alone it runs the backend's fused kernel
// (oneDNN's layer_normalization on the CPU).
KERAS_API Tensor layer_normalization(const Tensor& x, const Tensor& gamma = {}, const Tensor& beta = {},
                                     const Axes& axis = -1, float epsilon = 1e-7f, bool rms_scaling = false);

// ---- Convolution and pooling over one axis of steps (Keras's ops.conv / max_pool / average_pool on
// 3-D inputs): inputs (batch, steps, channels), or (batch, channels, steps) with channels_first.
// padding: "valid" (no padding), "same" (ceil(steps / strides) outputs, the smaller half of the
// padding in front) or, for conv only, "causal" (padding in front only, as the Conv1D layer pads; not
// an ops.conv option in Keras).
struct ConvOptions {
    int strides = 1;
    std::string padding = "valid";
    std::string data_format = "channels_last";
    int dilation_rate = 1;
};
// kernel (kernel_size, channels / groups, filters): groups = channels / kernel's second axis, each
// group of filters reading its group of channels (Keras's rule). Output (batch, out_steps, filters).
KERAS_API Tensor conv(const Tensor& inputs, const Operand& kernel, const ConvOptions& options = {});
struct PoolOptions {
    int strides = 0;   // 0: None, the pool size
    std::string padding = "valid";
    std::string data_format = "channels_last";
};
// The largest value of each window of pool_size steps; its gradient goes to the first largest.
KERAS_API Tensor max_pool(const Tensor& inputs, int64_t pool_size, const PoolOptions& options = {});
// The mean over each window's real steps (padding is not counted).
KERAS_API Tensor average_pool(const Tensor& inputs, int64_t pool_size, const PoolOptions& options = {});

// Keras's keras.random.dropout: each entry kept with probability 1 - rate and scaled by 1 / (1 - rate).
// Uses keras::utils::set_random_seed's generator.
KERAS_API Tensor dropout(const Tensor& x, float rate);

}  // namespace keras::ops

namespace keras {
// Arithmetic operators on tensors, as ops::add etc.
KERAS_API Tensor operator+(const Tensor& a, const Tensor& b);   // ops::add(a, b).
KERAS_API Tensor operator-(const Tensor& a, const Tensor& b);   // ops::subtract(a, b).
KERAS_API Tensor operator*(const Tensor& a, const Tensor& b);   // ops::multiply(a, b).
KERAS_API Tensor operator/(const Tensor& a, const Tensor& b);   // ops::divide(a, b).
KERAS_API Tensor operator+(const Tensor& a, float b);   // ops::add(a, b).
KERAS_API Tensor operator-(const Tensor& a, float b);   // ops::subtract(a, b).
KERAS_API Tensor operator*(const Tensor& a, float b);   // ops::multiply(a, b).
KERAS_API Tensor operator/(const Tensor& a, float b);   // ops::divide(a, b).
KERAS_API Tensor operator+(float a, const Tensor& b);   // ops::add(a, b).
KERAS_API Tensor operator-(float a, const Tensor& b);   // ops::subtract(a, b).
KERAS_API Tensor operator*(float a, const Tensor& b);   // ops::multiply(a, b).
KERAS_API Tensor operator/(float a, const Tensor& b);   // ops::divide(a, b).
KERAS_API Tensor operator-(const Tensor& a);   // ops::negative(a).
}  // namespace keras
