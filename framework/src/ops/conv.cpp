// conv, max_pool and average_pool over one axis of steps, and their gradients: the backend's conv1d /
// pool1d (oneDNN's primitives on the CPU), after the checks that name what is wrong.
#include <fmt/format.h>

#include "keras/errors.hpp"
#include "ops_internal.hpp"

namespace keras::ops {

using detail::backend_of;

namespace {

void check_steps_input(const std::string& op, const Tensor& x) {
    detail::check_float(op, x);
    if (x.ndim() != 3)
        value_error("ops.{}: inputs must be 3-D, (batch, steps, channels) or (batch, channels, steps) with "
                    "channels_first; received shape {} (only 1-D windows are supported)", op, shape_str(x.shape()));
}

void check_positive(const std::string& op, const char* arg, int64_t value) {
    if (value < 1) value_error("ops.{}: `{}` must be a positive integer; received {}={}", op, arg, arg, value);
}

bool is_channels_first(const std::string& op, const std::string& data_format) {
    if (data_format != "channels_last" && data_format != "channels_first")
        value_error("ops.{}: `data_format` must be 'channels_last' or 'channels_first'; received '{}'", op,
                    data_format);
    return data_format == "channels_first";
}

Tensor swap_steps_and_channels(const Tensor& x) { return transpose(x, {0, 2, 1}); }

// The windows over x's steps, refused when no window fits.
backend::Window1D windows_over(const std::string& op, int64_t steps, int64_t size, int64_t stride, int64_t dilation,
                               const std::string& padding, bool causal_allowed) {
    if (padding == "causal" && !causal_allowed)
        value_error("ops.{}: `padding` must be 'valid' or 'same'; received 'causal'", op);
    if (padding != "valid" && padding != "same" && padding != "causal")
        value_error("ops.{}: `padding` must be 'valid', 'same'{}; received '{}'", op,
                    causal_allowed ? " or 'causal'" : "", padding);
    const auto w = backend::Window1D::for_padding(size, stride, dilation, padding, steps);
    if (w.out_steps(steps) < 1)
        value_error("ops.{}: a window spans {} steps (size {}, dilation_rate {}) but the input has {} steps and "
                    "padding '{}': the output would have no steps", op, w.span(), size, dilation, steps, padding);
    return w;
}

Tensor pool(backend::PoolKind kind, const Tensor& inputs, int64_t pool_size, const PoolOptions& options) {
    const std::string op = kind == backend::PoolKind::max ? "max_pool" : "average_pool";
    check_steps_input(op, inputs);
    check_positive(op, "pool_size", pool_size);
    const int64_t strides = options.strides == 0 ? pool_size : options.strides;
    check_positive(op, "strides", strides);
    const bool first = is_channels_first(op, options.data_format);
    const Tensor x = first ? swap_steps_and_channels(inputs) : inputs;
    const auto w = windows_over(op, x.dim(1), pool_size, strides, 1, options.padding, false);
    const bool training = autodiff::recording();
    backend::PoolForward fwd = backend_of(x).pool1d(kind, w, x, training);
    const Tensor y = autodiff::record(op, fwd.y, {x}, [kind, w, x = x.detached(), fwd](const Tensor& dy) {
        return std::vector<Tensor>{backend_of(dy).pool1d_backward(kind, w, x, fwd, dy)};
    });
    return first ? swap_steps_and_channels(y) : y;
}

}  // namespace

Tensor conv(const Tensor& inputs, const Operand& kernel_operand, const ConvOptions& options) {
    const Operand inputs_operand(inputs);
    detail::common_device("conv", {&inputs_operand, &kernel_operand});
    check_steps_input("conv", inputs);
    const Tensor kernel = kernel_operand.tensor;
    detail::check_float("conv", kernel);
    if (kernel.ndim() != 3)
        value_error("ops.conv: the kernel must be 3-D (kernel_size, input_channels / groups, filters); received "
                    "shape {}", shape_str(kernel.shape()));
    check_positive("conv", "strides", options.strides);
    check_positive("conv", "dilation_rate", options.dilation_rate);
    const bool first = is_channels_first("conv", options.data_format);
    const Tensor x = first ? swap_steps_and_channels(inputs) : inputs;
    const int64_t channels = x.dim(2), group_channels = kernel.dim(1), filters = kernel.dim(2);
    if (group_channels < 1 || channels % group_channels != 0)
        value_error("ops.conv: the input's {} channels must be a multiple of the kernel's input channels {} (kernel "
                    "shape {}); their ratio is the number of groups", channels, group_channels,
                    shape_str(kernel.shape()));
    const int64_t groups = channels / group_channels;
    if (filters % groups != 0)
        value_error("ops.conv: the kernel's {} filters must be a multiple of the number of groups {} (input "
                    "channels {} / kernel input channels {})", filters, groups, channels, group_channels);
    if (kernel.dim(0) < 1) value_error("ops.conv: the kernel has no taps (shape {})", shape_str(kernel.shape()));
    const auto w = windows_over("conv", x.dim(1), kernel.dim(0), options.strides, options.dilation_rate,
                                options.padding, true);
    const Tensor y = autodiff::record("conv", backend_of(x).conv1d(w, groups, x, kernel), {x, kernel},
                                      [w, groups, x = x.detached(), k = kernel.detached()](const Tensor& dy) {
                                          Tensor dx, dk;
                                          backend_of(dy).conv1d_backward(w, groups, x, k, dy, dx, dk);
                                          return std::vector<Tensor>{dx, dk};
                                      });
    return first ? swap_steps_and_channels(y) : y;
}

Tensor max_pool(const Tensor& inputs, int64_t pool_size, const PoolOptions& options) {
    return pool(backend::PoolKind::max, inputs, pool_size, options);
}

Tensor average_pool(const Tensor& inputs, int64_t pool_size, const PoolOptions& options) {
    return pool(backend::PoolKind::average, inputs, pool_size, options);
}

}  // namespace keras::ops
