// keras::Input and Layer::operator(): how symbolic calls record the graph.
#include "keras/keras_tensor.hpp"

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/layer.hpp"

namespace keras {

std::string KerasTensor::history_label() const {
    if (!node) return "?";
    return fmt::format("{}[{}][{}]", node->layer->name(), node->index, index);
}

std::string KerasTensor::str() const {
    return fmt::format("KerasTensor(shape={}, dtype={}, name={})", shape_str(shape), to_string(dtype),
                       node ? node->layer->name() : "?");
}

KerasTensor Input(Shape shape, InputArgs args) {
    auto layer = std::make_shared<layers::InputLayer>(
        std::move(shape), layers::InputOptions{.batch_size = args.batch_size, .dtype = args.dtype,
                                               .batch_shape = args.batch_shape, .name = args.name});
    const Shape batch_shape = layer->batch_shape();
    layer->build_for(batch_shape);
    auto node = std::make_shared<Node>(Node{.layer = layer, .inputs = {}, .output_shape = batch_shape,
                                            .output_dtype = args.dtype, .index = 0, .list_input = false});
    node->output_shapes = {batch_shape};
    return {batch_shape, args.dtype, node};
}

// The node keeps the layer alive, so the layer must already be shared (a stack object would dangle).
static std::shared_ptr<Layer> owner_of(Layer& layer) {
    auto owner = layer.weak_from_this().lock();
    if (!owner)
        value_error("Layer \"{}\" was called on a KerasTensor but is not owned by a std::shared_ptr: create it with "
                    "std::make_shared<...>(...) or keras::share(layer) so the model can keep it", layer.name());
    return owner;
}

static void check_history(const KerasTensor& x, const Layer& layer) {
    if (!x.node)
        value_error("Layer \"{}\" was called on a KerasTensor without history: start the graph with keras::Input()",
                    layer.name());
}

// Keras returns a list from such a layer; one KerasTensor cannot hold it.
static void check_one_output(const Layer& layer) {
    if (layer.output_count() != 1)
        value_error("Layer \"{}\" ({}) returns {} outputs (e.g. return_state=true or merge_mode=None): call it with "
                    "layer->call_all(x) to get all of them", layer.name(), layer.class_name(), layer.output_count());
}

KerasTensor Layer::operator()(const KerasTensor& x) {
    check_one_output(*this);
    check_history(x, *this);
    auto owner = owner_of(*this);
    check_symbolic_input(x.shape);
    const Shape out = build_for(x.shape);
    auto node = std::make_shared<Node>(Node{.layer = owner, .inputs = {x}, .output_shape = out,
                                            .output_dtype = DType::float32, .index = node_count_++, .list_input = false});
    node->output_shapes = {out};
    return {out, DType::float32, node};
}

std::vector<KerasTensor> Layer::call_all(const KerasTensor& x, const std::vector<KerasTensor>& initial_state) {
    check_history(x, *this);
    std::vector<Shape> state_shapes;
    for (const auto& s : initial_state) {
        check_history(s, *this);
        state_shapes.push_back(s.shape);
    }
    auto owner = owner_of(*this);
    build_for(x.shape);
    check_initial_state(x.shape, state_shapes);
    std::vector<KerasTensor> inputs = {x};
    inputs.insert(inputs.end(), initial_state.begin(), initial_state.end());
    const std::vector<Shape> shapes = compute_output_shapes(x.shape);
    auto node = std::make_shared<Node>(Node{.layer = owner, .inputs = inputs, .output_shape = shapes.at(0),
                                            .output_dtype = DType::float32, .index = node_count_++, .list_input = false,
                                            .initial_states = initial_state.size(), .output_shapes = shapes});
    std::vector<KerasTensor> outputs;
    for (size_t i = 0; i < shapes.size(); ++i) outputs.push_back({shapes[i], DType::float32, node, static_cast<int>(i)});
    return outputs;
}

std::vector<Shape> shapes_of(const std::vector<KerasTensor>& xs) {
    std::vector<Shape> shapes;
    for (const auto& x : xs) shapes.push_back(x.shape);
    return shapes;
}

KerasTensor Layer::operator()(const std::vector<KerasTensor>& xs) {
    check_one_output(*this);
    for (const auto& x : xs) check_history(x, *this);
    auto owner = owner_of(*this);
    const Shape out = build_for_multi(shapes_of(xs));
    auto node = std::make_shared<Node>(Node{.layer = owner, .inputs = xs, .output_shape = out,
                                            .output_dtype = DType::float32, .index = node_count_++, .list_input = true});
    node->output_shapes = {out};
    return {out, DType::float32, node};
}

std::vector<KerasTensor> Layer::record_node_of_outputs(const std::vector<KerasTensor>& xs,
                                                      const std::function<std::vector<Shape>()>& build_outputs) {
    for (const auto& x : xs) check_history(x, *this);
    const std::vector<Shape> output_shapes = build_outputs();
    auto node = std::make_shared<Node>(Node{.layer = owner_of(*this), .inputs = xs, .output_shape = output_shapes.at(0),
                                            .output_dtype = DType::float32, .index = node_count_++, .list_input = true,
                                            .initial_states = 0, .output_shapes = output_shapes});
    std::vector<KerasTensor> outputs;
    for (size_t i = 0; i < output_shapes.size(); ++i)
        outputs.push_back({output_shapes[i], DType::float32, node, static_cast<int>(i)});
    return outputs;
}

}  // namespace keras
