#include "keras/layers/attention.hpp"

#include <cmath>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

namespace {

// Keras's large negative score for hidden entries (float32).
constexpr float kHidden = -1e9f;

// (1, Tq, Tv): 1 where query step i may see key step j <= i (Keras's cumsum comparison).
Tensor causal_keep(int64_t tq, int64_t tv, Device device) {
    std::vector<float> keep(static_cast<size_t>(tq * tv));
    for (int64_t i = 0; i < tq; ++i)
        for (int64_t j = 0; j < tv; ++j) keep[static_cast<size_t>(i * tv + j)] = j <= i ? 1.0f : 0.0f;
    return Tensor(keep, Shape{1, tq, tv}).to(device);
}

// Multiplies 0/1 keep masks that broadcast; either may be undefined.
Tensor both(const Tensor& a, const Tensor& b) {
    if (!a.defined()) return b;
    if (!b.defined()) return a;
    return ops::multiply(a, b);
}

// A (batch, steps) mask as (batch, 1, steps) (a key / value mask) or (batch, steps, 1) (a query mask).
Tensor mask_as(const Tensor& mask, bool along_keys, Device device) {
    if (!mask.defined()) return {};
    const Shape s = mask.shape();
    return ops::reshape(mask.to(device), along_keys ? Shape{s[0], 1, s[1]} : Shape{s[0], s[1], 1});
}

Tensor mask_at(const std::vector<Tensor>& masks, size_t i) { return i < masks.size() ? masks[i] : Tensor(); }

std::string shapes_text(const std::vector<Shape>& shapes) {
    std::string out = "[";
    for (size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + shape_str(shapes[i]);
    return out + "]";
}

// The weights of one of MultiHeadAttention's projections (Keras's EinsumDense sublayers "query", "key",
// "value", "attention_output"), so files see them where Keras keeps them.
class Projection : public Layer {
public:
    explicit Projection(const std::string& name) : Layer("EinsumDense", name) {}
    void create(const Shape& kernel_shape, const Shape& bias_shape, const MultiHeadAttentionOptions& o) {
        kernel = add_weight(name() + "/kernel", kernel_shape, o.kernel_initializer);
        if (o.use_bias) bias = add_weight(name() + "/bias", bias_shape, o.bias_initializer);
    }
    VariablePtr kernel, bias;
};

Projection& projection(const LayerPtr& layer) { return static_cast<Projection&>(*layer); }

// x (batch, steps, dim) through a (dim, heads, size) kernel: (batch, heads, steps, size).
Tensor project_heads(const Tensor& x, const Projection& p, int heads, int size) {
    const int64_t batch = x.shape()[0], steps = x.shape()[1], dim = x.shape()[2];
    Tensor y = ops::matmul(x, ops::reshape(*p.kernel, {dim, int64_t{heads} * size}));
    if (p.bias) y = ops::add(y, ops::reshape(*p.bias, {int64_t{heads} * size}));
    return ops::transpose(ops::reshape(y, {batch, steps, heads, size}), {0, 2, 1, 3});
}

}  // namespace

// ---------------------------------------------------------------- Attention, AdditiveAttention

BaseDenseAttention::BaseDenseAttention(const std::string& class_name, const std::string& name, bool trainable)
    : Layer(class_name, name, trainable) {
    supports_masking = true;   // the query's mask is the output's (Layer::compute_mask_multi)
}

void BaseDenseAttention::check_input_shape(const Shape& input_shape) const {
    value_error("{} layer must be called on a list of inputs, namely [query, value] or [query, value, key]. "
                "Received: inputs={}.", class_name(), shape_str(input_shape));
}

Shape BaseDenseAttention::compute_output_shape(const Shape& input_shape) const {
    check_input_shape(input_shape);
    return input_shape;
}

void BaseDenseAttention::check_inputs(const std::vector<Shape>& shapes) const {
    if (shapes.size() < 2 || shapes.size() > 3)
        value_error("{} layer accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. "
                    "Received length: {}.", class_name(), shapes.size());
    for (const Shape& s : shapes)
        if (s.size() != 3)
            value_error("Layer \"{}\": query, value and key must have shape (batch, steps, dim). Received: {}", name(),
                        shapes_text(shapes));
    const Shape& key = shapes.back();
    if (shapes[0][2] >= 0 && key[2] >= 0 && shapes[0][2] != key[2])
        value_error("Layer \"{}\": the query's and the key's last axes must match. Received: {}", name(),
                    shapes_text(shapes));
    if (shapes.size() == 3 && shapes[1][1] >= 0 && key[1] >= 0 && shapes[1][1] != key[1])
        value_error("Layer \"{}\": value and key must have the same number of steps. Received: {}", name(),
                    shapes_text(shapes));
}

Shape BaseDenseAttention::compute_output_shape_multi(const std::vector<Shape>& input_shapes) const {
    check_inputs(input_shapes);
    return {input_shapes[0][0], input_shapes[0][1], input_shapes[1][2]};
}

Tensor BaseDenseAttention::call(const std::vector<Tensor>& inputs, bool training) {
    return attend(inputs, {}, training)[0];
}

std::vector<Tensor> BaseDenseAttention::call_with_scores(const std::vector<Tensor>& inputs,
                                                         const std::vector<Tensor>& masks, bool training) {
    build_for_multi(shapes_of(inputs));   // checks the shapes (and builds on first use)
    return attend(inputs, masks, training);
}

std::vector<KerasTensor> BaseDenseAttention::call_with_scores(const std::vector<KerasTensor>& inputs) {
    return record_node_of_outputs(inputs, [&] {
        const std::vector<Shape> shapes = shapes_of(inputs);
        const Shape out = build_for_multi(shapes);
        return std::vector<Shape>{out, {out[0], out[1], shapes[1][1]}};   // scores (batch, Tq, Tv)
    });
}

// The output's record carries the scores' too: a node that returns only the output still sends no
// gradient through them (backward_multi seeds the output alone).
Tensor BaseDenseAttention::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    return call_multi_outputs(xs, ctx)[0];
}

std::vector<Tensor> BaseDenseAttention::call_multi_outputs(const std::vector<Tensor>& xs, CallContext& ctx) {
    check_inputs(shapes_of(xs));
    const std::vector<Tensor> masks = ctx.input_masks;
    return record_inputs(xs, ctx, [&](const std::vector<Tensor>& in) { return attend(in, masks, ctx.training); });
}

// Keras 3's Attention.call: hidden scores get -1e9 before the softmax, padded query steps output 0.
std::vector<Tensor> BaseDenseAttention::attend(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                               bool training) const {
    const Tensor& query = inputs[0];
    const Tensor& value = inputs[1];
    const Tensor& key = inputs.size() > 2 ? inputs[2] : value;
    Tensor s = scores(query, key);
    const Device device = query.device();
    Tensor keep = mask_as(mask_at(masks, 1), true, device);   // Keras applies the value's mask to the keys
    if (use_causal_mask()) keep = both(keep, causal_keep(query.shape()[1], key.shape()[1], device));
    if (keep.defined()) s = ops::where(keep, s, ops::add(s, kHidden));
    Tensor weights = ops::softmax(s, -1);
    if (training && dropout_rate() > 0.0f) weights = ops::dropout(weights, dropout_rate());
    Tensor out = ops::matmul(weights, value);
    if (const Tensor q_mask = mask_at(masks, 0); q_mask.defined())
        out = ops::where(mask_as(q_mask, false, device), out, 0.0f);
    return {out, weights};
}

static void check_dropout(float dropout) {
    if (!(dropout >= 0.0f && dropout <= 1.0f))
        value_error("Invalid value received for argument `dropout`. Expected a float value between 0 and 1. "
                    "Received: dropout={}", dropout);
}

Attention::Attention(AttentionOptions opts)
    : BaseDenseAttention("Attention", opts.name, opts.trainable), options(std::move(opts)) {
    if (options.score_mode != "dot" && options.score_mode != "concat")
        value_error("Invalid value for argument score_mode. Expected one of {{'dot', 'concat'}}. Received: "
                    "score_mode={}", options.score_mode);
    check_dropout(options.dropout);
}

void Attention::build(const std::vector<Shape>& input_shapes) {
    check_inputs(input_shapes);
    if (options.use_scale) scale = add_weight("scale", {}, "ones");
    if (options.score_mode == "concat") concat_score_weight = add_weight("concat_score_weight", {}, "ones");
}

Tensor Attention::scores(const Tensor& query, const Tensor& key) const {
    if (options.score_mode == "dot") {
        Tensor s = ops::matmul(query, ops::transpose(key, {0, 2, 1}));
        return scale ? ops::multiply(s, *scale) : s;
    }
    // concat: (batch, Tq, 1, dim) + (batch, 1, Tv, dim), summed over dim after tanh
    Tensor sum = ops::add(ops::expand_dims(query, -2), ops::expand_dims(key, -3));
    if (scale) sum = ops::multiply(sum, *scale);
    return ops::multiply(ops::sum(ops::tanh(sum), -1), *concat_score_weight);
}

nlohmann::json Attention::get_config() const {
    auto config = Layer::get_config();
    config["score_mode"] = options.score_mode;
    write_fields(config, options);
    return config;
}

AdditiveAttention::AdditiveAttention(AdditiveAttentionOptions opts)
    : BaseDenseAttention("AdditiveAttention", opts.name, opts.trainable), options(std::move(opts)) {
    check_dropout(options.dropout);
}

void AdditiveAttention::build(const std::vector<Shape>& input_shapes) {
    check_inputs(input_shapes);
    if (input_shapes[0][2] < 0)
        value_error("Layer \"{}\": the query's last axis must be defined. Received: {}", name(),
                    shapes_text(input_shapes));
    if (options.use_scale) scale = add_weight("scale", {input_shapes[0][2]}, "glorot_uniform");
}

Tensor AdditiveAttention::scores(const Tensor& query, const Tensor& key) const {
    Tensor t = ops::tanh(ops::add(ops::expand_dims(query, -2), ops::expand_dims(key, -3)));
    if (scale) t = ops::multiply(t, *scale);
    return ops::sum(t, -1);
}

nlohmann::json AdditiveAttention::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options);
    return config;
}

// ---------------------------------------------------------------- MultiHeadAttention

MultiHeadAttention::MultiHeadAttention(int num_heads, int key_dim, MultiHeadAttentionOptions opts)
    : Layer("MultiHeadAttention", opts.name, opts.trainable), num_heads(num_heads), key_dim(key_dim),
      options(std::move(opts)) {
    supports_masking = true;
    if (num_heads <= 0)
        value_error("Received an invalid value for argument `num_heads`, expected a positive integer. Received: "
                    "num_heads={}", num_heads);
    if (key_dim <= 0)
        value_error("Received an invalid value for argument `key_dim`, expected a positive integer. Received: "
                    "key_dim={}", key_dim);
    if (options.value_dim && *options.value_dim <= 0)
        value_error("Received an invalid value for argument `value_dim`, expected a positive integer or `None`. "
                    "Received: value_dim={}", *options.value_dim);
    if (options.output_shape && *options.output_shape <= 0)
        value_error("Invalid `output_shape`: {}. When specified, the `output_shape` should be of type tuple, list, "
                    "or int.", *options.output_shape);
    check_dropout(options.dropout);
    initializers::check_name(options.kernel_initializer);
    initializers::check_name(options.bias_initializer);
    query_dense_ = std::make_shared<Projection>("query");
    key_dense_ = std::make_shared<Projection>("key");
    value_dense_ = std::make_shared<Projection>("value");
    output_dense_ = std::make_shared<Projection>("attention_output");
}

void MultiHeadAttention::check_input_shape(const Shape& input_shape) const {
    value_error("Layer \"{}\": MultiHeadAttention is called on query and value (and key): (*mha)({{query, value}}). "
                "Received one input of shape {}", name(), shape_str(input_shape));
}

Shape MultiHeadAttention::compute_output_shape(const Shape& input_shape) const {
    check_input_shape(input_shape);
    return input_shape;
}

void MultiHeadAttention::check_inputs(const std::vector<Shape>& shapes) const {
    if (shapes.size() < 2 || shapes.size() > 4)
        value_error("Layer \"{}\": MultiHeadAttention takes query, value and optionally key and attention_mask, got {} "
                    "inputs", name(), shapes.size());
    for (size_t i = 0; i < shapes.size() && i < 3; ++i)
        if (shapes[i].size() != 3 || shapes[i][2] < 0)
            value_error("Layer \"{}\": query, value and key must have shape (batch, steps, dim) with a known dim (only "
                        "the default attention_axes are supported). Received: {}", name(), shapes_text(shapes));
    const Shape& value = shapes[1];
    const Shape& key = shapes.size() > 2 ? shapes[2] : value;
    if (value[1] >= 0 && key[1] >= 0 && value[1] != key[1])
        value_error("All dimensions of `value` and `key`, except the last one, must be equal. Received: "
                    "value_shape={} and key_shape={}", shape_str(value), shape_str(key));
    if (shapes.size() == 4) check_attention_mask(shapes[3], shapes[0][1], value[1]);
}

// Keras's (B, T, S) attention_mask; an axis of 1 broadcasts, as the masked softmax allows.
void MultiHeadAttention::check_attention_mask(const Shape& mask, int64_t tq, int64_t ts) const {
    auto fits = [](int64_t d, int64_t want) { return d == 1 || d < 0 || want < 0 || d == want; };
    if (mask.size() != 3 || !fits(mask[1], tq) || !fits(mask[2], ts))
        value_error("Layer \"{}\": attention_mask must have shape (batch, query steps, value steps) = (batch, {}, {}) "
                    "(an axis of 1 broadcasts). Received: attention_mask.shape={}", name(), tq < 0 ? "None" : std::to_string(tq),
                    ts < 0 ? "None" : std::to_string(ts), shape_str(mask));
}

Shape MultiHeadAttention::compute_output_shape_multi(const std::vector<Shape>& input_shapes) const {
    check_inputs(input_shapes);
    const Shape& q = input_shapes[0];
    return {q[0], q[1], options.output_shape.value_or(static_cast<int>(q[2]))};
}

void MultiHeadAttention::build(const std::vector<Shape>& input_shapes) {
    check_inputs(input_shapes);
    const int64_t q_dim = input_shapes[0][2], v_dim = input_shapes[1][2];
    const int64_t k_dim = input_shapes.size() > 2 ? input_shapes[2][2] : v_dim;
    const int64_t heads = num_heads, out = options.output_shape.value_or(static_cast<int>(q_dim));
    projection(query_dense_).create({q_dim, heads, key_dim}, {heads, key_dim}, options);
    projection(key_dense_).create({k_dim, heads, key_dim}, {heads, key_dim}, options);
    projection(value_dense_).create({v_dim, heads, value_dim()}, {heads, value_dim()}, options);
    projection(output_dense_).create({heads, value_dim(), out}, {out}, options);
    for (const auto& p : {query_dense_, key_dense_, value_dense_, output_dense_}) track_weights_of(*p);
}

std::vector<std::pair<std::string, LayerPtr>> MultiHeadAttention::nested_layers() const {
    return {{"query_dense", query_dense_}, {"key_dense", key_dense_}, {"value_dense", value_dense_},
            {"output_dense", output_dense_}};
}

Tensor MultiHeadAttention::call(const std::vector<Tensor>& inputs, bool training) {
    return attend(inputs, {}, training)[0];
}

std::vector<Tensor> MultiHeadAttention::call_with_scores(const std::vector<Tensor>& inputs,
                                                         const std::vector<Tensor>& masks, bool training) {
    build_for_multi(shapes_of(inputs));   // checks the shapes (and builds on first use)
    return attend(inputs, masks, training, true);
}

std::vector<KerasTensor> MultiHeadAttention::call_with_scores(const std::vector<KerasTensor>& inputs) {
    return record_node_of_outputs(inputs, [&] {
        const std::vector<Shape> shapes = shapes_of(inputs);
        const Shape out = build_for_multi(shapes);
        return std::vector<Shape>{out, {out[0], num_heads, out[1], shapes[1][1]}};   // (batch, heads, Tq, Ts)
    });
}

Tensor MultiHeadAttention::call_multi(const std::vector<Tensor>& xs, CallContext& ctx) {
    return recorded_attend(xs, ctx, false)[0];
}

std::vector<Tensor> MultiHeadAttention::call_multi_outputs(const std::vector<Tensor>& xs, CallContext& ctx) {
    return recorded_attend(xs, ctx, true);
}

// Keras computes the output differently when it returns the scores (see attend), so the two calls
// differ in more than what they return.
std::vector<Tensor> MultiHeadAttention::recorded_attend(const std::vector<Tensor>& xs, CallContext& ctx,
                                                        bool with_scores) {
    check_inputs(shapes_of(xs));
    const std::vector<Tensor> masks = ctx.input_masks;
    return record_inputs(xs, ctx, [&](const std::vector<Tensor>& in) {
        return attend(in, masks, ctx.training, with_scores);
    });
}

// Keras 3's MultiHeadAttention.call for attention_axes over the steps, as matmuls per head.
std::vector<Tensor> MultiHeadAttention::attend(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                               bool training, bool with_scores) const {
    const Tensor& query = inputs[0];
    const Tensor& value = inputs[1];
    const Tensor& key = inputs.size() > 2 ? inputs[2] : value;
    const Device device = query.device();
    const int64_t batch = query.shape()[0], tq = query.shape()[1], ts = value.shape()[1];
    // The attention mask (batch or 1, Tq, Ts): query, value and key masks, the causal mask and the
    // attention_mask input, ANDed.
    Tensor keep = mask_as(mask_at(masks, 0), false, device);
    keep = both(keep, mask_as(mask_at(masks, 1), true, device));
    keep = both(keep, mask_as(mask_at(masks, 2), true, device));
    if (options.use_causal_mask) keep = both(keep, causal_keep(tq, ts, device));
    if (inputs.size() > 3) {   // Keras's attention_mask: nonzero (true) entries may be attended to
        const Tensor mask = inputs[3].dtype() == DType::float32 ? inputs[3] : inputs[3].astype(DType::float32);
        keep = both(keep, ops::not_equal(mask.to(device), 0.0f));
    }

    const Tensor q = ops::multiply(project_heads(query, projection(query_dense_), num_heads, key_dim),
                                   1.0f / std::sqrt(static_cast<float>(key_dim)));
    const Tensor k = project_heads(key, projection(key_dense_), num_heads, key_dim);
    const Tensor v = project_heads(value, projection(value_dense_), num_heads, value_dim());
    Tensor scores = ops::matmul(q, ops::transpose(k, {0, 1, 3, 2}));   // (batch, heads, Tq, Ts)
    Tensor head_keep;
    if (keep.defined()) {   // hidden entries -1e9 before the softmax
        head_keep = ops::expand_dims(keep, 1);
        scores = ops::where(head_keep, scores, kHidden);
    }
    Tensor weights = ops::softmax(scores, -1);
    // Keras 3 takes two paths here: without dropout or returned scores, the backend's
    // dot_product_attention (on jax a query step that sees no key averages every value uniformly, which
    // the softmax of equal -1e9 scores gives); otherwise its own masked Softmax, which zeroes the hidden
    // entries after the softmax too.
    if (head_keep.defined() && (options.dropout > 0.0f || with_scores)) weights = ops::where(head_keep, weights, 0.0f);
    const Tensor returned_scores = weights;   // Keras 3 returns them before the dropout
    if (training && options.dropout > 0.0f) weights = ops::dropout(weights, options.dropout);
    Tensor heads = ops::transpose(ops::matmul(weights, v), {0, 2, 1, 3});   // (batch, Tq, heads, value_dim)
    heads = ops::reshape(heads, {batch, tq, int64_t{num_heads} * value_dim()});
    const Projection& o = projection(output_dense_);
    const int64_t out_dim = o.kernel->value.shape()[2];
    Tensor out = ops::matmul(heads, ops::reshape(*o.kernel, {int64_t{num_heads} * value_dim(), out_dim}));
    return {o.bias ? ops::add(out, *o.bias) : out, returned_scores};
}

nlohmann::json MultiHeadAttention::get_config() const {
    auto config = Layer::get_config();
    config["num_heads"] = num_heads;
    config["key_dim"] = key_dim;
    config["value_dim"] = value_dim();
    config["output_shape"] = options.output_shape ? nlohmann::json::array({*options.output_shape}) : nlohmann::json();
    config["attention_axes"] = built() ? nlohmann::json::array({1}) : nlohmann::json();
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
