#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Embedding's keyword arguments, in Keras's order.
struct KERAS_API EmbeddingOptions {
    std::string embeddings_initializer = "uniform";   // uniform(-0.05, 0.05)
    // Id 0 is padding: the layer's mask is ids != 0 (Keras's mask_zero).
    bool mask_zero = false;
    std::optional<regularizers::Regularizer> embeddings_regularizer{};
    std::optional<constraints::Constraint> embeddings_constraint{};
    // Keras's weights=: the initial (input_dim, output_dim) matrix (pretrained vectors, e.g. GloVe),
    // instead of embeddings_initializer. Not part of the config (the file's weights hold it).
    Tensor weights{};
    std::string name{};
    // Keras's trainable=: false freezes the weights (e.g. pretrained vectors while the rest trains).
    bool trainable = true;
    // Keras's dtype: a policy name ("float32", "mixed_bfloat16"); empty = the global policy
    // (keras::mixed_precision::global_policy()) when the layer is made.
    std::string dtype{};
    static const FieldTable<EmbeddingOptions>& fields();
};

// Embedding's Keras config (get_config and loading); input_dim and output_dim are the constructor's.
inline const FieldTable<EmbeddingOptions>& EmbeddingOptions::fields() {
    using O = EmbeddingOptions;
    static const auto table = FieldTable<O>()
        .regularizer("embeddings_regularizer", &O::embeddings_regularizer)
        .constraint("embeddings_constraint", &O::embeddings_constraint)
        .fixed("activity_regularizer", "null", true, false)   // the Layer's: read by the loader
        .fixed("quantization_config", "null", true, false)   // written as Keras 3 does; not checked, as before
        .initializer("embeddings_initializer", &O::embeddings_initializer)
        .boolean("mask_zero", &O::mask_zero);
    return table;
}

// Turns token ids (int32 / int64, any shape) into dense vectors: (batch, T) -> (batch, T, output_dim).
// An id outside [0, input_dim) is an error that names the id and where it was.
class KERAS_API Embedding : public Layer {
public:
    Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // Every id in [0, input_dim); the error names the id and its position in x.
    void check_data(const Tensor& x) const override;
    // With mask_zero: ids != 0, shape of the ids; otherwise no mask (the input's mask is not passed on).
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    nlohmann::json get_config() const override;

    int64_t input_dim, output_dim;
    EmbeddingOptions options;

protected:
    void build(const Shape& input_shape) override;
    // Token ids of any length are fine once built.
    void check_built_shape(const Shape&) const override {}
};

}  // namespace keras::layers
