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
#include <vector>

#include "keras/tensor.hpp"
#include "keras/variable.hpp"

namespace keras::ops {

// An op's tensor argument: a Tensor, a Variable (its value, read for gradients) or a number (a 0-d
// tensor, on the other argument's device).
struct Operand {
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
struct Axes {
    Axes() = default;   // None
    Axes(int axis) : list{axis}, all(false) {}
    Axes(std::initializer_list<int> axes) : list(axes), all(false) {}
    Axes(std::vector<int> axes) : list(std::move(axes)), all(false) {}
    std::vector<int> list;
    bool all = true;
};

// ---- Creation
Tensor convert_to_tensor(const Operand& x);
Tensor zeros(const Shape& shape, Device device = Device::cpu());
Tensor ones(const Shape& shape, Device device = Device::cpu());
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor cast(const Tensor& x, DType dtype);
// The value without its gradient (TensorFlow's tf.stop_gradient).
Tensor stop_gradient(const Tensor& x);

// ---- Element-wise
Tensor add(const Operand& x1, const Operand& x2);
Tensor subtract(const Operand& x1, const Operand& x2);
Tensor multiply(const Operand& x1, const Operand& x2);
Tensor divide(const Operand& x1, const Operand& x2);
Tensor maximum(const Operand& x1, const Operand& x2);
Tensor minimum(const Operand& x1, const Operand& x2);
Tensor power(const Operand& x1, const Operand& x2);
// Comparisons give float32 1 / 0 and no gradient.
Tensor greater(const Operand& x1, const Operand& x2);
Tensor greater_equal(const Operand& x1, const Operand& x2);
Tensor less(const Operand& x1, const Operand& x2);
Tensor less_equal(const Operand& x1, const Operand& x2);
Tensor equal(const Operand& x1, const Operand& x2);
Tensor not_equal(const Operand& x1, const Operand& x2);

Tensor negative(const Operand& x);
Tensor exp(const Operand& x);
Tensor log(const Operand& x);
Tensor tanh(const Operand& x);
Tensor sigmoid(const Operand& x);
Tensor relu(const Operand& x);
Tensor sqrt(const Operand& x);
Tensor square(const Operand& x);
Tensor abs(const Operand& x);
Tensor sign(const Operand& x);
Tensor reciprocal(const Operand& x);
Tensor softplus(const Operand& x);   // log(1 + exp(x)), computed stably
Tensor clip(const Operand& x, float x_min, float x_max);
// condition (nonzero = true) ? x1 : x2, all three broadcast.
Tensor where(const Operand& condition, const Operand& x1, const Operand& x2);

// ---- Reductions (keepdims keeps the reduced axes with size 1)
Tensor sum(const Tensor& x, const Axes& axis = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const Axes& axis = {}, bool keepdims = false);
Tensor max(const Tensor& x, const Axes& axis = {}, bool keepdims = false);
Tensor min(const Tensor& x, const Axes& axis = {}, bool keepdims = false);
Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);

// ---- Linear algebra. matmul: NumPy's rules (1-D operands become a row / column and lose that axis
// again; batch axes broadcast).
Tensor matmul(const Operand& x1, const Operand& x2);

// ---- Shapes
Tensor reshape(const Tensor& x, const Shape& newshape);   // one -1 is inferred
Tensor transpose(const Tensor& x, const std::vector<int>& axes = {});   // empty: reversed axes
Tensor expand_dims(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, const Axes& axis = {});
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor concatenate(const std::vector<Tensor>& xs, int axis = 0);
Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
// Into `sections` equal parts along axis (ValueError when it does not divide).
std::vector<Tensor> split(const Tensor& x, int sections, int axis = 0);
// Into parts at the given indices along axis: {2, 5} gives [:2], [2:5], [5:].
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& indices, int axis = 0);
// The block of `shape` at `start_indices` (Keras's ops.slice).
Tensor slice(const Tensor& inputs, const std::vector<int64_t>& start_indices, const Shape& shape);
// Entries at integer `indices` along `axis`; no axis = the flattened x (Keras's ops.take).
Tensor take(const Tensor& x, const Tensor& indices, std::optional<int> axis = std::nullopt);
Tensor one_hot(const Tensor& x, int64_t num_classes, int axis = -1);

// ---- Neural-network pieces
// Rows of `embeddings` (V, D) at the ids: (..., D). Ids out of [0, V) are a ValueError naming the
// value and its position.
Tensor embedding(const Tensor& ids, const Operand& embeddings);
// Keras's keras.random.dropout: each entry kept with probability 1 - rate and scaled by 1 / (1 - rate).
// Uses keras::utils::set_random_seed's generator.
Tensor dropout(const Tensor& x, float rate);

}  // namespace keras::ops

namespace keras {
// Arithmetic operators on tensors, as ops::add etc.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(float a, const Tensor& b);
Tensor operator/(float a, const Tensor& b);
Tensor operator-(const Tensor& a);
}  // namespace keras
