#include "ops_internal.hpp"

#include <algorithm>
#include <optional>

#include "keras/errors.hpp"

namespace keras::ops {

Operand::Operand(const VariablePtr& v) {
    if (!v) value_error("ops: a variable argument is null");
    tensor = autodiff::read(*v);
}

Operand::Operand(float value) : tensor(Tensor::full({}, value)), scalar(true) {}

namespace detail {

int normalize_axis(const std::string& op, int axis, int ndim) {
    if (axis < -ndim || axis >= std::max(ndim, 1) || (ndim == 0 && axis != 0 && axis != -1))
        value_error("ops.{}: axis {} is out of bounds for a tensor of rank {}", op, axis, ndim);
    return axis < 0 ? axis + ndim : axis;
}

std::vector<int> normalize_axes(const std::string& op, const Axes& axes, int ndim) {
    std::vector<int> out;
    if (axes.all) {
        for (int i = 0; i < ndim; ++i) out.push_back(i);
        return out;
    }
    for (int a : axes.list) out.push_back(normalize_axis(op, a, ndim));
    std::sort(out.begin(), out.end());
    if (std::adjacent_find(out.begin(), out.end()) != out.end())
        value_error("ops.{}: an axis is repeated in the axis list", op);
    return out;
}

Tensor expand_to(const Tensor& x, const Shape& shape) {
    // Adding zeros of the target shape lets the backend's broadcasting binary op do the copy.
    return backend_of(x).binary(backend::BinaryOp::add, Tensor::zeros(shape, DType::float32, x.device()), x);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
    if (g.shape() == shape) return g;
    const size_t lead = g.shape().size() - shape.size();
    std::vector<int> axes;
    for (size_t i = 0; i < g.shape().size(); ++i)
        if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(static_cast<int>(i));
    Tensor reduced = axes.empty() ? g : ops::sum(g, Axes(axes), true);
    return ops::reshape(reduced, shape);
}

Device common_device(const std::string& op, const std::vector<const Operand*>& xs) {
    std::optional<Device> device;
    for (const Operand* x : xs) {
        if (x->scalar) continue;
        if (device && *device != x->tensor.device())
            value_error("ops.{}: the arguments are on different devices ({} and {}); move one with .to()", op,
                        to_string(*device), to_string(x->tensor.device()));
        device = x->tensor.device();
    }
    return device.value_or(Device::cpu());
}

backend::Backend& backend_of(const Tensor& t) { return backend::for_tensor(t); }

void check_float(const std::string& op, const Tensor& x) {
    if (x.dtype() != DType::float32)
        value_error("ops.{}: expected a float32 tensor, received {} of shape {}", op, to_string(x.dtype()),
                    shape_str(x.shape()));
}

}  // namespace detail
}  // namespace keras::ops
