#include "keras/layers/reshaping.hpp"

#include <algorithm>

#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

namespace {

// A Python tuple as Keras prints it: (4, 4), (5,), with -1 kept as -1.
template <typename T> std::string python_tuple(const std::vector<T>& values) {
    std::string s = "(";
    for (size_t i = 0; i < values.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(values[i]);
    }
    return s + (values.size() == 1 ? ",)" : ")");
}

// Keras's standardize_tuple(value, 2, name, allow_zero=True).
void check_pair(const char* arg, const std::vector<int64_t>& pair) {
    if (pair.size() != 2)
        value_error("The `{}` argument must be a tuple of 2 integers. Received: {}={}", arg, arg, python_tuple(pair));
    std::vector<int64_t> bad;
    for (int64_t v : pair)
        if (v < 0) bad.push_back(v);
    if (!bad.empty())
        value_error("The `{}` argument must be a tuple of 2 integers. Received {}={}, including values {{{}}} that do "
                    "not satisfy `value >= 0`", arg, arg, python_tuple(pair), bad[0]);
}

}  // namespace

// ---- Cropping1D

Cropping1D::Cropping1D(std::vector<int64_t> cropping, ShapeLayerOptions options)
    : Layer("Cropping1D", options.name, options.trainable), cropping(std::move(cropping)) {
    check_pair("cropping", this->cropping);
}

void Cropping1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

Shape Cropping1D::compute_output_shape(const Shape& input_shape) const {
    const int64_t steps = input_shape[1];
    if (steps < 0) return {input_shape[0], -1, input_shape[2]};
    if (cropping[0] + cropping[1] >= steps)
        value_error("`cropping` parameter of `Cropping1D` layer must be smaller than the input length. Received: "
                    "input_shape={}, cropping={}", shape_str(input_shape), python_tuple(cropping));
    return {input_shape[0], steps - cropping[0] - cropping[1], input_shape[2]};
}

Tensor Cropping1D::call(const Tensor& inputs) {
    const Shape out = compute_output_shape(inputs.shape());
    return ops::slice(inputs, {0, cropping[0], 0}, out);
}

nlohmann::json Cropping1D::get_config() const {
    auto config = Layer::get_config();
    config["cropping"] = cropping;
    return config;
}

// ---- ZeroPadding1D

ZeroPadding1D::ZeroPadding1D(std::vector<int64_t> padding, ZeroPadding1DOptions options)
    : Layer("ZeroPadding1D", options.name, options.trainable), padding(std::move(padding)), options(std::move(options)) {
    check_pair("padding", this->padding);
}

void ZeroPadding1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

Shape ZeroPadding1D::compute_output_shape(const Shape& input_shape) const {
    const int64_t steps = input_shape[1];
    return {input_shape[0], steps < 0 ? -1 : steps + padding[0] + padding[1], input_shape[2]};
}

Tensor ZeroPadding1D::call(const Tensor& inputs) {
    std::vector<Tensor> parts;
    const int64_t batch = inputs.dim(0), features = inputs.dim(2);
    if (padding[0] > 0) parts.push_back(ops::zeros({batch, padding[0], features}, inputs.device()));
    parts.push_back(inputs);
    if (padding[1] > 0) parts.push_back(ops::zeros({batch, padding[1], features}, inputs.device()));
    return parts.size() == 1 ? inputs : ops::concatenate(parts, 1);
}

nlohmann::json ZeroPadding1D::get_config() const {
    auto config = Layer::get_config();
    config["padding"] = padding;
    write_fields(config, options);
    return config;
}

// ---- UpSampling1D

UpSampling1D::UpSampling1D(int64_t size, ShapeLayerOptions options) : Layer("UpSampling1D", options.name, options.trainable), size(size) {
    if (size <= 0) value_error("UpSampling1D: `size` must be a positive integer. Received: size={}", size);
}

void UpSampling1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

Shape UpSampling1D::compute_output_shape(const Shape& input_shape) const {
    return {input_shape[0], input_shape[1] < 0 ? -1 : input_shape[1] * size, input_shape[2]};
}

Tensor UpSampling1D::call(const Tensor& inputs) {
    const int64_t steps = inputs.dim(1);
    Tensor indices({steps * size}, DType::int64);   // 0, 0, 1, 1, ... for size 2
    for (int64_t i = 0; i < steps * size; ++i) indices.data<int64_t>()[i] = i / size;
    return ops::take(inputs, indices, 1);
}

nlohmann::json UpSampling1D::get_config() const {
    auto config = Layer::get_config();
    config["size"] = size;
    return config;
}

// ---- Reshape

Reshape::Reshape(Shape target_shape, ShapeLayerOptions options)
    : Layer("Reshape", options.name, options.trainable), target_shape(std::move(target_shape)) {
    const auto unknown = std::count(this->target_shape.begin(), this->target_shape.end(), int64_t{-1});
    if (unknown > 1)
        value_error("There must be at most one unknown dimension (-1) in `target_shape`. Received: target_shape={}.",
                    python_tuple(this->target_shape));
    for (int64_t d : this->target_shape)
        if (d == 0 || d < -1)
            value_error("Reshape: `target_shape` entries must be positive or -1. Received: target_shape={}",
                        python_tuple(this->target_shape));
}

Shape Reshape::compute_output_shape(const Shape& input_shape) const {
    Shape out{input_shape[0]};
    out.insert(out.end(), target_shape.begin(), target_shape.end());
    int64_t in_size = 1, known = 1;
    for (size_t i = 1; i < input_shape.size(); ++i) {
        if (input_shape[i] < 0) return out;   // a None axis: the -1 stays unknown
        in_size *= input_shape[i];
    }
    for (int64_t d : target_shape)
        if (d > 0) known *= d;
    const bool infer = std::find(target_shape.begin(), target_shape.end(), -1) != target_shape.end();
    if (infer ? in_size % known != 0 : in_size != known)
        value_error("The total size of the tensor must be unchanged. Received: input_shape={}, target_shape={}",
                    shape_str(Shape(input_shape.begin() + 1, input_shape.end())), python_tuple(target_shape));
    for (int64_t& d : out)
        if (&d != &out[0] && d == -1) d = in_size / known;
    return out;
}

Tensor Reshape::call(const Tensor& inputs) {
    Shape out = compute_output_shape(inputs.shape());
    out[0] = inputs.dim(0);
    return ops::reshape(inputs, out);
}

nlohmann::json Reshape::get_config() const {
    auto config = Layer::get_config();
    config["target_shape"] = target_shape;
    return config;
}

// ---- Permute

Permute::Permute(std::vector<int> dims, ShapeLayerOptions options) : Layer("Permute", options.name, options.trainable), dims(std::move(dims)) {
    std::vector<int> sorted = this->dims;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i)
        if (sorted[i] != static_cast<int>(i) + 1)
            value_error("Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` must be "
                        "consecutive and start from 1. Received dims={}", python_tuple(this->dims));
}

void Permute::check_input_shape(const Shape& input_shape) const {
    check_ndim(input_shape, static_cast<int>(dims.size()) + 1);
}

Shape Permute::compute_output_shape(const Shape& input_shape) const {
    Shape out{input_shape[0]};
    for (int d : dims) out.push_back(input_shape[d]);
    return out;
}

Tensor Permute::call(const Tensor& inputs) {
    std::vector<int> axes{0};
    axes.insert(axes.end(), dims.begin(), dims.end());
    return ops::transpose(inputs, axes);
}

nlohmann::json Permute::get_config() const {
    auto config = Layer::get_config();
    config["dims"] = dims;
    return config;
}

// ---- Identity

Identity::Identity(ShapeLayerOptions options) : Layer("Identity", options.name, options.trainable) { supports_masking = true; }

}  // namespace keras::layers
