// Merge layers of the functional API: Add, Subtract, Multiply, Average, Maximum, Minimum (element-wise,
// Keras's Merge family), Concatenate and Dot. They take a list of inputs: `(*add)({a, b})`.
#pragma once

#include "keras/export.hpp"

#include <string>
#include <vector>

#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Add's, Multiply's and Average's keyword arguments.
struct KERAS_API MergeOptions {
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<MergeOptions>& fields();
};
// Add's, Multiply's and Average's Keras config: nothing besides the name.
inline const FieldTable<MergeOptions>& MergeOptions::fields() {
    static const auto table = FieldTable<MergeOptions>();
    return table;
}

// The merge layers' base (Keras's Merge): list inputs only, built from their shapes. For the
// element-wise merges, unlike Keras, which broadcasts size-1 axes, inputs must have equal shapes (None
// matches anything); other shapes are Keras's "Inputs have incompatible shapes" error.
class KERAS_API Merge : public Layer {
public:
    Shape build_for_multi(const std::vector<Shape>& input_shapes) override;
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    // A merge layer called on one tensor, not a list: Keras's ValueError.
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // Keras 3: the logical OR of the input masks, undefined as soon as one input has none
    // (tf_keras / Keras 2 took the AND of the masks present instead).
    Tensor compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const override;
    nlohmann::json get_config() const override;
    MergeOptions options;
protected:
    Merge(const std::string& class_name, MergeOptions options)
        : Layer(class_name, options.name, options.trainable), options(std::move(options)) {}
};

// The element-wise sum of its inputs.
class KERAS_API Add : public Merge {
public:
    explicit Add(MergeOptions options = {}) : Merge("Add", std::move(options)) {}
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
};

// Keras 3 with masks (ctx.input_masks): a masked input counts as 1 at its padded steps, and when every
// input has a mask, the steps that none of them marks as real are 0.
class KERAS_API Multiply : public Merge {
public:
    explicit Multiply(MergeOptions options = {}) : Merge("Multiply", std::move(options)) {}
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;

private:
    // The factors of the product (x_i, or x_i with 1 at its padding), each input's mask broadcast to its
    // shape (undefined without one), and the output's mask broadcast (defined when every input has one).
    struct Factors {
        std::vector<Tensor> factors, keeps;
        Tensor output_keep;
    };
    Factors masked_factors(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const;
};

// The element-wise mean of its inputs.
class KERAS_API Average : public Merge {
public:
    explicit Average(MergeOptions options = {}) : Merge("Average", std::move(options)) {}
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
};

// The element-wise difference inputs[0] - inputs[1] of exactly two inputs (Keras's Subtract).
class KERAS_API Subtract : public Merge {
public:
    explicit Subtract(MergeOptions options = {}) : Merge("Subtract", std::move(options)) {}
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    Tensor call(const std::vector<Tensor>& xs) override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
};

// Maximum's and Minimum's base: an element-wise op without an identity, applied as Keras 3's
// _apply_merge_op_and_or_mask: with masks (ctx.input_masks), a padded step of one input takes the other
// inputs' value there, so only real steps compete.
class KERAS_API ElementwiseExtremum : public Merge {
public:
    Tensor call(const std::vector<Tensor>& xs) override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
protected:
    ElementwiseExtremum(const std::string& class_name, MergeOptions options, bool maximum)
        : Merge(class_name, std::move(options)), maximum_(maximum) {}
private:
    Tensor merge(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const;
    bool maximum_;
};

// The element-wise maximum of its inputs.
class KERAS_API Maximum : public ElementwiseExtremum {
public:
    explicit Maximum(MergeOptions options = {}) : ElementwiseExtremum("Maximum", std::move(options), true) {}
};

// The element-wise minimum of its inputs.
class KERAS_API Minimum : public ElementwiseExtremum {
public:
    explicit Minimum(MergeOptions options = {}) : ElementwiseExtremum("Minimum", std::move(options), false) {}
};

// Dot's keyword arguments besides `axes`. normalize: L2-normalize each input along its summed axis
// first, so the product is the cosine proximity.
struct KERAS_API DotOptions {
    bool normalize = false;
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<DotOptions>& fields();
};
// Dot's Keras config: normalize here; axes (an int or a list of two) read and written by the layer.
inline const FieldTable<DotOptions>& DotOptions::fields() {
    static const auto table = FieldTable<DotOptions>().boolean("normalize", &DotOptions::normalize);
    return table;
}
// Keras's Dot(axes): the dot product of two batched tensors along axes[0] of the first and axes[1] of
// the second (Keras's batch_dot); one axis ({1} or Dot(1)) serves both. The batch axis 0 cannot be
// summed over. The output holds the first input's other axes, then the second's (less its batch
// axis); a result of rank 1 becomes (batch, 1). Passes no mask on, as Keras.
class KERAS_API Dot : public Merge {
public:
    explicit Dot(std::vector<int> axes, DotOptions options = {});
    explicit Dot(int axes, DotOptions options = {}) : Dot(std::vector<int>{axes}, std::move(options)) {}
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    Tensor call(const std::vector<Tensor>& xs) override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
    Tensor compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const override;
    nlohmann::json get_config() const override;
    std::vector<int> axes;
    DotOptions dot_options;
private:
    // axes as positive axes of inputs of these ranks (ValueError for the batch axis or out of range).
    std::pair<size_t, size_t> positive_axes(const Shape& shape1, const Shape& shape2) const;
};

// Concatenate's keyword arguments.
struct KERAS_API ConcatenateOptions {
    int axis = -1;
    std::string name{};
    bool trainable = true;   // false: the layer's weights are frozen (Keras's trainable=False)
    static const FieldTable<ConcatenateOptions>& fields();
};
inline const FieldTable<ConcatenateOptions>& ConcatenateOptions::fields() {
    static const auto table = FieldTable<ConcatenateOptions>().integer("axis", &ConcatenateOptions::axis);
    return table;
}
// Joins its inputs along `axis`; every other axis must match.
class KERAS_API Concatenate : public Merge {
public:
    explicit Concatenate(ConcatenateOptions options = {});
    Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const override;
    Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx) override;
    std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx) override;
    // Keras 3: an input without a mask counts as all ones; along the time axis the masks are
    // concatenated, along the features they are OR-ed; undefined only when no input has a mask.
    Tensor compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const override;
    nlohmann::json get_config() const override;
    int axis;
    ConcatenateOptions concatenate_options;
private:
    size_t positive_axis(size_t rank) const;
};

}  // namespace keras::layers
