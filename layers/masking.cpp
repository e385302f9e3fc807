#include "keras/layers/masking.hpp"

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras::layers {

namespace {
// 1 where a step (a run of the last axis) has a feature != mask_value, per step or per element.
Tensor step_mask(const Tensor& x, float mask_value, bool per_element) {
    const Tensor host = x.to(Device::cpu());
    const int64_t features = host.shape().back(), steps = host.numel() / std::max<int64_t>(features, 1);
    Shape shape = host.shape();
    if (!per_element) shape.pop_back();
    Tensor mask(shape, DType::float32);
    const float* v = host.data<float>();
    float* m = mask.data<float>();
    for (int64_t s = 0; s < steps; ++s) {
        bool real = false;
        for (int64_t f = 0; f < features && !real; ++f) real = v[s * features + f] != mask_value;
        if (!per_element) m[s] = real ? 1.0f : 0.0f;
        else std::fill(m + s * features, m + (s + 1) * features, real ? 1.0f : 0.0f);
    }
    return mask;
}
}  // namespace

Masking::Masking(float mask_value, MaskingOptions options)
    : Layer("Masking", options.name, options.trainable), mask_value(mask_value), options(std::move(options)) {
    supports_masking = true;
}

Tensor Masking::call(const Tensor& x, CallContext& ctx) {
    if (x.dtype() != DType::float32)
        value_error("Masking layer \"{}\": expected a float32 input, received {}", name(), to_string(x.dtype()));
    const Tensor keep = step_mask(x, mask_value, true).to(x.device());
    ctx.saved = {keep};
    return backend::for_tensor(x).multiply(x, keep);   // Keras: where(mask, x, 0)
}

Tensor Masking::backward(const Tensor& dy, CallContext& ctx) {
    return backend::for_tensor(dy).multiply(dy, ctx.saved.at(0));
}

Tensor Masking::compute_mask(const Tensor& x, const Tensor&) const { return step_mask(x, mask_value, false); }

nlohmann::json Masking::get_config() const {
    auto config = Layer::get_config();
    config["mask_value"] = static_cast<double>(mask_value);
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
