// What the ops' source files share: axis normalisation, the sum that undoes a broadcast, and the
// backend of an op's operands.
#pragma once

#include <string>
#include <vector>

#include "keras/autodiff.hpp"
#include "keras/backend.hpp"
#include "keras/ops.hpp"

namespace keras::ops::detail {

// axis in [-ndim, ndim) -> [0, ndim); ValueError naming the op otherwise.
int normalize_axis(const std::string& op, int axis, int ndim);
// Sorted distinct axes of Axes (every axis for None).
std::vector<int> normalize_axes(const std::string& op, const Axes& axes, int ndim);
// x broadcast to `shape` (a copy; nothing recorded): sum_to's adjoint.
Tensor expand_to(const Tensor& x, const Shape& shape);
// g summed over the axes along which a tensor of `shape` was broadcast to g's shape.
Tensor sum_to(const Tensor& g, const Shape& shape);
// The operands' common device (a scalar follows the other operand); ValueError when they differ.
Device common_device(const std::string& op, const std::vector<const Operand*>& xs);
// The backend that runs an op on these tensors.
backend::Backend& backend_of(const Tensor& t);
// Refuses non-float32 inputs where an op computes in float32.
void check_float(const std::string& op, const Tensor& x);

}  // namespace keras::ops::detail
