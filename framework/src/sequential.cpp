#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/model.hpp"

#include "functional_graph.hpp"

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
    rebuild_graph();
}

void Sequential::pop() {
    if (layers_.empty()) value_error("There are no layers in the model \"{}\" to pop", name());
    layers_.pop_back();
    if (built_ && !layers_.empty()) build(input_shape_);
    if (layers_.empty()) {
        built_ = false;
        set_graph(nullptr);
    }
}

void Sequential::build(const Shape& input_shape) {
    if (layers_.empty()) value_error("Model \"{}\" has no layers: add() some before building or training it", name());
    if (input_shape.empty()) value_error("Model \"{}\": cannot build for a scalar input shape", name());
    // Built from an InputLayer, the layers see its batch axis (a fixed batch size or None) and check it
    // as a symbolic input; built from data, the batch axis is None and stateful layers take the data's.
    const auto input = std::dynamic_pointer_cast<layers::InputLayer>(layers_.front());
    Shape shape = input_shape;
    shape[0] = input ? input->batch_size : -1;
    const Shape model_input = shape;
    for (const auto& layer : layers_) {
        if (input) layer->check_symbolic_input(shape);
        shape = layer->build_for(shape);
    }
    input_shape_ = model_input;
    output_shape_ = shape;
    built_ = true;
    rebuild_graph();
    place_weights();
}

void Sequential::rebuild_graph() { set_graph(FunctionalGraph::chain(layers_, input_shape_)); }

// A Sequential without an InputLayer builds on its first data; after that every layer checks the
// data's shape against the one it was built for, and the first layer to see the data its values.
void Sequential::build_for_data(const std::vector<Tensor>& xs) {
    const Tensor& x = xs[0];
    if (!built_) build(x.shape());
    Shape shape = x.shape();
    shape[0] = -1;
    for (const auto& layer : layers_) shape = layer->build_for(shape);
    for (const auto& layer : layers_) {
        layer->check_data(x);
        if (!std::dynamic_pointer_cast<layers::InputLayer>(layer)) break;   // InputLayer passes x through
    }
}

}  // namespace keras
