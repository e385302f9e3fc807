// Attention layers written with keras::ops (their backward is automatic): Attention (Luong-style dot
// or concat scores), AdditiveAttention (Bahdanau-style) and MultiHeadAttention, with Keras 3's
// arguments, defaults, weights and masks.
//
// Keras's call-time arguments: masks come from the inputs (Embedding(mask_zero) or Masking upstream),
// as in Keras 3. `use_causal_mask` is a call argument in Keras; here it is an option of the layer,
// applying to each of its calls, and a saved functional model writes it into each call's node
// `kwargs`, where Keras 3 keeps it (loading reads it from there). Keras's `return_attention_scores=True`
// is call_with_scores(), on a batch or on KerasTensors (a functional model's node of two outputs, saved
// and loaded with that keyword as Keras writes it). MultiHeadAttention's `attention_mask` is a fourth
// input (see the class).
#pragma once

#include "keras/export.hpp"

#include <optional>
#include <string>
#include <vector>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Attention's keyword arguments, in Keras's order, then its call argument, then name and trainable.
struct KERAS_API AttentionOptions {
    bool use_scale = false;   // a learned scalar multiplying the scores
    std::string score_mode = "dot";   // "dot": query . key; "concat": sum(tanh(query + key))
    float dropout = 0.0f;   // on the attention weights, while training
    bool use_causal_mask = false;   // Keras's call argument: step i attends to steps <= i only
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<AttentionOptions>& fields();
};
// Attention's Keras config; score_mode is written and read by the layer; seed is written as null.
inline const FieldTable<AttentionOptions>& AttentionOptions::fields() {
    using O = AttentionOptions;
    static const auto table = FieldTable<O>()
        .boolean("use_scale", &O::use_scale)
        .number("dropout", &O::dropout)
        .fixed("seed", "null", true, false);
    return table;
}

// AdditiveAttention's keyword arguments (Keras's default use_scale is true here).
struct KERAS_API AdditiveAttentionOptions {
    bool use_scale = true;   // a learned vector (one entry per feature) multiplying tanh(query + key)
    float dropout = 0.0f;
    bool use_causal_mask = false;   // Keras's call argument, as Attention's
    std::string name{};
    bool trainable = true;
    static const FieldTable<AdditiveAttentionOptions>& fields();
};
// AdditiveAttention's Keras config.
inline const FieldTable<AdditiveAttentionOptions>& AdditiveAttentionOptions::fields() {
    using O = AdditiveAttentionOptions;
    static const auto table = FieldTable<O>()
        .boolean("use_scale", &O::use_scale)
        .number("dropout", &O::dropout)
        .fixed("seed", "null", true, false);
    return table;
}

// What Attention and AdditiveAttention share (Keras 2 called it BaseDenseAttention): called on a list
// [query, value] or [query, value, key] (key = value when left out), shapes (batch, Tq, dim),
// (batch, Tv, dim), (batch, Tv, dim); the output is softmax(scores(query, key)) @ value, shape
// (batch, Tq, dim). Masks: a value mask hides those steps from every query step; a query mask zeroes
// the output at padded query steps and is the output's mask.
class KERAS_API BaseDenseAttention : public Layer {
public:
    Shape compute_output_shape(const Shape& input_shape) const override;   // refuses one tensor (not a list)
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    Tensor call(const std::vector<Tensor>& inputs, bool training) override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    virtual bool use_causal_mask() const = 0;
    virtual void set_use_causal_mask(bool causal) = 0;
    // Keras's `layer(inputs, return_attention_scores=True)` on a batch: {output, scores}, the scores
    // being the attention weights (batch, Tq, Tv) after the softmax (and after dropout while training,
    // as Keras 3 returns them). masks: the inputs' (batch, steps) masks, as a model passes them. Written
    // with ops, so a GradientTape sees both outputs: gradients flow through the scores too.
    std::vector<Tensor> call_with_scores(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks = {},
                                         bool training = false);
    // The same in the functional API: `auto out = attention->call_with_scores({query, value});` gives
    // {output, scores} KerasTensors, as Keras's `output, scores = layer([q, v], return_attention_scores=True)`.
    std::vector<KerasTensor> call_with_scores(const std::vector<KerasTensor>& inputs);
    std::vector<Tensor> call_multi_outputs(const std::vector<Tensor>& xs, CallContext& ctx) override;

protected:
    BaseDenseAttention(const std::string& class_name, const std::string& name, bool trainable);
    void check_input_shape(const Shape& input_shape) const override;
    void check_inputs(const std::vector<Shape>& shapes) const;
    virtual float dropout_rate() const = 0;
    // (batch, Tq, Tv) scores of each query step against each key step.
    virtual Tensor scores(const Tensor& query, const Tensor& key) const = 0;

private:
    // {output, attention weights}
    std::vector<Tensor> attend(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                               bool training) const;
};

// Keras's Attention (Luong-style): scores query . key (score_mode "dot"), or sum(tanh(query + key))
// over the features ("concat"), times `scale` when use_scale. Weights: scale (use_scale) and
// concat_score_weight ("concat"), both scalars initialised to 1.
class KERAS_API Attention : public BaseDenseAttention {
public:
    explicit Attention(AttentionOptions options = {});
    nlohmann::json get_config() const override;
    bool use_causal_mask() const override { return options.use_causal_mask; }
    void set_use_causal_mask(bool causal) override { options.use_causal_mask = causal; }
    AttentionOptions options;
    VariablePtr scale, concat_score_weight;

protected:
    void build(const std::vector<Shape>& input_shapes) override;
    float dropout_rate() const override { return options.dropout; }
    Tensor scores(const Tensor& query, const Tensor& key) const override;
};

// Keras's AdditiveAttention (Bahdanau-style): scores sum(scale * tanh(query + key)) over the features,
// scale a learned (dim,) vector (glorot_uniform) when use_scale, else 1.
class KERAS_API AdditiveAttention : public BaseDenseAttention {
public:
    explicit AdditiveAttention(AdditiveAttentionOptions options = {});
    nlohmann::json get_config() const override;
    bool use_causal_mask() const override { return options.use_causal_mask; }
    void set_use_causal_mask(bool causal) override { options.use_causal_mask = causal; }
    AdditiveAttentionOptions options;
    VariablePtr scale;

protected:
    void build(const std::vector<Shape>& input_shapes) override;
    float dropout_rate() const override { return options.dropout; }
    Tensor scores(const Tensor& query, const Tensor& key) const override;
};

// MultiHeadAttention's keyword arguments besides num_heads and key_dim, in Keras's order.
struct KERAS_API MultiHeadAttentionOptions {
    std::optional<int> value_dim{};   // per-head size of the values; default key_dim
    float dropout = 0.0f;   // on the attention weights, while training
    bool use_bias = true;
    std::optional<int> output_shape{};   // the output's last axis; default the query's
    std::string kernel_initializer = "glorot_uniform";
    std::string bias_initializer = "zeros";
    bool use_causal_mask = false;   // Keras's call argument: step i attends to steps <= i only
    std::string name{};
    bool trainable = true;
    static const FieldTable<MultiHeadAttentionOptions>& fields();
};
// MultiHeadAttention's Keras config; num_heads, key_dim, value_dim, output_shape and attention_axes
// are written and read by the layer.
inline const FieldTable<MultiHeadAttentionOptions>& MultiHeadAttentionOptions::fields() {
    using O = MultiHeadAttentionOptions;
    static const auto table = FieldTable<O>()
        .number("dropout", &O::dropout)
        .boolean("use_bias", &O::use_bias)
        .fixed("use_gate", "false")
        .nulls({"sliding_window", "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"})
        .initializer("kernel_initializer", &O::kernel_initializer)
        .initializer("bias_initializer", &O::bias_initializer)
        .fixed("seed", "null", true, false);
    return table;
}

// Keras's MultiHeadAttention over the default attention axis (inputs (batch, steps, features)):
// called as call(query, value) or call(query, value, key), i.e. `(*mha)({query, value})`; Keras's
// `attention_mask=m` (batch, Tq, Ts), true / nonzero where a query step may see a key step, is a fourth
// input, `(*mha)({query, value, key, m})` (the value again as key when there is none). Each head
// projects query, key and value (EinsumDense weights of Keras's shapes and names: query/kernel
// (dim, heads, key_dim), query/bias (heads, key_dim), key/..., value/... (value_dim), attention_output/
// kernel (heads, value_dim, out), attention_output/bias (out)), takes softmax(q k^T / sqrt(key_dim))
// and combines the heads. Masks as Keras 3: the query's, value's and key's masks (and the causal
// mask) hide score entries; the output carries the query's mask.
class KERAS_API MultiHeadAttention : public Layer {
public:
    MultiHeadAttention(int num_heads, int key_dim, MultiHeadAttentionOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;   // refuses one tensor
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    Tensor call(const std::vector<Tensor>& inputs, bool training) override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    nlohmann::json get_config() const override;
    // Keras's `mha(query, value, return_attention_scores=True)` on a batch: {output, scores}, the scores
    // (batch, num_heads, Tq, Ts) after the softmax and before dropout (as Keras 3 returns them; its
    // masked softmax then gives 0, not 1 / Ts, to the keys of a query step that sees none). masks
    // and gradients as BaseDenseAttention::call_with_scores.
    std::vector<Tensor> call_with_scores(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks = {},
                                         bool training = false);
    // In the functional API: {output, scores} KerasTensors, `mha->call_with_scores({query, value})`.
    std::vector<KerasTensor> call_with_scores(const std::vector<KerasTensor>& inputs);
    std::vector<Tensor> call_multi_outputs(const std::vector<Tensor>& xs, CallContext& ctx) override;
    // Keras 3 saves the projections as sublayers: query_dense, key_dense, value_dense, output_dense.
    std::vector<std::pair<std::string, LayerPtr>> nested_layers() const override;
    int num_heads, key_dim;
    MultiHeadAttentionOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override;
    void build(const std::vector<Shape>& input_shapes) override;

private:
    int value_dim() const { return options.value_dim.value_or(key_dim); }
    void check_inputs(const std::vector<Shape>& shapes) const;
    void check_attention_mask(const Shape& mask, int64_t tq, int64_t ts) const;
    // {output, attention scores}; with_scores: Keras's path when the scores are returned
    std::vector<Tensor> attend(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training,
                               bool with_scores = false) const;
    // attend() recorded for the automatic backward, with the masks of ctx
    std::vector<Tensor> recorded_attend(const std::vector<Tensor>& xs, CallContext& ctx, bool with_scores);
    LayerPtr query_dense_, key_dense_, value_dense_, output_dense_;
};

}  // namespace keras::layers
