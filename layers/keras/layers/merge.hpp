// Merge layers of the functional API: Add, Multiply, Average (element-wise, Keras's _Merge family)
// and Concatenate. They take a list of inputs: `(*add)({a, b})`.
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
