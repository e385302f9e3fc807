#include "keras/layers/embedding.hpp"

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"

namespace keras::layers {

Embedding::Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options)
    : Layer("Embedding", options.name, options.trainable), input_dim(input_dim), output_dim(output_dim), options(std::move(options)) {
    if (!this->options.dtype.empty()) set_dtype_policy(this->options.dtype);
    if (input_dim <= 0 || output_dim <= 0)
        value_error("Both `input_dim` and `output_dim` should be positive, Received input_dim = {} and output_dim = {}",
                    input_dim, output_dim);
    initializers::check_name(this->options.embeddings_initializer);
    if (this->options.weights.defined()) build_for({-1, -1});   // as Keras: built at once, then set_weights
}

void Embedding::build(const Shape&) {
    const VariablePtr embeddings = add_weight("embeddings", {input_dim, output_dim}, options.embeddings_initializer);
    embeddings->regularizer = options.embeddings_regularizer;
    embeddings->constraint = options.embeddings_constraint;
    if (options.weights.defined()) set_weights({options.weights.astype(DType::float32)});   // Keras's shape message
}

Shape Embedding::compute_output_shape(const Shape& input_shape) const {
    Shape out = input_shape;
    out.push_back(output_dim);
    return out;
}

Tensor Embedding::call(const Tensor& x, CallContext& ctx) {
    // Keras casts float inputs to integers; ids keep their integer type.
    const Tensor ids = x.dtype() == DType::float32 ? x.astype(DType::int32) : x;
    ctx.saved = {ids};
    auto& be = backend::for_tensor(x);
    // mixed_bfloat16: the rows rounded to bfloat16 (Keras casts the output to the compute dtype).
    if (dtype_policy().mixed_bfloat16()) return be.embedding_bf16(ids, weights()[0]->value, name());
    return be.embedding(ids, weights()[0]->value, name());
}

Tensor Embedding::backward(const Tensor& dy, CallContext& ctx) {
    accumulate_gradient(*weights()[0], backend::for_tensor(dy).embedding_backward(ctx.saved.at(0), dy, input_dim));
    return {};   // token ids have no gradient
}

Tensor Embedding::compute_mask(const Tensor& x, const Tensor&) const {
    if (!options.mask_zero) return {};
    const Tensor ids = x.to(Device::cpu());
    Tensor mask(ids.shape(), DType::float32);
    float* m = mask.data<float>();
    for (int64_t i = 0; i < ids.numel(); ++i) m[i] = ids.item(i) != 0.0 ? 1.0f : 0.0f;
    return mask;
}

void Embedding::check_data(const Tensor& x) const {
    if (!x.device().is_cpu()) return;   // the backend checks device data batch by batch
    for (int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.item(i);
        if (v < 0 || v >= static_cast<double>(input_dim))
            value_error("Embedding layer \"{}\": input id {} at position {} is outside [0, {}) (input_dim={})", name(),
                        static_cast<int64_t>(v), index_str(x.shape(), i), input_dim, input_dim);
    }
}

nlohmann::json Embedding::get_config() const {
    auto config = Layer::get_config();
    config["input_dim"] = input_dim;
    config["output_dim"] = output_dim;
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
