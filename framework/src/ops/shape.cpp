// Ops that move or select elements (reshape, transpose, concatenate, slice, take, ...) and their gradients.
#include <numeric>

#include "keras/errors.hpp"
#include "ops_internal.hpp"

namespace keras::ops {

using detail::backend_of;

namespace {
std::vector<int> inverse(const std::vector<int>& perm) {
    std::vector<int> inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int>(i);
    return inv;
}

int64_t index_value(const Tensor& ids, int64_t i) {
    return ids.dtype() == DType::int64 ? ids.data<int64_t>()[i] : ids.data<int32_t>()[i];
}

// Integer ids checked against [0, size) on the host; the error names the value and its position.
void check_indices(const std::string& op, const Tensor& indices, int64_t size) {
    if (indices.dtype() == DType::float32)
        value_error("ops.{}: indices must be int32 or int64, received float32", op);
    const Tensor host = indices.to(Device::cpu());
    for (int64_t i = 0; i < host.numel(); ++i) {
        const int64_t v = index_value(host, i);
        if (v < 0 || v >= size)
            value_error("ops.{}: index {} at position {} is out of range [0, {})", op, v,
                        index_str(host.shape(), i), size);
    }
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& newshape) {
    Tensor y = x.reshape(newshape);
    return autodiff::record("reshape", y, {x}, [shape = x.shape()](const Tensor& dy) {
        return std::vector<Tensor>{dy.reshape(shape)};
    });
}

Tensor transpose(const Tensor& x, const std::vector<int>& axes) {
    std::vector<int> perm;
    if (axes.empty()) {
        for (int i = x.ndim() - 1; i >= 0; --i) perm.push_back(i);
    } else {
        if (static_cast<int>(axes.size()) != x.ndim())
            value_error("ops.transpose: axes has {} entries for a tensor of rank {}", axes.size(), x.ndim());
        for (int a : axes) perm.push_back(detail::normalize_axis("transpose", a, x.ndim()));
        auto sorted = perm;
        std::sort(sorted.begin(), sorted.end());
        for (int i = 0; i < x.ndim(); ++i)
            if (sorted[i] != i) value_error("ops.transpose: axes must be a permutation of 0..{}", x.ndim() - 1);
    }
    Tensor y = backend_of(x).transpose(x, perm);
    return autodiff::record("transpose", y, {x}, [inv = inverse(perm)](const Tensor& dy) {
        return std::vector<Tensor>{backend_of(dy).transpose(dy, inv)};
    });
}

Tensor expand_dims(const Tensor& x, int axis) {
    const int a = detail::normalize_axis("expand_dims", axis, x.ndim() + 1);
    Shape shape = x.shape();
    shape.insert(shape.begin() + a, 1);
    return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, const Axes& axis) {
    Shape shape;
    if (axis.all) {
        for (int64_t d : x.shape())
            if (d != 1) shape.push_back(d);
    } else {
        const auto axes = detail::normalize_axes("squeeze", axis, x.ndim());
        for (int i = 0; i < x.ndim(); ++i) {
            const bool drop = std::find(axes.begin(), axes.end(), i) != axes.end();
            if (drop && x.shape()[i] != 1)
                value_error("ops.squeeze: cannot squeeze axis {} of size {} (shape {})", i, x.shape()[i],
                            shape_str(x.shape()));
            if (!drop) shape.push_back(x.shape()[i]);
        }
    }
    return reshape(x, shape);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
    detail::check_float("broadcast_to", x);
    if (x.ndim() > static_cast<int>(shape.size()))
        value_error("ops.broadcast_to: cannot broadcast shape {} to {}", shape_str(x.shape()), shape_str(shape));
    for (size_t i = 0; i < x.shape().size(); ++i) {
        const int64_t from = x.shape()[i], to = shape[shape.size() - x.shape().size() + i];
        if (from != to && from != 1)
            value_error("ops.broadcast_to: cannot broadcast shape {} to {}", shape_str(x.shape()), shape_str(shape));
    }
    Tensor y = detail::expand_to(x, shape);
    return autodiff::record("broadcast_to", y, {x}, [xs = x.shape()](const Tensor& dy) {
        return std::vector<Tensor>{detail::sum_to(dy, xs)};
    });
}

Tensor concatenate(const std::vector<Tensor>& xs, int axis) {
    if (xs.empty()) value_error("ops.concatenate: needs at least one tensor");
    const int nd = xs[0].ndim();
    if (nd == 0) value_error("ops.concatenate: zero-dimensional tensors cannot be concatenated");
    const int a = detail::normalize_axis("concatenate", axis, nd);
    for (size_t i = 1; i < xs.size(); ++i) {
        Shape s0 = xs[0].shape(), si = xs[i].shape();
        bool ok = si.size() == s0.size() && xs[i].dtype() == xs[0].dtype() && xs[i].device() == xs[0].device();
        if (ok) s0[a] = si[a];
        if (!ok || s0 != si)
            value_error("ops.concatenate: tensor {} has shape {} ({}), which does not match {} ({}) except along axis {}",
                        i, shape_str(xs[i].shape()), to_string(xs[i].dtype()), shape_str(xs[0].shape()),
                        to_string(xs[0].dtype()), a);
    }
    Tensor y = backend_of(xs[0]).concatenate(xs, a);
    std::vector<Shape> shapes;
    for (const auto& x : xs) shapes.push_back(x.shape());
    return autodiff::record("concatenate", y, xs, [shapes, a](const Tensor& dy) {
        std::vector<Tensor> out;
        std::vector<int64_t> start(dy.ndim(), 0);
        for (const auto& s : shapes) {
            out.push_back(backend_of(dy).slice(dy, start, s));
            start[a] += s[a];
        }
        return out;
    });
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
    if (xs.empty()) value_error("ops.stack: needs at least one tensor");
    const int a = detail::normalize_axis("stack", axis, xs[0].ndim() + 1);
    std::vector<Tensor> expanded;
    for (const auto& x : xs) {
        if (x.shape() != xs[0].shape())
            value_error("ops.stack: all tensors must have one shape; received {} and {}", shape_str(xs[0].shape()),
                        shape_str(x.shape()));
        expanded.push_back(expand_dims(x, a));
    }
    return concatenate(expanded, a);
}

Tensor slice(const Tensor& inputs, const std::vector<int64_t>& start_indices, const Shape& shape) {
    if (static_cast<int>(start_indices.size()) != inputs.ndim() || static_cast<int>(shape.size()) != inputs.ndim())
        value_error("ops.slice: start_indices ({}) and shape ({}) need one entry per axis of the input {}",
                    start_indices.size(), shape.size(), shape_str(inputs.shape()));
    for (int i = 0; i < inputs.ndim(); ++i)
        if (start_indices[i] < 0 || shape[i] < 0 || start_indices[i] + shape[i] > inputs.shape()[i])
            value_error("ops.slice: the block at {} of shape {} does not fit in axis {} of the input {}",
                        shape_str(start_indices), shape_str(shape), i, shape_str(inputs.shape()));
    Tensor y = backend_of(inputs).slice(inputs, start_indices, shape);
    return autodiff::record("slice", y, {inputs}, [full = inputs.shape(), start_indices](const Tensor& dy) {
        return std::vector<Tensor>{backend_of(dy).slice_backward(dy, full, start_indices)};
    });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& indices, int axis) {
    const int a = detail::normalize_axis("split", axis, x.ndim());
    std::vector<Tensor> out;
    int64_t begin = 0;
    auto bounds = indices;
    bounds.push_back(x.shape()[a]);
    for (int64_t end : bounds) {
        end = std::min(end, x.shape()[a]);
        if (end < begin) value_error("ops.split: indices must be increasing; received {}", shape_str(indices));
        std::vector<int64_t> start(x.ndim(), 0);
        start[a] = begin;
        Shape shape = x.shape();
        shape[a] = end - begin;
        out.push_back(slice(x, start, shape));
        begin = end;
    }
    return out;
}

std::vector<Tensor> split(const Tensor& x, int sections, int axis) {
    const int a = detail::normalize_axis("split", axis, x.ndim());
    if (sections <= 0 || x.shape()[a] % sections != 0)
        value_error("ops.split: axis {} of size {} does not split into {} equal sections", a, x.shape()[a], sections);
    std::vector<int64_t> indices;
    for (int i = 1; i < sections; ++i) indices.push_back(x.shape()[a] / sections * i);
    return split(x, indices, a);
}

Tensor take(const Tensor& x, const Tensor& indices, std::optional<int> axis) {
    if (!axis) return take(reshape(x, {x.numel()}), indices, 0);
    const int a = detail::normalize_axis("take", *axis, x.ndim());
    check_indices("take", indices, x.shape()[a]);
    const Tensor ids = indices.to(x.device());
    Tensor y = backend_of(x).take(x, ids, a);
    return autodiff::record("take", y, {x}, [ids, a, xs = x.shape()](const Tensor& dy) {
        return std::vector<Tensor>{backend_of(dy).take_backward(dy, ids, a, xs)};
    });
}

Tensor one_hot(const Tensor& x, int64_t num_classes, int axis) {
    check_indices("one_hot", x, num_classes);
    // Row i of the identity for class i, then the class axis moved to `axis`.
    Tensor eye = Tensor::zeros({num_classes, num_classes}, DType::float32);
    for (int64_t i = 0; i < num_classes; ++i) eye.data<float>()[i * num_classes + i] = 1.0f;
    Tensor y = backend_of(x).take(eye.to(x.device()), x, 0);   // (..., num_classes)
    const int a = detail::normalize_axis("one_hot", axis, y.ndim());
    if (a == y.ndim() - 1) return y;
    std::vector<int> perm;
    for (int i = 0; i < y.ndim() - 1; ++i) perm.push_back(i);
    perm.insert(perm.begin() + a, y.ndim() - 1);
    return backend_of(y).transpose(y, perm);
}

}  // namespace keras::ops
