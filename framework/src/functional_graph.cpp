#include "functional_graph.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "keras/autodiff.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/ops.hpp"

namespace keras {

namespace {

bool is_input_node(const Node& node) { return node.inputs.empty(); }

// Post-order depth-first walk from the outputs: a node is placed after all the nodes it reads.
struct Walk {
    const std::vector<KerasTensor>& inputs;
    std::vector<std::shared_ptr<Node>> order;
    std::set<const Node*> placed;

    bool declared(const Node* node) const {
        return std::any_of(inputs.begin(), inputs.end(), [&](const KerasTensor& t) { return t.node.get() == node; });
    }

    std::string layers_so_far() const {
        std::string names;
        for (const auto& n : order)
            if (!is_input_node(*n)) names += fmt::format("{}'{}'", names.empty() ? "" : ", ", n->layer->name());
        return "[" + names + "]";
    }

    void visit(const std::shared_ptr<Node>& node) {
        if (placed.count(node.get())) return;
        for (const auto& in : node->inputs) {
            if (is_input_node(*in.node) && !declared(in.node.get()))
                value_error("Graph disconnected: cannot find parent for {} at layer \"{}\". The following previous "
                            "layers were accessed without issue: {}", in.str(), node->layer->name(), layers_so_far());
            visit(in.node);
        }
        placed.insert(node.get());
        order.push_back(node);
    }
};

void check_tensors(const std::vector<KerasTensor>& tensors, const char* what, const std::string& model) {
    if (tensors.empty()) value_error("Model \"{}\": `{}` must not be empty", model, what);
    for (const auto& t : tensors)
        if (!t.node) value_error("Model \"{}\": an entry of `{}` is a KerasTensor without history", model, what);
}

Tensor add_gradients(const Tensor& a, const Tensor& b) {
    if (!a.defined()) return b;
    if (!b.defined()) return a;
    return backend::for_tensor(a).add(a, b);
}

// Keras's layer order (its map_graph), which its files' weights follow: layers by decreasing depth
// (inputs first), ties broken by when a depth-first walk from the outputs first met the layer.
std::vector<LayerPtr> layers_by_depth(const FunctionalGraph& graph, const std::vector<KerasTensor>& outputs) {
    std::map<const Layer*, size_t> first_met;
    std::set<const Node*> met;
    std::function<void(const Node&)> meet = [&](const Node& node) {
        if (!met.insert(&node).second) return;
        first_met.emplace(node.layer.get(), first_met.size());
        for (const auto& in : node.inputs) meet(*in.node);
    };
    for (const auto& out : outputs) meet(*out.node);
    for (const auto& in : graph.inputs) first_met.emplace(in.node->layer.get(), first_met.size());
    // A node is one deeper than the deepest node reading it; a layer as deep as its deepest node.
    std::map<const Node*, int> node_depth;
    std::map<const Layer*, int> layer_depth;
    for (size_t n = graph.nodes.size(); n-- > 0;) {
        const Node& node = *graph.nodes[n];
        const int depth = std::max(node_depth[&node], layer_depth[node.layer.get()]);
        node_depth[&node] = depth;
        layer_depth[node.layer.get()] = depth;
        for (const auto& in : node.inputs) node_depth[in.node.get()] = std::max(node_depth[in.node.get()], depth + 1);
    }
    std::vector<LayerPtr> layers;
    std::set<const Layer*> seen;
    for (const auto& node : graph.nodes)
        if (seen.insert(node->layer.get()).second) layers.push_back(node->layer);
    std::stable_sort(layers.begin(), layers.end(), [&](const LayerPtr& a, const LayerPtr& b) {
        const int da = layer_depth[a.get()], db = layer_depth[b.get()];
        return da != db ? da > db : first_met[a.get()] < first_met[b.get()];
    });
    return layers;
}

}  // namespace

std::shared_ptr<FunctionalGraph> FunctionalGraph::make(const std::vector<KerasTensor>& inputs,
                                                       const std::vector<KerasTensor>& outputs, const std::string& model) {
    check_tensors(inputs, "inputs", model);
    check_tensors(outputs, "outputs", model);
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (!is_input_node(*inputs[i].node))
            value_error("Model \"{}\": inputs[{}] must be a tensor returned by keras::Input(); received {} (the output "
                        "of layer \"{}\")", model, i, inputs[i].str(), inputs[i].node->layer->name());
        for (size_t j = 0; j < i; ++j)
            if (inputs[j].node == inputs[i].node)
                value_error("Model \"{}\": input {} is given twice in `inputs`", model, inputs[i].str());
    }
    auto graph = std::make_shared<FunctionalGraph>();
    graph->inputs = inputs;
    graph->outputs = outputs;
    Walk walk{inputs, {}, {}};
    for (const auto& in : inputs) walk.visit(in.node);
    for (const auto& out : outputs) {
        if (is_input_node(*out.node) && !walk.declared(out.node.get()))
            value_error("Graph disconnected: output {} is not connected to `inputs` of model \"{}\"", out.str(), model);
        walk.visit(out.node);
    }
    graph->nodes = std::move(walk.order);
    graph->layers = layers_by_depth(*graph, outputs);
    return graph;
}

std::shared_ptr<FunctionalGraph> FunctionalGraph::chain(const std::vector<LayerPtr>& layers, const Shape& input_shape) {
    auto graph = std::make_shared<FunctionalGraph>();
    const bool has_input = !layers.empty() && std::dynamic_pointer_cast<layers::InputLayer>(layers.front());
    // Named outright so that standing in for the data takes no name from the "input_layer" counter.
    LayerPtr input = has_input ? layers.front()
                               : std::make_shared<layers::InputLayer>(Shape(input_shape.begin() + 1, input_shape.end()),
                                                                      layers::InputOptions{.name = "input_layer"});
    auto node = std::make_shared<Node>(Node{.layer = input, .inputs = {}, .output_shape = input_shape});
    node->output_shapes = {input_shape};
    KerasTensor tensor{.shape = input_shape, .dtype = DType::float32, .node = node, .index = 0};
    graph->inputs = {tensor};
    graph->nodes = {node};
    graph->layers = {input};
    for (size_t i = has_input ? 1 : 0; i < layers.size(); ++i) {
        const Shape shape = layers[i]->compute_output_shape(tensor.shape);
        node = std::make_shared<Node>(Node{.layer = layers[i], .inputs = {tensor}, .output_shape = shape});
        node->output_shapes = {shape};
        tensor = KerasTensor{.shape = shape, .dtype = DType::float32, .node = node, .index = 0};
        graph->nodes.push_back(node);
        graph->layers.push_back(layers[i]);
    }
    graph->outputs = {tensor};
    return graph;
}

size_t FunctionalGraph::position(const Node* node) const {
    for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].get() == node) return i;
    runtime_error("functional graph: node of layer \"{}\" is not in the graph", node->layer->name());
}

namespace {
// Keras 3's activity_regularizer: the penalty of each float output, divided by its batch size, joins the
// loss; while training its gradient is kept for backward(), which adds it to the output's gradient.
void apply_activity_regularizer(const Layer& layer, const std::vector<Tensor>& outputs, CallContext& ctx) {
    if (!layer.activity_regularizer) return;
    autodiff::StopRecording pause;
    ctx.activity_loss = 0.0;
    ctx.activity_gradients.assign(outputs.size(), Tensor());
    for (size_t k = 0; k < outputs.size(); ++k) {
        const Tensor& y = outputs[k];
        if (!y.defined() || y.dtype() != DType::float32 || y.ndim() == 0 || y.dim(0) == 0) continue;
        const float batch = static_cast<float>(y.dim(0));
        ctx.activity_loss += (*layer.activity_regularizer)(y).to(Device::cpu()).item(0) / batch;
        if (ctx.training) ctx.activity_gradients[k] = ops::divide(layer.activity_regularizer->gradient(y), batch);
    }
}
}  // namespace

// Every node's outputs are kept as a list (one entry for most layers); masks belong to a node's first
// output only (an RNN's returned states carry none, as in Keras).
std::vector<Tensor> FunctionalGraph::forward(const std::vector<Tensor>& xs, std::vector<CallContext>& contexts,
                                             bool training, std::vector<Tensor>* output_masks) const {
    contexts.assign(nodes.size(), CallContext{});
    std::vector<std::vector<Tensor>> values(nodes.size(), std::vector<Tensor>(1));
    std::vector<Tensor> masks(nodes.size());
    auto value_of = [&](const KerasTensor& t) -> const Tensor& { return values[position(t.node.get())].at(t.index); };
    auto mask_of = [&](const KerasTensor& t) { return t.index == 0 ? masks[position(t.node.get())] : Tensor(); };
    for (size_t i = 0; i < inputs.size(); ++i) values[position(inputs[i].node.get())][0] = xs[i];
    for (size_t n = 0; n < nodes.size(); ++n) {
        const Node& node = *nodes[n];
        if (is_input_node(node)) continue;
        contexts[n].training = training;
        std::vector<Tensor> args, in_masks;
        for (const auto& in : node.inputs) {
            args.push_back(value_of(in));
            in_masks.push_back(mask_of(in));
        }
        if (node.runs_call_outputs()) {
            contexts[n].mask = in_masks[0];
            values[n] = node.layer->call_outputs(args[0], {args.begin() + 1, args.end()}, contexts[n]);
            masks[n] = node.layer->compute_mask(args[0], contexts[n].mask);
            apply_activity_regularizer(*node.layer, values[n], contexts[n]);
            continue;
        }
        if (node.list_input) {
            // Keras 3: Add, Average and Concatenate compute the same with or without masks; Multiply
            // reads them (ctx.input_masks). The output mask follows each layer's compute_mask.
            if (args.size() == 1) contexts[n].mask = in_masks[0];
            contexts[n].input_masks = in_masks;
            if (node.output_shapes.size() > 1) values[n] = node.layer->call_multi_outputs(args, contexts[n]);
            else values[n][0] = node.layer->call_multi(args, contexts[n]);
            masks[n] = node.layer->compute_mask_multi(args, in_masks);
            apply_activity_regularizer(*node.layer, values[n], contexts[n]);
            continue;
        }
        const Tensor mask = mask_of(node.inputs[0]);
        contexts[n].mask = mask;
        values[n][0] = node.layer->call(args[0], contexts[n]);
        masks[n] = node.layer->compute_mask(args[0], mask);
        apply_activity_regularizer(*node.layer, values[n], contexts[n]);
    }
    std::vector<Tensor> out;
    for (const auto& o : outputs) out.push_back(value_of(o));
    if (output_masks) {
        output_masks->clear();
        for (const auto& o : outputs) output_masks->push_back(mask_of(o));
    }
    return out;
}

// Gradients are kept per output of each node; a node of several outputs gets them all at once
// (undefined where an output received none).
void FunctionalGraph::backward(const std::vector<Tensor>& dys, std::vector<CallContext>& contexts,
                               const std::function<void(size_t node)>& after_node) const {
    std::vector<std::vector<Tensor>> grads(nodes.size());
    for (size_t n = 0; n < nodes.size(); ++n) grads[n].resize(std::max<size_t>(1, nodes[n]->output_shapes.size()));
    auto add_to = [&](const KerasTensor& t, const Tensor& g) {
        Tensor& slot = grads[position(t.node.get())].at(t.index);
        slot = add_gradients(slot, g);
    };
    for (size_t i = 0; i < outputs.size(); ++i) add_to(outputs[i], dys[i]);
    for (size_t n = nodes.size(); n-- > 0;) {
        const Node& node = *nodes[n];
        for (size_t k = 0; k < contexts[n].activity_gradients.size() && k < grads[n].size(); ++k)
            grads[n][k] = add_gradients(grads[n][k], contexts[n].activity_gradients[k]);
        const bool any = std::any_of(grads[n].begin(), grads[n].end(), [](const Tensor& g) { return g.defined(); });
        if (!is_input_node(node) && any) {
            std::vector<Tensor> in_grads;
            if (node.runs_call_outputs()) in_grads = node.layer->backward_outputs(grads[n], contexts[n]);
            else if (node.list_input && grads[n].size() > 1) in_grads = node.layer->backward_multi_outputs(grads[n], contexts[n]);
            else if (node.list_input) in_grads = node.layer->backward_multi(grads[n][0], contexts[n]);
            else in_grads = {node.layer->backward(grads[n][0], contexts[n])};
            for (size_t i = 0; i < node.inputs.size(); ++i)
                if (!is_input_node(*node.inputs[i].node)) add_to(node.inputs[i], in_grads.at(i));
            grads[n].clear();   // no longer needed
        }
        if (after_node) after_node(n);
    }
}

}  // namespace keras
