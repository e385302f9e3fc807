#include "saving/functional_config.hpp"

#include <algorithm>
#include <map>

#include "keras/layers/attention.hpp"

namespace keras::saving {

namespace {

using nlohmann::json;

json shape_json(const Shape& shape) {
    json dims = json::array();
    for (int64_t d : shape) dims.push_back(d < 0 ? json(nullptr) : json(d));
    return dims;
}

// Keras numbers a layer's nodes within the model (calls made outside it do not count), in call order.
std::map<const Node*, int> node_indices(const FunctionalGraph& graph) {
    std::map<const Layer*, std::vector<const Node*>> by_layer;
    for (const auto& node : graph.nodes) by_layer[node->layer.get()].push_back(node.get());
    std::map<const Node*, int> index;
    for (auto& [layer, nodes] : by_layer) {
        std::sort(nodes.begin(), nodes.end(), [](const Node* a, const Node* b) { return a->index < b->index; });
        for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i]] = static_cast<int>(i);
    }
    return index;
}

json history(const KerasTensor& t, const std::map<const Node*, int>& index) {
    return json::array({t.node->layer->name(), index.at(t.node.get()), t.index});
}

json keras_tensor(const KerasTensor& t, const std::map<const Node*, int>& index) {
    return {{"class_name", "__keras_tensor__"},
            {"config", {{"shape", shape_json(t.shape)}, {"dtype", to_string(t.dtype)}, {"keras_history", history(t, index)}}}};
}

// The attention layers keep Keras's call argument use_causal_mask as an option; Keras 3 finds it in
// each call's kwargs.
bool causal_call(const Layer& layer) {
    if (const auto* a = dynamic_cast<const layers::BaseDenseAttention*>(&layer)) return a->use_causal_mask();
    if (const auto* m = dynamic_cast<const layers::MultiHeadAttention*>(&layer)) return m->options.use_causal_mask;
    return false;
}

json inbound_nodes(const FunctionalGraph& graph, const Layer& layer, const std::map<const Node*, int>& index) {
    std::vector<const Node*> nodes;
    for (const auto& node : graph.nodes)
        if (node->layer.get() == &layer && !node->inputs.empty()) nodes.push_back(node.get());
    std::sort(nodes.begin(), nodes.end(), [&](const Node* a, const Node* b) { return index.at(a) < index.at(b); });
    json out = json::array();
    for (const Node* node : nodes) {
        json arg, kwargs = json::object();
        if (causal_call(layer)) kwargs["use_causal_mask"] = true;
        if (node->list_input && node->output_shapes.size() > 1) kwargs["return_attention_scores"] = true;
        if (dynamic_cast<const layers::MultiHeadAttention*>(&layer)) {   // Keras's call(query, value, key)
            json args = json::array();
            for (size_t i = 0; i < node->inputs.size() && i < 3; ++i) args.push_back(keras_tensor(node->inputs[i], index));
            if (node->inputs.size() > 3) kwargs["attention_mask"] = keras_tensor(node->inputs[3], index);
            out.push_back({{"args", args}, {"kwargs", kwargs}});
            continue;
        }
        if (node->list_input) {
            arg = json::array();
            for (const auto& in : node->inputs) arg.push_back(keras_tensor(in, index));
        } else {
            arg = keras_tensor(node->inputs[0], index);
        }
        if (node->initial_states > 0) {   // Keras 3 keeps initial_state a keyword argument of the call
            json states = json::array();
            for (size_t i = node->inputs.size() - node->initial_states; i < node->inputs.size(); ++i)
                states.push_back(keras_tensor(node->inputs[i], index));
            kwargs["initial_state"] = states;
        }
        out.push_back({{"args", json::array({arg})}, {"kwargs", kwargs}});
    }
    return out;
}

}  // namespace

json functional_config(const Model& model, const FunctionalGraph& graph) {
    const auto index = node_indices(graph);
    json layers = json::array();
    for (const auto& layer : graph.layers)
        layers.push_back({{"module", "keras.layers"}, {"class_name", layer->class_name()}, {"config", layer->get_config()},
                          {"registered_name", nullptr}, {"name", layer->name()},
                          {"inbound_nodes", inbound_nodes(graph, *layer, index)}});
    json inputs = json::array(), outputs = json::array();
    for (const auto& t : graph.inputs) inputs.push_back(history(t, index));
    for (const auto& t : graph.outputs) outputs.push_back(history(t, index));
    json config = {{"name", model.name()}, {"trainable", true}, {"layers", layers},
                   {"input_layers", inputs}, {"output_layers", outputs}};
    return {{"class_name", "Functional"}, {"config", config}};
}

}  // namespace keras::saving
