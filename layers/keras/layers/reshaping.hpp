// Keras's shape layers: Cropping1D, ZeroPadding1D, UpSampling1D over (batch, steps, features), and
// Reshape, Permute, Identity over any rank. Written with ops (slice, concatenate, take, reshape,
// transpose): the backward pass is automatic. As in Keras 3 only Identity passes a mask on; the
// others drop one with Keras 3's warning.
#pragma once

#include <string>
#include <vector>

#include "keras/export.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"

namespace keras::layers {

// Options of the layers whose config is their constructor's argument only.
struct KERAS_API ShapeLayerOptions {
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<ShapeLayerOptions>& fields() {
        static const auto table = FieldTable<ShapeLayerOptions>();
        return table;
    }
};

// Removes cropping[0] steps at the start and cropping[1] at the end.
class KERAS_API Cropping1D : public Layer {
public:
    explicit Cropping1D(std::vector<int64_t> cropping = {1, 1}, ShapeLayerOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    std::vector<int64_t> cropping;

protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// ZeroPadding1D's keyword arguments.
struct KERAS_API ZeroPadding1DOptions {
    std::string name{};
    bool trainable = true;   // false freezes the weights (Keras's trainable=False)
    static const FieldTable<ZeroPadding1DOptions>& fields() {
        static const auto table = FieldTable<ZeroPadding1DOptions>().fixed("data_format", "\"channels_last\"");
        return table;
    }
};

// Adds padding[0] zero steps at the start and padding[1] at the end.
class KERAS_API ZeroPadding1D : public Layer {
public:
    explicit ZeroPadding1D(std::vector<int64_t> padding = {1, 1}, ZeroPadding1DOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    std::vector<int64_t> padding;
    ZeroPadding1DOptions options;

protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// Repeats each step `size` times: (batch, steps, features) -> (batch, steps * size, features).
class KERAS_API UpSampling1D : public Layer {
public:
    explicit UpSampling1D(int64_t size = 2, ShapeLayerOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    int64_t size;

protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// (batch, ...) -> (batch, *target_shape); one entry may be -1 (inferred).
class KERAS_API Reshape : public Layer {
public:
    explicit Reshape(Shape target_shape, ShapeLayerOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    Shape target_shape;
};

// Permutes the non-batch axes: dims are 1-based, as Keras's (Permute({2, 1}) swaps steps and features).
class KERAS_API Permute : public Layer {
public:
    explicit Permute(std::vector<int> dims, ShapeLayerOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& inputs) override;
    nlohmann::json get_config() const override;
    std::vector<int> dims;

protected:
    void check_input_shape(const Shape& input_shape) const override;
};

// Returns its input unchanged (and its mask).
class KERAS_API Identity : public Layer {
public:
    explicit Identity(ShapeLayerOptions options = {});
    Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
    Tensor call(const Tensor& inputs) override { return inputs; }
};

}  // namespace keras::layers
