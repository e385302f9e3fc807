#include "keras/input_layer.hpp"

#include <mutex>
#include <set>

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::layers {

namespace {
// Keras's rules for shape / batch_size / batch_shape; returns (shape without batch axis, batch size).
std::pair<Shape, int64_t> resolve_shape(Shape shape, const InputOptions& options) {
    if (options.batch_shape.empty()) {
        const int64_t batch = options.batch_size.value_or(-1);
        if (options.batch_size && batch <= 0)
            value_error("Input: batch_size must be a positive integer, got {}", batch);
        return {std::move(shape), batch};
    }
    if (!shape.empty()) value_error("You cannot pass both `shape` and `batch_shape` at the same time.");
    if (options.batch_size) value_error("You cannot pass both `batch_size` and `batch_shape` at the same time.");
    const int64_t batch = options.batch_shape[0];
    if (batch == 0 || batch < -1)
        value_error("Input: the batch axis of batch_shape must be positive or -1 (None), got {}",
                    shape_str(options.batch_shape));
    return {Shape(options.batch_shape.begin() + 1, options.batch_shape.end()), batch};
}
// tf.keras's warning, once per InputLayer.
void warn_incompatible_once(const std::string& name, const Shape& expected, const Shape& input_shape) {
    static std::mutex mutex;
    static std::set<std::string> warned;   // by name: a later input of the same name is not warned again
    std::lock_guard lock(mutex);
    if (!warned.insert(name).second) return;
    fmt::print(stderr, "WARNING: Model was constructed with shape {} for input '{}', but it was called on an input "
               "with incompatible shape {}.\n", shape_str(expected), name, shape_str(input_shape));
}
}  // namespace

InputLayer::InputLayer(Shape shape, InputOptions options) : Layer("InputLayer", options.name), dtype(options.dtype) {
    std::tie(this->shape, batch_size) = resolve_shape(std::move(shape), options);
    for (int64_t d : this->shape)
        if (d == 0 || d < -1) value_error("Input: every dimension must be positive or -1 (None), got {}", shape_str(this->shape));
}

Shape InputLayer::batch_shape() const {
    Shape out = {batch_size};
    out.insert(out.end(), shape.begin(), shape.end());
    return out;
}

// Keras 3 runs a model on data whose batch size or other axes differ from its InputLayer's
// batch_shape (the layers after it check what they need: Dense its last axis, Conv1D its channels), so
// a same-rank input is accepted; tf.keras warned, and so do we, once per InputLayer. A fixed batch size
// still matters to the layers that keep states (stateful RNNs check it, with Keras's message).
void InputLayer::check_input_shape(const Shape& input_shape) const {
    const Shape expected = batch_shape();
    if (input_shape.size() != expected.size())
        input_error(fmt::format("expected shape={}, found shape={}", shape_str(expected), shape_str(input_shape)),
                    input_shape);
    bool same = true;
    for (size_t i = 1; i < expected.size(); ++i)
        same = same && (expected[i] < 0 || input_shape[i] < 0 || expected[i] == input_shape[i]);
    if (!same) warn_incompatible_once(name(), expected, input_shape);
}

Shape InputLayer::compute_output_shape(const Shape& input_shape) const {
    Shape out = batch_shape();
    if (batch_size < 0 && !input_shape.empty()) out[0] = input_shape[0];
    return out;
}

nlohmann::json InputLayer::get_config() const {
    nlohmann::json dims = nlohmann::json::array();
    for (int64_t d : batch_shape()) dims.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
    return {{"name", name()}, {"batch_shape", dims}, {"dtype", to_string(dtype)}, {"sparse", false},
            {"ragged", false}, {"optional", false}};
}

}  // namespace keras::layers
