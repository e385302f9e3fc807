#pragma once

#include "keras/export.hpp"

#include <string>

#include "keras/layer.hpp"

namespace keras::layers {

struct KERAS_API EmbeddingOptions {
    std::string embeddings_initializer = "uniform";   // uniform(-0.05, 0.05)
    // Id 0 is padding: the layer's mask is ids != 0 (Keras's mask_zero).
    bool mask_zero = false;
    std::string name{};
};

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
