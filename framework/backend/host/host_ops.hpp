// The generic tensor ops (backend.hpp's unary, binary, reduce, ...) as plain loops over host memory:
// the CPU backend uses them where oneDNN has no primitive, and they are what the primitives are
// checked against. float32 except the integer indices of take.
#pragma once

#include <vector>

#include "keras/backend.hpp"

namespace keras::backend::host {

// NumPy's broadcast of two shapes (ValueError naming both when they do not broadcast).
KERAS_BACKEND_API Shape broadcast_shapes(const Shape& a, const Shape& b);
// Row-major strides of a dense tensor of `shape`.
KERAS_BACKEND_API std::vector<int64_t> strides_of(const Shape& shape);
// Strides of a dense `shape` read as `out` (aligned at the right), 0 along the axes it broadcasts over.
KERAS_BACKEND_API std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out);

float unary(UnaryOp op, float x);
float binary(BinaryOp op, float a, float b);

Tensor unary(UnaryOp op, const Tensor& x);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes);
Tensor softmax(const Tensor& x, int axis, bool log);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor transpose(const Tensor& x, const std::vector<int>& perm);
Tensor concatenate(const std::vector<Tensor>& xs, int axis);
Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape);
Tensor slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor take(const Tensor& x, const Tensor& indices, int axis);
Tensor take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape);
Tensor clip(const Tensor& x, float lo, float hi);

}  // namespace keras::backend::host
