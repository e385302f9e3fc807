#include "keras/layers/merge.hpp"

#include <cstring>

#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras::layers {

namespace {

// Keras prints a list of shapes as [(None, 3), (None, 4, 5)].
std::string shapes_str(const std::vector<Shape>& shapes) {
    std::string out = "[";
    for (size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + shape_str(shapes[i]);
    return out + "]";
}

[[noreturn]] void not_a_list(const Shape& shape) {
    value_error("A merge layer should be called on a list of inputs. Received: input_shape={} (not a list of shapes)",
                shape_str(shape));
}

void check_not_empty(const std::vector<Shape>& shapes) {
    if (shapes.empty())
        value_error("A merge layer should be called on a list of at least 1 input. Got 0 inputs. Full input_shape "
                    "received: []");
}

bool dims_match(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

// Copies `rows` blocks of `block` bytes between tensors with different row strides (the core of
// Concatenate's forward and backward); runs on whatever device the tensors live on.
void copy_blocks(void* dst, size_t dst_stride, const void* src, size_t src_stride, size_t block, int64_t rows,
                 Device device) {
    if (device.is_cpu()) {   // host memory: no device copy engine involved
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(static_cast<char*>(dst) + r * dst_stride, static_cast<const char*>(src) + r * src_stride, block);
        return;
    }
    auto& memory = backend::device_memory(device);
    for (int64_t r = 0; r < rows; ++r)
        memory.copy_on_device(static_cast<char*>(dst) + r * dst_stride, static_cast<const char*>(src) + r * src_stride,
                              block);
}

}  // namespace

// ---------------------------------------------------------------- element-wise merges

Shape Merge::compute_output_shape(const Shape& input_shape) const { not_a_list(input_shape); }

Tensor Merge::call(const Tensor& x, CallContext&) { not_a_list(x.shape()); }

Tensor Merge::backward(const Tensor&, CallContext&) {
    runtime_error("Layer \"{}\": backward() of a merge layer takes the list form (backward_multi)", name());
}

Shape Merge::compute_output_shape_multi(const std::vector<Shape>& shapes) const {
    check_not_empty(shapes);
    Shape out = shapes[0];
    for (const Shape& s : shapes) {
        bool ok = s.size() == out.size();
        for (size_t i = 1; ok && i < s.size(); ++i) ok = dims_match(s[i], out[i]);
        if (!ok)   // Keras names the shapes without their batch axis
            value_error("Inputs have incompatible shapes. Received shapes {} and {}",
                        shape_str(Shape(out.begin() + 1, out.end())), shape_str(Shape(s.begin() + 1, s.end())));
        for (size_t i = 1; i < s.size(); ++i)
            if (out[i] < 0) out[i] = s[i];
    }
    return out;
}

Shape Merge::build_for_multi(const std::vector<Shape>& shapes) {
    Shape out = compute_output_shape_multi(shapes);
    mark_built(shapes[0]);
    return out;
}

Tensor Add::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    ctx.state = xs.size();
    Tensor sum = xs[0].clone();
    for (size_t i = 1; i < xs.size(); ++i) sum = backend::for_tensor(sum).add(sum, xs[i]);
    return sum;
}

std::vector<Tensor> Add::backward_multi(const Tensor& dy, CallContext& ctx) {
    // d(sum)/dx_i = 1: each input gets its own copy of dy (the graph may add into it).
    std::vector<Tensor> grads;
    for (size_t i = 0; i < std::any_cast<size_t>(ctx.state); ++i) grads.push_back(dy.clone());
    return grads;
}

// Saved: ctx.saved = the factors; ctx.state = the inputs' broadcast masks (see masked_factors).
Tensor Multiply::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    Factors f = masked_factors(xs, ctx.input_masks);
    Tensor product = f.factors[0].clone();
    auto& be = backend::for_tensor(product);
    for (size_t i = 1; i < f.factors.size(); ++i) product = be.multiply(product, f.factors[i]);
    if (f.output_keep.defined()) product = be.multiply(product, f.output_keep);
    ctx.saved = std::move(f.factors);
    ctx.state = std::move(f.keeps);
    return product;
}

std::vector<Tensor> Multiply::backward_multi(const Tensor& dy, CallContext& ctx) {
    // d(f_0 * ... * f_n)/dx_i = the product of the other factors, where input i is real (a padded
    // step's factor is the constant 1; the output's zeroed steps are padding for every input).
    const auto& keeps = std::any_cast<const std::vector<Tensor>&>(ctx.state);
    std::vector<Tensor> grads;
    auto& be = backend::for_tensor(dy);
    for (size_t i = 0; i < ctx.saved.size(); ++i) {
        Tensor g = dy.clone();
        for (size_t j = 0; j < ctx.saved.size(); ++j)
            if (j != i) g = be.multiply(g, ctx.saved[j]);
        if (keeps[i].defined()) g = be.multiply(g, keeps[i]);
        grads.push_back(g);
    }
    return grads;
}

Tensor Average::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    ctx.state = xs.size();
    Tensor sum = xs[0].clone();
    for (size_t i = 1; i < xs.size(); ++i) sum = backend::for_tensor(sum).add(sum, xs[i]);
    backend::for_tensor(sum).scale_(sum, 1.0f / static_cast<float>(xs.size()));
    return sum;
}

std::vector<Tensor> Average::backward_multi(const Tensor& dy, CallContext& ctx) {
    const auto n = std::any_cast<size_t>(ctx.state);
    std::vector<Tensor> grads;
    for (size_t i = 0; i < n; ++i) {
        Tensor g = dy.clone();
        backend::for_tensor(g).scale_(g, 1.0f / static_cast<float>(n));
        grads.push_back(g);
    }
    return grads;
}

nlohmann::json Merge::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options);
    return config;
}

// ---------------------------------------------------------------- Concatenate

Concatenate::Concatenate(ConcatenateOptions options)
    : Merge("Concatenate", {.name = options.name, .trainable = options.trainable}), axis(options.axis), concatenate_options(std::move(options)) {}

nlohmann::json Concatenate::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, concatenate_options);
    return config;
}

size_t Concatenate::positive_axis(size_t rank) const {
    const int64_t a = axis < 0 ? static_cast<int64_t>(rank) + axis : axis;
    if (a < 1 || a >= static_cast<int64_t>(rank))
        value_error("Layer \"{}\": `axis`={} is out of range for inputs of rank {} (the batch axis 0 cannot be "
                    "concatenated)", name(), axis, rank);
    return static_cast<size_t>(a);
}

Shape Concatenate::compute_output_shape_multi(const std::vector<Shape>& shapes) const {
    if (shapes.empty())
        value_error("A `Concatenate` layer should be called on a list of at least 1 input. Received: input_shape=[]");
    const size_t rank = shapes[0].size();
    bool ok = true;
    for (const Shape& s : shapes) ok = ok && s.size() == rank;
    const size_t a = ok ? positive_axis(rank) : 0;
    Shape out = shapes[0];
    for (size_t k = 1; ok && k < shapes.size(); ++k)
        for (size_t i = 1; i < rank; ++i) {
            if (i == a) continue;
            ok = ok && dims_match(out[i], shapes[k][i]);
            if (out[i] < 0) out[i] = shapes[k][i];
        }
    if (!ok)
        value_error("A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. "
                    "Received: input_shape={}", shapes_str(shapes));
    out[a] = 0;
    for (const Shape& s : shapes) out[a] = (out[a] < 0 || s[a] < 0) ? -1 : out[a] + s[a];
    return out;
}

// With the shapes viewed as (outer, axis, inner), each input fills a block of every outer row.
Tensor Concatenate::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    const std::vector<Shape> shapes = shapes_of(xs);
    const Shape out_shape = compute_output_shape_multi(shapes);
    const size_t a = positive_axis(out_shape.size());
    Tensor out(out_shape, DType::float32, xs[0].device());
    const int64_t outer = num_elements(Shape(out_shape.begin(), out_shape.begin() + a));
    const size_t out_row = out.nbytes() / std::max<int64_t>(outer, 1);
    size_t offset = 0;
    for (const auto& x : xs) {
        const size_t row = x.nbytes() / std::max<int64_t>(outer, 1);
        copy_blocks(static_cast<char*>(out.raw()) + offset, out_row, x.raw(), row, row, outer, x.device());
        offset += row;
    }
    ctx.state = shapes;
    return out;
}

std::vector<Tensor> Concatenate::backward_multi(const Tensor& dy, CallContext& ctx) {
    const auto& shapes = std::any_cast<const std::vector<Shape>&>(ctx.state);
    const size_t a = positive_axis(dy.ndim());
    const int64_t outer = num_elements(Shape(dy.shape().begin(), dy.shape().begin() + a));
    const size_t dy_row = dy.nbytes() / std::max<int64_t>(outer, 1);
    std::vector<Tensor> grads;
    size_t offset = 0;
    for (const auto& s : shapes) {
        Tensor g(s, DType::float32, dy.device());
        const size_t row = g.nbytes() / std::max<int64_t>(outer, 1);
        copy_blocks(g.raw(), row, static_cast<const char*>(dy.raw()) + offset, dy_row, row, outer, dy.device());
        offset += row;
        grads.push_back(g);
    }
    return grads;
}

}  // namespace keras::layers
