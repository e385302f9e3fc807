#include "keras/layers/convolutional.hpp"

#include <fmt/format.h>

#include "keras/autodiff.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

namespace {

// ---- Windows over the steps axis, shared by the convolutions and the poolings.

// Keras's message for a 1-tuple argument that is not positive.
void check_tuple_arg(const char* arg, int64_t value) {
    if (value <= 0)
        value_error("The `{}` argument must be a tuple of 1 integers. Received {}={}, including values {{{}}} that do "
                    "not satisfy `value > 0`", arg, arg, value, value);
}

void check_padding(const std::string& padding, bool allow_causal) {
    if (padding == "valid" || padding == "same" || (allow_causal && padding == "causal")) return;
    value_error("The `padding` argument must be a list/tuple or one of {}. Received: {}",
                allow_causal ? "{'valid', 'same', 'causal'}" : "{'valid', 'same'}", padding);
}

void check_data_format(const std::string& data_format) {
    if (data_format != "channels_last" && data_format != "channels_first")
        value_error("The `data_format` argument must be one of {{'channels_first', 'channels_last'}}. Received: "
                    "data_format={}", data_format);
}

// The channels_last view of a shape: (batch, channels, steps) -> (batch, steps, channels).
Shape channels_last_shape(const Shape& s, const std::string& data_format) {
    return data_format == "channels_first" && s.size() == 3 ? Shape{s[0], s[2], s[1]} : s;
}
// A convolution's bias, shaped to add along the output's channels axis.
Tensor bias_for(const VariablePtr& bias, const std::string& data_format) {
    const Tensor b = ops::convert_to_tensor(bias);
    return data_format == "channels_first" ? ops::reshape(b, {b.dim(0), 1}) : b;
}

// channels_first: a built layer pins axis 1, its channels (Keras's InputSpec axes={1: channels}).
// Empty when the shape fits.
std::string channel_axis_error(const Shape& built, const Shape& received) {
    if (built.size() != 3 || received.size() != 3 || built[1] < 0 || received[1] < 0 || built[1] == received[1])
        return {};
    return fmt::format("expected axis 1 of input shape to have value {}, but received input with shape {}", built[1],
                       shape_str(received));
}

// Output steps of a layer's windows for `steps` input steps: -1 (unknown) stays -1, 0 when no window
// fits (padding valid). The rule is the backend's, which the ops run.
int64_t out_steps(int64_t size, int stride, int dilation, const std::string& padding, int64_t steps) {
    if (steps < 0) return -1;
    return backend::Window1D::for_padding(size, stride, dilation, padding, steps).out_steps(steps);
}

// The activation as a recorded op on the backend's fused element-wise kernels.
Tensor activate(keras::Activation a, const Tensor& x) {
    if (a == keras::Activation::linear) return x;
    Tensor y = backend::for_tensor(x).activation(a, x);
    return autodiff::record("activation", y, {x}, [a, x = x.detached(), y = y.detached()](const Tensor& dy) {
        return std::vector<Tensor>{backend::for_tensor(dy).activation_backward(a, x, y, dy)};
    });
}

// Keras's message when the windows do not fit the input (padding valid); steps_shape is the input's
// channels_last shape.
void check_conv_output(const Shape& input_shape, const Shape& steps_shape, const Shape& kernel_shape, int strides,
                       const std::string& padding, int dilation_rate) {
    if (steps_shape.size() != 3 || out_steps(kernel_shape[0], strides, dilation_rate, padding, steps_shape[1]) != 0)
        return;
    value_error("Computed output size would be zero or negative. Received `inputs shape={}`, `kernel shape={}`, "
                "`dilation_rate=[{}]`, `strides=({},)`, `padding={}`.", shape_str(input_shape),
                shape_str(kernel_shape), dilation_rate, strides, padding);
}

void check_conv_args(int64_t filters, int64_t kernel_size, int strides, const std::string& padding,
                     int dilation_rate) {
    if (filters <= 0)
        value_error("Invalid value for argument `filters`. Expected a strictly positive value. Received filters={}.",
                    filters);
    check_tuple_arg("kernel_size", kernel_size);
    check_tuple_arg("strides", strides);
    check_tuple_arg("dilation_rate", dilation_rate);
    check_padding(padding, true);
    if (strides > 1 && dilation_rate > 1)
        value_error("`strides > 1` not supported in conjunction with `dilation_rate > 1`. Received: strides=({},) "
                    "and dilation_rate=({},)", strides, dilation_rate);
}

// The 1-tuple arguments and padding as Keras's get_config() writes them.
void write_windows(nlohmann::json& config, int64_t kernel_size, int strides, const std::string& padding,
                   int dilation_rate) {
    config["kernel_size"] = {kernel_size};
    config["strides"] = {strides};
    config["padding"] = padding;
    config["dilation_rate"] = {dilation_rate};
}

}  // namespace

// ---- Conv1D

Conv1D::Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions options)
    : Layer("Conv1D", options.name, options.trainable), filters(filters), kernel_size(kernel_size), options(std::move(options)) {
    const Conv1DOptions& o = this->options;
    check_conv_args(filters, kernel_size, o.strides, o.padding, o.dilation_rate);
    check_data_format(o.data_format);
    if (o.groups <= 0)
        value_error("Invalid value for argument `groups`. Expected a strictly positive value. Received groups={}.",
                    o.groups);
    if (filters % o.groups != 0)
        value_error("The number of filters must be evenly divisible by the number of groups. Received: groups={}, "
                    "filters={}.", o.groups, filters);
    activation_ = activation_from_string(o.activation);
}

void Conv1D::check_input_shape(const Shape& input_shape) const {
    check_ndim(input_shape, 3);
    const int64_t channels = channels_last_shape(input_shape, options.data_format)[2];
    if (channels > 0 && channels % options.groups != 0)
        value_error("The number of input channels must be evenly divisible by the number of groups. Received "
                    "groups={}, but the input has {} channels (full input shape is {}).", options.groups, channels,
                    shape_str(input_shape));
}

void Conv1D::check_built_shape(const Shape& input_shape) const {
    if (options.data_format != "channels_first") return Layer::check_built_shape(input_shape);
    const std::string error = channel_axis_error(this->input_shape(), input_shape);
    if (!error.empty()) input_error(error, input_shape);
}

void Conv1D::build(const Shape& input_shape) {
    const int64_t channels = channels_last_shape(input_shape, options.data_format)[2];
    kernel = add_weight("kernel", {kernel_size, channels / options.groups, filters}, options.kernel_initializer);
    kernel->regularizer = options.kernel_regularizer, kernel->constraint = options.kernel_constraint;
    if (options.use_bias) {
        bias = add_weight("bias", {filters}, options.bias_initializer);
        bias->regularizer = options.bias_regularizer, bias->constraint = options.bias_constraint;
    }
}

Shape Conv1D::compute_output_shape(const Shape& input_shape) const {
    const Shape s = channels_last_shape(input_shape, options.data_format);
    const Conv1DOptions& o = options;
    check_conv_output(input_shape, s, {kernel_size, s[2] / o.groups, filters}, o.strides, o.padding, o.dilation_rate);
    return channels_last_shape({s[0], out_steps(kernel_size, o.strides, o.dilation_rate, o.padding, s[1]), filters},
                               o.data_format);
}

Tensor Conv1D::call(const Tensor& x) {
    const Conv1DOptions& o = options;
    check_conv_output(x.shape(), channels_last_shape(x.shape(), o.data_format), kernel->value.shape(), o.strides,
                      o.padding, o.dilation_rate);
    Tensor y = ops::conv(x, kernel, {.strides = o.strides, .padding = o.padding, .data_format = o.data_format,
                                     .dilation_rate = o.dilation_rate});
    if (bias) y = ops::add(y, bias_for(bias, o.data_format));
    return activate(activation_, y);
}

nlohmann::json Conv1D::get_config() const {
    auto config = Layer::get_config();
    config["filters"] = filters;
    write_windows(config, kernel_size, options.strides, options.padding, options.dilation_rate);
    config["data_format"] = options.data_format;
    write_fields(config, options);
    config.emplace("activity_regularizer", nullptr);   // Keras writes null; Layer wrote a set one
    return config;
}

// ---- SeparableConv1D

SeparableConv1D::SeparableConv1D(int64_t filters, int64_t kernel_size, SeparableConv1DOptions options)
    : Layer("SeparableConv1D", options.name, options.trainable), filters(filters), kernel_size(kernel_size), options(std::move(options)) {
    const SeparableConv1DOptions& o = this->options;
    check_conv_args(filters, kernel_size, o.strides, o.padding, o.dilation_rate);
    check_data_format(o.data_format);
    if (o.depth_multiplier <= 0)
        value_error("Invalid value for argument `depth_multiplier`. Expected a strictly positive value. Received "
                    "depth_multiplier={}.", o.depth_multiplier);
    activation_ = activation_from_string(o.activation);
}

void SeparableConv1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

void SeparableConv1D::check_built_shape(const Shape& input_shape) const {
    if (options.data_format != "channels_first") return Layer::check_built_shape(input_shape);
    const std::string error = channel_axis_error(this->input_shape(), input_shape);
    if (!error.empty()) input_error(error, input_shape);
}

void SeparableConv1D::build(const Shape& input_shape) {
    const int64_t channels = channels_last_shape(input_shape, options.data_format)[2], dm = options.depth_multiplier;
    depthwise_kernel = add_weight("depthwise_kernel", {kernel_size, channels, dm}, options.depthwise_initializer);
    pointwise_kernel = add_weight("pointwise_kernel", {1, channels * dm, filters}, options.pointwise_initializer);
    depthwise_kernel->regularizer = options.depthwise_regularizer;
    depthwise_kernel->constraint = options.depthwise_constraint;
    pointwise_kernel->regularizer = options.pointwise_regularizer;
    pointwise_kernel->constraint = options.pointwise_constraint;
    if (options.use_bias) {
        bias = add_weight("bias", {filters}, options.bias_initializer);
        bias->regularizer = options.bias_regularizer, bias->constraint = options.bias_constraint;
    }
}

Shape SeparableConv1D::compute_output_shape(const Shape& input_shape) const {
    const Shape s = channels_last_shape(input_shape, options.data_format);
    const SeparableConv1DOptions& o = options;
    check_conv_output(input_shape, s, {kernel_size, s[2], o.depth_multiplier}, o.strides, o.padding, o.dilation_rate);
    return channels_last_shape({s[0], out_steps(kernel_size, o.strides, o.dilation_rate, o.padding, s[1]), filters},
                               o.data_format);
}

// As Keras: a depthwise convolution (one group per channel, depth_multiplier filters each: filter
// c * dm + m reads channel c), then a pointwise one (kernel size 1) over the C * dm results.
Tensor SeparableConv1D::call(const Tensor& x) {
    const SeparableConv1DOptions& o = options;
    check_conv_output(x.shape(), channels_last_shape(x.shape(), o.data_format), depthwise_kernel->value.shape(),
                      o.strides, o.padding, o.dilation_rate);
    const int64_t channels = depthwise_kernel->value.dim(1), dm = o.depth_multiplier;
    const Tensor depthwise_as_groups = ops::reshape(ops::convert_to_tensor(depthwise_kernel), {kernel_size, 1, channels * dm});
    const Tensor depthwise = ops::conv(x, depthwise_as_groups, {.strides = o.strides, .padding = o.padding,
                                                               .data_format = o.data_format,
                                                               .dilation_rate = o.dilation_rate});
    Tensor y = ops::conv(depthwise, pointwise_kernel, {.data_format = o.data_format});
    if (bias) y = ops::add(y, bias_for(bias, o.data_format));
    return activate(activation_, y);
}

nlohmann::json SeparableConv1D::get_config() const {
    auto config = Layer::get_config();
    config["filters"] = filters;
    write_windows(config, kernel_size, options.strides, options.padding, options.dilation_rate);
    config["data_format"] = options.data_format;
    write_fields(config, options);
    config.emplace("activity_regularizer", nullptr);   // Keras writes null; Layer wrote a set one
    return config;
}

// ---- MaxPooling1D, AveragePooling1D

Pooling1D::Pooling1D(const std::string& class_name, bool max, int64_t pool_size, Pooling1DOptions options)
    : Layer(class_name, options.name, options.trainable), pool_size(pool_size), options(std::move(options)), max_(max) {
    check_tuple_arg("pool_size", pool_size);
    if (this->options.strides == 0) this->options.strides = static_cast<int>(pool_size);   // None
    check_tuple_arg("strides", this->options.strides);
    check_padding(this->options.padding, false);
    check_data_format(this->options.data_format);
}

void Pooling1D::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

Shape Pooling1D::compute_output_shape(const Shape& input_shape) const {
    const Shape s = channels_last_shape(input_shape, options.data_format);
    const int64_t out = out_steps(pool_size, options.strides, 1, options.padding, s[1]);
    if (out == 0) {   // Keras prints the shape as a numpy array
        std::string dims;
        for (int64_t d : input_shape) {
            if (!dims.empty()) dims += " ";
            dims += d < 0 ? std::string("None") : std::to_string(d);
        }
        value_error("Computed output size would be zero or negative. Received: `inputs.shape=[{}]`, "
                    "`pool_size=[{}]`, `strides=({},)`, `padding={}`.", dims, pool_size, options.strides,
                    options.padding);
    }
    return channels_last_shape({s[0], out, s[2]}, options.data_format);
}

Tensor Pooling1D::call(const Tensor& x) {
    compute_output_shape(x.shape());
    const ops::PoolOptions o{.strides = options.strides, .padding = options.padding, .data_format = options.data_format};
    return max_ ? ops::max_pool(x, pool_size, o) : ops::average_pool(x, pool_size, o);
}

nlohmann::json Pooling1D::get_config() const {
    auto config = Layer::get_config();
    config["pool_size"] = {pool_size};
    config["padding"] = options.padding;
    config["strides"] = {options.strides};
    config["data_format"] = options.data_format;
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
