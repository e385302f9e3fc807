#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/model.hpp"

namespace keras {

Sequential::Sequential(const std::string& name) : Model(name.empty() ? utils::unique_name("sequential") : name) {}

Sequential::Sequential(std::initializer_list<LayerPtr> layers, const std::string& name) : Sequential(name) {
    for (const auto& l : layers) add(l);
}

// An InputLayer fixes the input shape; from then on each added layer is built at once, so an
// incompatible layer fails in add(), naming itself and the shapes, as in Keras.
void Sequential::add(LayerPtr layer) {
    if (!layer) value_error("Sequential.add(): the layer is null");
    if (layer->output_count() != 1)   // Keras 2's check (e.g. an RNN with return_state=True)
        value_error("All layers in a Sequential model should have a single output tensor. For multi-output layers, "
                    "use the functional API. Layer \"{}\" ({}) has {} outputs.", layer->name(), layer->class_name(),
                    layer->output_count());
    for (const auto& l : layers_)
        if (l == layer || l->name() == layer->name())
            value_error("All layers added to a Sequential model should have unique names. Name \"{}\" is already the "
                        "name of a layer in this model. Update the `name` argument to pass a unique name.", layer->name());
    if (auto input = std::dynamic_pointer_cast<layers::InputLayer>(layer)) {
        if (!layers_.empty())
            value_error("Sequential.add(): an InputLayer (\"{}\") can only be the first layer of a model", layer->name());
        layers_.push_back(layer);
        build(input->batch_shape());
        return;
    }
    layers_.push_back(layer);
    if (!built_) return;
    try {
        if (std::dynamic_pointer_cast<layers::InputLayer>(layers_.front())) layer->check_symbolic_input(output_shape_);
        output_shape_ = layer->build_for(output_shape_);
    } catch (...) {
        layers_.pop_back();
        throw;
    }
}

void Sequential::pop() {
    if (layers_.empty()) value_error("There are no layers in the model \"{}\" to pop", name());
    layers_.pop_back();
    if (built_ && !layers_.empty()) build(input_shape_);
    if (layers_.empty()) built_ = false;
}

}  // namespace keras
