#include "keras/layers/dense.hpp"

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"

namespace keras::layers {

Dense::Dense(int64_t units, DenseOptions options)
    : Layer("Dense", options.name, options.trainable), units(units), activation(activation_from_string(options.activation)),
      options(std::move(options)) {
    if (!this->options.dtype.empty()) set_dtype_policy(this->options.dtype);
    supports_masking = true;   // applied per step, so a (batch, steps) mask still fits
    if (units <= 0) value_error("Received an invalid value for `units`, expected a positive integer. Received: units={}", units);
    initializers::check_name(this->options.kernel_initializer);
    initializers::check_name(this->options.bias_initializer);
}

void Dense::check_input_shape(const Shape& input_shape) const {
    check_min_ndim(input_shape, 2);
    if (input_shape.back() < 0) input_error("the last axis of the input must be defined", input_shape);
}

void Dense::build(const Shape& input_shape) {
    const VariablePtr kernel = add_weight("kernel", {input_shape.back(), units}, options.kernel_initializer);
    kernel->regularizer = options.kernel_regularizer;
    kernel->constraint = options.kernel_constraint;
    if (!options.use_bias) return;
    const VariablePtr bias = add_weight("bias", {units}, options.bias_initializer);
    bias->regularizer = options.bias_regularizer;
    bias->constraint = options.bias_constraint;
}

Shape Dense::compute_output_shape(const Shape& input_shape) const {
    Shape out = input_shape;
    out.back() = units;
    return out;
}

// Saved for backward: x as a matrix, the pre-activation z and the output y.
Tensor Dense::call(const Tensor& x, CallContext& ctx) {
    auto& be = backend::for_tensor(x);
    const Tensor x2 = x.reshape({-1, x.dim(-1)});
    const Tensor bias = options.use_bias ? weights()[1]->value : Tensor();
    // mixed_bfloat16: the product in bfloat16 (float32 where the device cannot), z rounded to bfloat16.
    const bool bf16 = dtype_policy().mixed_bfloat16();
    const Tensor z = bf16 ? be.matmul_bias_bf16(x2, weights()[0]->value, bias) : be.matmul_bias(x2, weights()[0]->value, bias);
    const Tensor y = be.activation(activation, z);
    ctx.saved = {x2, z, y};
    return y.reshape(compute_output_shape(x.shape()));
}

Tensor Dense::backward(const Tensor& dy, CallContext& ctx) {
    auto& be = backend::for_tensor(dy);
    const Tensor& x2 = ctx.saved.at(0);
    const Tensor dz = be.activation_backward(activation, ctx.saved.at(1), ctx.saved.at(2), dy.reshape({-1, units}));
    Tensor dx, dkernel, dbias;
    if (dtype_policy().mixed_bfloat16())
        be.matmul_bias_backward_bf16(x2, weights()[0]->value, dz, dx, dkernel, options.use_bias ? &dbias : nullptr);
    else
        be.matmul_bias_backward(x2, weights()[0]->value, dz, dx, dkernel, options.use_bias ? &dbias : nullptr);
    accumulate_gradient(*weights()[0], std::move(dkernel));
    if (options.use_bias) accumulate_gradient(*weights()[1], std::move(dbias));
    Shape in_shape = dy.shape();
    in_shape.back() = x2.dim(1);
    return dx.reshape(in_shape);
}

nlohmann::json Dense::get_config() const {
    auto config = Layer::get_config();
    config["units"] = units;
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
