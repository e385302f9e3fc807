// Subtract, Maximum, Minimum and Dot: merge layers written with keras::ops, so their backward is the
// automatic one (Layer::call_multi records the call, Layer::backward_multi replays it).
#include <numeric>

#include "keras/errors.hpp"
#include "keras/layers/merge.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

namespace {

std::string shapes_str(const std::vector<Shape>& shapes) {
    std::string out = "[";
    for (size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + shape_str(shapes[i]);
    return out + "]";
}

// A (batch, steps) 0/1 mask as (batch, steps, 1, ...) repeated to x's shape, on x's device.
Tensor mask_like(const Tensor& mask, const Tensor& x) {
    Shape s(x.ndim(), 1);
    s[0] = x.dim(0), s[1] = x.dim(1);
    return ops::broadcast_to(ops::reshape(mask.to(x.device()), s), x.shape());
}

// Keras 3's normalize(x, axis) for order 2: x * min(1 / ||x||, 1 / epsilon), epsilon = 1e-7.
Tensor l2_normalize(const Tensor& x, int axis) {
    const Tensor inv_norm = ops::reciprocal(ops::sqrt(ops::sum(ops::square(x), {axis}, true)));
    return ops::multiply(x, ops::minimum(inv_norm, 1e7f));
}

}  // namespace

// ---------------------------------------------------------------- Subtract

Shape Subtract::compute_output_shape_multi(const std::vector<Shape>& shapes) const {
    if (shapes.size() != 2)
        value_error("A `Subtract` layer should be called on exactly 2 inputs. Received: input_shape={}",
                    shapes_str(shapes));
    return Merge::compute_output_shape_multi(shapes);
}

Tensor Subtract::call(const std::vector<Tensor>& xs) {
    compute_output_shape_multi(shapes_of(xs));
    return ops::subtract(xs[0], xs[1]);
}

Tensor Subtract::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    compute_output_shape_multi(shapes_of(xs));   // a list of one is refused here, not run as one input
    return Layer::call_multi(xs, ctx);
}

std::vector<Tensor> Subtract::backward_multi(const Tensor& dy, CallContext& ctx) { return Layer::backward_multi(dy, ctx); }

// ---------------------------------------------------------------- Maximum, Minimum

// Keras 3's _apply_merge_op_and_or_mask: the running result and each new input fill each other's
// padded steps before they meet; the result's mask is the OR of the masks while every input has one.
Tensor ElementwiseExtremum::merge(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const {
    Tensor output = xs[0], output_keep;
    if (!masks.empty() && masks[0].defined()) output_keep = mask_like(masks[0], xs[0]);
    for (size_t i = 1; i < xs.size(); ++i) {
        Tensor x = xs[i], keep;
        if (!masks.empty() && masks[i].defined()) keep = mask_like(masks[i], x);
        if (keep.defined()) x = ops::where(keep, x, output);
        if (output_keep.defined()) output = ops::where(output_keep, output, x);
        output_keep = keep.defined() && output_keep.defined() ? ops::maximum(output_keep, keep) : Tensor();
        output = maximum_ ? ops::maximum(output, x) : ops::minimum(output, x);
    }
    return output;
}

Tensor ElementwiseExtremum::call(const std::vector<Tensor>& xs) {
    compute_output_shape_multi(shapes_of(xs));
    return merge(xs, {});
}

Tensor ElementwiseExtremum::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    compute_output_shape_multi(shapes_of(xs));
    const std::vector<Tensor> masks = ctx.input_masks;
    if (!masks.empty()) compute_mask_multi(xs, masks);   // checks each mask against its input
    return record_inputs(xs, ctx, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{merge(in, masks)}; })[0];
}

std::vector<Tensor> ElementwiseExtremum::backward_multi(const Tensor& dy, CallContext& ctx) {
    return Layer::backward_multi(dy, ctx);
}

// ---------------------------------------------------------------- Dot

Dot::Dot(std::vector<int> axes_, DotOptions options)
    : Merge("Dot", {.name = options.name, .trainable = options.trainable}), axes(std::move(axes_)),
      dot_options(std::move(options)) {
    if (axes.size() != 1 && axes.size() != 2)
        value_error("Invalid format for argument `axes`: it should contain two elements. Received: axes={}",
                    nlohmann::json(axes).dump());
}

std::pair<size_t, size_t> Dot::positive_axes(const Shape& shape1, const Shape& shape2) const {
    const int r1 = static_cast<int>(shape1.size()), r2 = static_cast<int>(shape2.size());
    const int b1 = axes[0], b2 = axes.back();
    if (b1 < -r1 || b1 >= r1 || b2 < -r2 || b2 >= r2)
        value_error("Layer \"{}\": axes={} are out of range for inputs of shapes {} and {}", name(),
                    nlohmann::json(axes).dump(), shape_str(shape1), shape_str(shape2));
    const auto a1 = static_cast<size_t>((b1 + r1) % r1), a2 = static_cast<size_t>((b2 + r2) % r2);
    if (a1 == 0 || a2 == 0)
        value_error("Layer \"{}\": Cannot perform batch_dot over axis 0 (axes={}). If your inputs are not batched, "
                    "add a dummy batch dimension to your inputs using keras.ops.expand_dims(x, 0)", name(),
                    nlohmann::json(axes).dump());
    return {a1, a2};
}

Shape Dot::compute_output_shape_multi(const std::vector<Shape>& shapes) const {
    if (shapes.size() != 2)
        value_error("A `Dot` layer should be called on a list of 2 inputs. Received: input_shape={}", shapes_str(shapes));
    const Shape &s1 = shapes[0], &s2 = shapes[1];
    if (s1.size() < 2 || s2.size() < 2)
        value_error("Cannot do batch_dot on inputs with rank < 2. Received inputs with shapes {} and {}.",
                    shape_str(s1), shape_str(s2));
    const auto [a1, a2] = positive_axes(s1, s2);
    if (s1[a1] >= 0 && s2[a2] >= 0 && s1[a1] != s2[a2])
        value_error("Incompatible input shapes: axis values {} (at axis {}) != {} (at axis {}). Full input shapes: {}, {}",
                    s1[a1], a1, s2[a2], a2, shape_str(s1), shape_str(s2));
    Shape out;
    for (size_t i = 0; i < s1.size(); ++i)
        if (i != a1) out.push_back(s1[i]);
    for (size_t i = 1; i < s2.size(); ++i)
        if (i != a2) out.push_back(s2[i]);
    if (out.size() == 1) out.push_back(1);
    return out;
}

// batch_dot as one batched matmul: x to (batch, rest of x, k), y to (batch, k, rest of y).
Tensor Dot::call(const std::vector<Tensor>& xs) {
    const Shape out_shape = compute_output_shape_multi(shapes_of(xs));
    const auto [a1, a2] = positive_axes(xs[0].shape(), xs[1].shape());
    Tensor x = xs[0], y = xs[1];
    if (dot_options.normalize) {
        x = l2_normalize(x, static_cast<int>(a1));
        y = l2_normalize(y, static_cast<int>(a2));
    }
    std::vector<int> px(x.ndim()), py(y.ndim());
    std::iota(px.begin(), px.end(), 0);
    std::iota(py.begin(), py.end(), 0);
    px.erase(px.begin() + a1), px.push_back(static_cast<int>(a1));   // summed axis last
    py.erase(py.begin() + a2), py.insert(py.begin() + 1, static_cast<int>(a2));   // summed axis second
    const int64_t batch = x.dim(0), k = x.dim(a1);
    const Tensor x3 = ops::reshape(ops::transpose(x, px), {batch, -1, k});
    const Tensor y3 = ops::reshape(ops::transpose(y, py), {batch, k, -1});
    return ops::reshape(ops::matmul(x3, y3), out_shape);   // the inputs' shapes are known here
}

Tensor Dot::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    compute_output_shape_multi(shapes_of(xs));
    return Layer::call_multi(xs, ctx);
}

std::vector<Tensor> Dot::backward_multi(const Tensor& dy, CallContext& ctx) { return Layer::backward_multi(dy, ctx); }

Tensor Dot::compute_mask_multi(const std::vector<Tensor>&, const std::vector<Tensor>&) const { return {}; }

nlohmann::json Dot::get_config() const {
    auto config = Layer::get_config();
    config["axes"] = axes.size() == 1 ? nlohmann::json(axes[0]) : nlohmann::json(axes);
    write_fields(config, dot_options);
    return config;
}

}  // namespace keras::layers
