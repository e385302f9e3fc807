#include "keras/autodiff.hpp"

#include <algorithm>
#include <utility>
#include <unordered_map>
#include <unordered_set>

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras {
namespace autodiff {

namespace {
// Per thread, like TensorFlow's tape stack: how many tapes (or recording scopes) are open, and how
// many stop_recording guards. Threads that run no tape never record.
thread_local int open_tapes = 0;
thread_local int pauses = 0;

std::shared_ptr<Node> leaf(const Tensor& x, const Variable* variable, const std::string& op) {
    auto node = std::make_shared<Node>();
    node->op = op;
    node->variable = variable;
    node->shape = x.shape();
    return node;
}

void add_into(Tensor& acc, const Tensor& g) {
    if (!acc.defined()) acc = g;
    else acc = backend::for_tensor(acc).add(acc, g);
}

// Nodes reachable from the targets, each after every node that reads it (so walking the list
// backwards visits a node only once all its consumers have sent their gradients). Iterative: a
// step loop over 500 time steps records chains far deeper than the call stack allows.
std::vector<Node*> reverse_topological(const std::vector<Node*>& roots, const std::unordered_set<Node*>& stop) {
    std::vector<Node*> order;
    std::unordered_set<Node*> seen;
    std::vector<std::pair<Node*, size_t>> stack;
    for (Node* root : roots) {
        if (!root || !seen.insert(root).second) continue;
        stack.emplace_back(root, 0);
        while (!stack.empty()) {
            auto& [node, next] = stack.back();
            const bool expand = !stop.count(node);
            if (expand && next < node->inputs.size()) {
                Node* child = node->inputs[next++].get();
                if (child && seen.insert(child).second) stack.emplace_back(child, 0);
                continue;
            }
            order.push_back(node);
            stack.pop_back();
        }
    }
    std::reverse(order.begin(), order.end());   // consumers first
    return order;
}

void check_gradient(const Node& node, size_t i, const Tensor& g) {
    const Node& in = *node.inputs[i];
    if (g.shape() != in.shape)
        runtime_error("The gradient of op \"{}\" for its input {} has shape {}, but that input has shape {}", node.op, i,
                      shape_str(g.shape()), shape_str(in.shape));
}
// The inputs' records (null for a constant), or none at all when no input is recorded.
std::vector<std::shared_ptr<Node>> recorded_inputs(const std::vector<Tensor>& inputs) {
    std::vector<std::shared_ptr<Node>> nodes;
    bool any = false;
    for (const auto& x : inputs) {
        nodes.push_back(x.grad_node());
        any = any || x.grad_node() != nullptr;
    }
    if (!any) nodes.clear();
    return nodes;
}

// Adds an op's input gradients into what its inputs have received so far.
void send_back(const Node& node, const std::vector<Tensor>& in, std::unordered_map<Node*, Tensor>& grads) {
    if (in.size() != node.inputs.size())
        runtime_error("The backward of op \"{}\" returned {} gradients for {} inputs", node.op, in.size(),
                      node.inputs.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (!node.inputs[i] || !in[i].defined()) continue;
        check_gradient(node, i, in[i]);
        add_into(grads[node.inputs[i].get()], in[i]);
    }
}
}  // namespace

bool recording() { return open_tapes > 0 && pauses == 0; }

Tensor record(const std::string& op, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward) {
    if (!recording()) return out;
    std::vector<std::shared_ptr<Node>> nodes = recorded_inputs(inputs);
    if (nodes.empty()) return out;   // a function of constants is a constant
    auto node = std::make_shared<Node>();
    node->op = op;
    node->inputs = std::move(nodes);
    node->backward = std::move(backward);
    node->shape = out.shape();
    out.set_grad_node(std::move(node));
    return out;
}

std::vector<Tensor> record_multi(const std::string& op, std::vector<Tensor> outputs, const std::vector<Tensor>& inputs,
                                 MultiBackwardFn backward) {
    if (outputs.size() == 1)   // one output: an ordinary record
        return {record(op, std::move(outputs[0]), inputs,
                       [backward = std::move(backward)](const Tensor& dy) { return backward({dy}); })};
    if (!recording()) return outputs;
    std::vector<std::shared_ptr<Node>> nodes = recorded_inputs(inputs);
    if (nodes.empty()) return outputs;   // a function of constants is a constant
    auto joint = std::make_shared<Node>();
    joint->op = op;
    joint->inputs = std::move(nodes);
    joint->backward_multi = std::move(backward);
    for (const auto& y : outputs) joint->output_shapes.push_back(y.shape());
    for (size_t k = 0; k < outputs.size(); ++k) {
        auto node = std::make_shared<Node>();
        node->op = op + " output " + std::to_string(k);
        node->inputs = {joint};
        node->output_index = static_cast<int>(k);
        node->shape = outputs[k].shape();
        outputs[k].set_grad_node(std::move(node));
    }
    return outputs;
}

Tensor read(const Variable& variable) {
    if (!recording()) return variable.value;
    Tensor t = variable.value.detached();
    t.set_grad_node(leaf(t, &variable, "read " + variable.name));
    return t;
}

std::vector<Tensor> record_accumulating(const std::string& op, std::vector<Tensor> outputs,
                                        const std::vector<Tensor>& inputs, const std::vector<VariablePtr>& weights,
                                        std::function<std::vector<Tensor>(const std::vector<Tensor>& dys)> run_backward) {
    std::vector<Tensor> all_inputs = inputs;
    for (const auto& w : weights) all_inputs.push_back(read(*w));
    auto backward = [op, n_inputs = inputs.size(), weights, run_backward = std::move(run_backward)](
                        const std::vector<Tensor>& dys) {
        // Keep what the grad fields held (fit()'s own gradients) and hand back only this call's share.
        std::vector<Tensor> kept;
        for (const auto& w : weights) kept.push_back(std::exchange(w->grad, Tensor{}));
        std::vector<Tensor> grads = run_backward(dys);
        if (grads.size() != n_inputs)
            runtime_error("The backward of op \"{}\" returned {} gradients for {} inputs", op, grads.size(), n_inputs);
        for (size_t i = 0; i < weights.size(); ++i) {
            grads.push_back(weights[i]->grad);
            weights[i]->grad = kept[i];
        }
        return grads;
    };
    for (auto& y : outputs) y = y.detached();
    return record_multi(op, std::move(outputs), all_inputs, std::move(backward));
}

Tensor record_accumulating(const std::string& op, Tensor out, const Tensor& input,
                           const std::vector<VariablePtr>& weights, std::function<Tensor(const Tensor& dy)> run_backward) {
    return record_accumulating(op, std::vector<Tensor>{std::move(out)}, {input}, weights,
                               [run_backward = std::move(run_backward)](const std::vector<Tensor>& dys) {
                                   return std::vector<Tensor>{run_backward(dys[0])};
                               })[0];
}

Tensor watch_leaf(const Tensor& x) {
    Tensor t = x.detached();
    t.set_grad_node(leaf(t, nullptr, "watched tensor"));
    return t;
}

std::vector<Tensor> gradients(const std::vector<Tensor>& targets, const std::vector<Tensor>& seeds,
                              const std::vector<std::shared_ptr<Node>>& sources,
                              std::vector<std::pair<const Variable*, Tensor>>* variable_grads) {
    StopRecording no_recording;   // gradients of gradients are not recorded
    std::unordered_map<Node*, size_t> source_index;
    std::unordered_set<Node*> stop;
    for (size_t i = 0; i < sources.size(); ++i)
        if (sources[i]) source_index.emplace(sources[i].get(), i), stop.insert(sources[i].get());

    std::unordered_map<Node*, Tensor> grads;
    // A several-output op's gradients, one slot per output, filled by its outputs' nodes.
    std::unordered_map<Node*, std::vector<Tensor>> output_grads;
    std::vector<Node*> roots;
    for (size_t k = 0; k < targets.size(); ++k) {
        Node* root = targets[k].grad_node().get();
        if (!root) continue;
        const Tensor seed = k < seeds.size() && seeds[k].defined()
                                ? seeds[k]
                                : Tensor::full(targets[k].shape(), 1.0f, targets[k].device());
        if (seed.shape() != targets[k].shape())
            value_error("The gradient given for target {} has shape {}, but the target has shape {}", k,
                        shape_str(seed.shape()), shape_str(targets[k].shape()));
        add_into(grads[root], seed);
        roots.push_back(root);
    }

    std::vector<Tensor> out(sources.size());
    std::unordered_map<const Variable*, size_t> variable_slot;
    for (Node* node : reverse_topological(roots, stop)) {
        if (node->backward_multi && !source_index.count(node)) {
            auto it = output_grads.find(node);
            if (it == output_grads.end()) continue;
            std::vector<Tensor> dys = std::move(it->second);
            output_grads.erase(it);
            send_back(*node, node->backward_multi(dys), grads);
            continue;
        }
        auto it = grads.find(node);
        if (it == grads.end()) continue;
        Tensor g = std::move(it->second);
        grads.erase(it);   // a node's gradient is done once its consumers ran: free it
        if (node->output_index >= 0 && !source_index.count(node)) {
            Node* op = node->inputs[0].get();
            auto& slots = output_grads[op];
            slots.resize(op->output_shapes.size());
            add_into(slots[static_cast<size_t>(node->output_index)], g);
            continue;
        }
        if (auto s = source_index.find(node); s != source_index.end()) {
            add_into(out[s->second], g);
            continue;
        }
        if (node->variable) {
            if (!variable_grads) continue;
            auto [slot, fresh] = variable_slot.emplace(node->variable, variable_grads->size());
            if (fresh) variable_grads->emplace_back(node->variable, Tensor{});
            add_into((*variable_grads)[slot->second].second, g);
            continue;
        }
        if (node->backward) send_back(*node, node->backward(g), grads);
    }
    return out;
}

RecordingScope::RecordingScope() : saved_pause_(pauses) {
    ++open_tapes;
    pauses = 0;
}
RecordingScope::~RecordingScope() {
    --open_tapes;
    pauses = saved_pause_;
}

StopRecording::StopRecording() : saved_(pauses) { ++pauses; }
StopRecording::~StopRecording() { pauses = saved_; }

}  // namespace autodiff

// ---------------------------------------------------------------- GradientTape

GradientTape::GradientTape(GradientTapeOptions options) : persistent_(options.persistent) { ++autodiff::open_tapes; }

GradientTape::~GradientTape() { --autodiff::open_tapes; }

void GradientTape::watch(Tensor& x) { x = autodiff::watch_leaf(x); }

void GradientTape::check_usable() {
    if (used_ && !persistent_)
        runtime_error("A non-persistent GradientTape can only be used to compute one set of gradients (or jacobians)");
    used_ = true;
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<VariablePtr>& sources,
                                           bool unconnected_zeros) {
    check_usable();
    std::vector<std::pair<const Variable*, Tensor>> found;
    autodiff::gradients({target}, {}, {}, &found);
    std::vector<Tensor> out;
    for (const auto& v : sources) {
        if (!v) value_error("GradientTape.gradient(): a source variable is null");
        auto it = std::find_if(found.begin(), found.end(), [&](const auto& f) { return f.first == v.get(); });
        if (it != found.end()) out.push_back(it->second);
        else out.push_back(unconnected_zeros ? Tensor::zeros(v->value.shape(), v->value.dtype(), v->value.device())
                                             : Tensor{});
    }
    return out;
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Tensor>& sources,
                                           bool unconnected_zeros) {
    check_usable();
    std::vector<std::shared_ptr<autodiff::Node>> nodes;
    for (size_t i = 0; i < sources.size(); ++i) {
        if (!sources[i].grad_node())
            value_error("GradientTape.gradient(): source {} was not watched (call tape.watch(x) before using x) and "
                        "is no result of a recorded op", i);
        nodes.push_back(sources[i].grad_node());
    }
    auto out = autodiff::gradients({target}, {}, nodes);
    for (size_t i = 0; i < out.size(); ++i)
        if (!out[i].defined() && unconnected_zeros)
            out[i] = Tensor::zeros(sources[i].shape(), sources[i].dtype(), sources[i].device());
    return out;
}

Tensor GradientTape::gradient(const Tensor& target, const Tensor& source, bool unconnected_zeros) {
    return gradient(target, std::vector<Tensor>{source}, unconnected_zeros)[0];
}

Tensor custom_gradient(const std::string& name, const std::vector<Tensor>& inputs, const ForwardWithGradient& fn) {
    std::pair<Tensor, autodiff::BackwardFn> result;
    {
        autodiff::StopRecording inside;   // the forward's own ops are not recorded: backward replaces them
        std::vector<Tensor> plain;
        for (const auto& x : inputs) plain.push_back(x.detached());
        result = fn(plain);
    }
    auto backward = [name, n = inputs.size(), user = std::move(result.second)](const Tensor& dy) {
        std::vector<Tensor> g = user(dy);
        if (g.size() != n)
            runtime_error("custom_gradient \"{}\": the backward returned {} gradients for {} inputs", name, g.size(), n);
        return g;
    };
    return autodiff::record(name, std::move(result.first), inputs, std::move(backward));
}

std::vector<Tensor> custom_gradient(const std::string& name, const std::vector<Tensor>& inputs,
                                    const ForwardWithGradients& fn) {
    std::pair<std::vector<Tensor>, autodiff::MultiBackwardFn> result;
    {
        autodiff::StopRecording inside;
        std::vector<Tensor> plain;
        for (const auto& x : inputs) plain.push_back(x.detached());
        result = fn(plain);
    }
    auto backward = [name, n = inputs.size(), user = std::move(result.second)](const std::vector<Tensor>& dys) {
        std::vector<Tensor> g = user(dys);
        if (g.size() != n)
            runtime_error("custom_gradient \"{}\": the backward returned {} gradients for {} inputs", name, g.size(), n);
        return g;
    };
    return autodiff::record_multi(name, std::move(result.first), inputs, std::move(backward));
}

}  // namespace keras
