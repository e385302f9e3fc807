#include "functional_loader.hpp"

#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/keras_tensor.hpp"
#include "keras/layers/attention.hpp"

namespace keras::layers {

namespace {

using nlohmann::json;

// A reference to a layer's output: [layer name, node index, tensor index].
struct TensorRef {
    std::string layer;
    int node = 0;
    int tensor = 0;   // which output of the call (RNN return_state: 1 = h, 2 = c)
};

TensorRef parse_ref(const json& ref, const ConfigSource& source) {
    if (!ref.is_array() || ref.size() < 3 || !ref[0].is_string() || !ref[1].is_number_integer() ||
        !ref[2].is_number_integer() || ref[2].get<int>() < 0)
        value_error("File '{}': a functional model_config refers to a tensor as {}, expected [layer, node, tensor]",
                    source.file, ref.dump());
    return {ref[0].get<std::string>(), ref[1].get<int>(), ref[2].get<int>()};
}

// One call of a layer: the tensors it reads, whether they were passed as a list, and the RNN's
// initial_state (Keras 3: the kwarg; Keras 2: the inputs after the first).
struct Call {
    std::vector<TensorRef> inputs;
    bool list = false;
    std::vector<TensorRef> initial_state{};
    std::optional<bool> use_causal_mask{};   // the attention layers' call argument, when the node gives it
    bool return_attention_scores = false;   // the attention layers' call argument: {output, scores}
};

bool is_merge(const std::string& class_name) {
    for (const char* merge : {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"})
        if (class_name == merge) return true;
    return false;
}

// Layers whose Keras 2 inbound nodes append the initial states to the sequence.
bool takes_initial_state(const std::string& class_name) {
    return class_name == "SimpleRNN" || class_name == "LSTM" || class_name == "GRU" || class_name == "Bidirectional";
}

TensorRef parse_keras_tensor(const json& t, const std::string& class_name, const ConfigSource& source) {
    if (!t.is_object() || !t.contains("config") || !t["config"].contains("keras_history"))
        value_error("File '{}': an inbound node of a {} layer holds {}, expected a __keras_tensor__", source.file,
                    class_name, t.dump());
    return parse_ref(t["config"]["keras_history"], source);
}

// A boolean call argument of a node's kwargs: absent or null = not given; anything else is refused.
std::optional<bool> call_flag(const json& kwargs, const char* key, const std::string& class_name,
                              const ConfigSource& source) {
    if (!kwargs.contains(key) || kwargs[key].is_null()) return std::nullopt;
    if (!kwargs[key].is_boolean())
        value_error("File '{}': a {} layer is called with {}={}, expected true or false", source.file, class_name, key,
                    kwargs[key].dump());
    return kwargs[key].get<bool>();
}

// MultiHeadAttention's attention_mask keyword is its fourth input, after the key (the value again when
// the call has no key).
void add_attention_mask(Call& call, const TensorRef& mask, const std::string& class_name, const ConfigSource& source) {
    if (class_name != "MultiHeadAttention")
        value_error("File '{}': a {} layer is called with an attention_mask, which only MultiHeadAttention takes",
                    source.file, class_name);
    if (call.inputs.size() < 2 || call.inputs.size() > 3)
        value_error("File '{}': a MultiHeadAttention layer is called with an attention_mask and {} other tensors, "
                    "expected query, value and optionally key", source.file, call.inputs.size());
    if (call.inputs.size() == 2) call.inputs.push_back(call.inputs[1]);
    call.inputs.push_back(mask);
    call.list = true;
}

// The attention layers' keyword arguments: key and attention_mask (tensors), use_causal_mask,
// return_attention_scores; the masks Keras passes (query_mask, value_mask, key_mask, mask) are
// computed here anyway.
void parse_attention_kwargs(const json& kwargs, Call& call, const std::string& class_name, const ConfigSource& source) {
    if (kwargs.contains("key") && !kwargs["key"].is_null())
        call.inputs.push_back(parse_keras_tensor(kwargs["key"], class_name, source)), call.list = true;
    call.use_causal_mask = call_flag(kwargs, "use_causal_mask", class_name, source);
    call.return_attention_scores = call_flag(kwargs, "return_attention_scores", class_name, source).value_or(false);
    if (kwargs.contains("attention_mask") && !kwargs["attention_mask"].is_null())
        add_attention_mask(call, parse_keras_tensor(kwargs["attention_mask"], class_name, source), class_name, source);
}

// Sets the call argument on the layer; it applies to every call of the layer here, so calls that
// disagree are refused.
void apply_causal(Layer& layer, const std::vector<Call>& calls, const ConfigSource& source) {
    std::optional<bool> causal;
    for (const Call& call : calls) {
        const bool c = call.use_causal_mask.value_or(false);
        if (causal && *causal != c)
            value_error("File '{}': layer \"{}\" is called with use_causal_mask both true and false; kerascpp keeps "
                        "one value per layer", source.file, layer.name());
        causal = c;
    }
    if (auto* a = dynamic_cast<BaseDenseAttention*>(&layer)) a->set_use_causal_mask(causal.value_or(false));
    else if (auto* m = dynamic_cast<MultiHeadAttention*>(&layer)) m->options.use_causal_mask = causal.value_or(false);
}

// tf.keras 2 writes the attention layers' call keywords as the fourth item of the first reference:
// [query, 0, 0, {"value": [layer, node, tensor], "key": [...], "use_causal_mask": ...}]. The tensors
// become the call's further inputs (query, value, key, attention_mask: the order the layers take them).
void parse_keras2_attention_kwargs(const json& ref, Call& call, const std::string& class_name,
                                   const ConfigSource& source) {
    if (ref.size() < 4 || !ref[3].is_object()) return;
    json kwargs = ref[3];
    for (const char* name : {"value", "key"}) {
        if (!kwargs.contains(name) || kwargs[name].is_null()) continue;
        call.inputs.push_back(parse_ref(kwargs[name], source));
        kwargs.erase(name);
    }
    if (kwargs.contains("attention_mask") && !kwargs["attention_mask"].is_null())
        add_attention_mask(call, parse_ref(kwargs["attention_mask"], source), class_name, source);
    kwargs.erase("attention_mask");   // a reference here, where parse_attention_kwargs reads a Keras 3 tensor
    parse_attention_kwargs(kwargs, call, class_name, source);
}

Call parse_call(const json& node, const std::string& class_name, const ConfigSource& source) {
    Call call;
    if (node.is_object()) {   // Keras 3: {"args": [tensor or [tensors]], "kwargs": {"initial_state": ...}}
        const json args = node.value("args", json::array());
        if (!args.is_array() || args.empty())
            value_error("File '{}': an inbound node of a {} layer has no args: {}", source.file, class_name, node.dump());
        const json& first = args[0];
        call.list = first.is_array();
        for (const json& t : call.list ? first : json::array({first}))
            call.inputs.push_back(parse_keras_tensor(t, class_name, source));
        // MultiHeadAttention's call(query, value, key): tensors as separate positional arguments
        for (size_t i = 1; i < args.size() && !call.list; ++i)
            if (args[i].is_object()) call.inputs.push_back(parse_keras_tensor(args[i], class_name, source));
        call.list = call.list || call.inputs.size() > 1;
        const json kwargs = node.value("kwargs", json::object());
        parse_attention_kwargs(kwargs, call, class_name, source);
        if (kwargs.contains("initial_state") && !kwargs["initial_state"].is_null()) {
            const json& states = kwargs["initial_state"];   // one tensor or a list of them
            for (const json& t : states.is_array() ? states : json::array({states}))
                call.initial_state.push_back(parse_keras_tensor(t, class_name, source));
        }
        return call;
    }
    if (!node.is_array() || node.empty())   // Keras 2: [[layer, node, tensor, kwargs], ...]
        value_error("File '{}': an inbound node of a {} layer is {}, expected a list of [layer, node, tensor, kwargs]",
                    source.file, class_name, node.dump());
    for (const json& ref : node) call.inputs.push_back(parse_ref(ref, source));
    parse_keras2_attention_kwargs(node[0], call, class_name, source);
    if (takes_initial_state(class_name) && call.inputs.size() > 1) {   // Keras 2 appends initial_state to the inputs
        call.initial_state.assign(call.inputs.begin() + 1, call.inputs.end());
        call.inputs.resize(1);
    }
    call.list = call.inputs.size() > 1 || is_merge(class_name);
    return call;
}

// input_layers / output_layers: a list of references, or one reference (a model of one input).
std::vector<TensorRef> parse_endpoints(const json& list, const char* key, const ConfigSource& source) {
    if (!list.is_array() || list.empty())
        value_error("File '{}': the functional model_config has no `{}`", source.file, key);
    std::vector<TensorRef> refs;
    if (list[0].is_string()) refs.push_back(parse_ref(list, source));
    else for (const json& ref : list) refs.push_back(parse_ref(ref, source));
    return refs;
}

// With the batch axis: a fixed batch size (stateful models) loads as one.
Shape input_batch_shape(const json& config, const ConfigSource& source) {
    for (const char* key : {"batch_shape", "batch_input_shape"})
        if (config.contains(key) && config[key].is_array() && !config[key].empty()) {
            Shape shape;
            for (const json& d : config[key]) shape.push_back(d.is_null() ? -1 : d.get<int64_t>());
            return shape;
        }
    value_error("File '{}': InputLayer \"{}\" has no batch_shape", source.file, config.value("name", std::string("?")));
}

DType input_dtype(const json& config) {
    const json dtype = config.value("dtype", json("float32"));
    if (dtype.is_string() && dtype.get<std::string>() == "int32") return DType::int32;
    if (dtype.is_string() && dtype.get<std::string>() == "int64") return DType::int64;
    return DType::float32;
}

// The layers the outputs are computed from, following the tensors each call takes as arguments. Keras 3
// also writes the layers that only compute masks (NotEqual, LogicalOr, Any, Concatenate of masks, ...,
// passed on as `mask=` keyword arguments); kerascpp computes masks itself, so those are left out.
std::set<std::string> layers_reaching_outputs(const json& layer_list, const json& output_layers,
                                              const ConfigSource& source) {
    std::map<std::string, const json*> by_name;
    for (const json& item : layer_list)
        if (item.is_object()) by_name[item.value("name", item.value("config", json::object()).value("name", std::string()))] = &item;
    std::set<std::string> reached;
    std::vector<std::string> todo;
    for (const auto& ref : parse_endpoints(output_layers, "output_layers", source)) todo.push_back(ref.layer);
    while (!todo.empty()) {
        const std::string name = todo.back();
        todo.pop_back();
        auto it = by_name.find(name);
        if (!reached.insert(name).second || it == by_name.end()) continue;
        const std::string class_name = it->second->value("class_name", std::string());
        for (const json& node : it->second->value("inbound_nodes", json::array())) {
            const Call call = parse_call(node, class_name, source);
            for (const auto& ref : call.inputs) todo.push_back(ref.layer);
            for (const auto& ref : call.initial_state) todo.push_back(ref.layer);   // an RNN's initial_state
        }
    }
    return reached;
}

// Keras's `layer(inputs, return_attention_scores=True)`: {output, scores}.
std::vector<KerasTensor> call_with_scores(Layer& layer, const std::vector<KerasTensor>& args, const ConfigSource& source) {
    if (auto* a = dynamic_cast<BaseDenseAttention*>(&layer)) return a->call_with_scores(args);
    if (auto* m = dynamic_cast<MultiHeadAttention*>(&layer)) return m->call_with_scores(args);
    value_error("File '{}': layer \"{}\" ({}) is called with return_attention_scores=True, which only the attention "
                "layers take", source.file, layer.name(), layer.class_name());
}

struct Entry {
    LayerPtr layer;
    std::string class_name;
    std::vector<Call> calls;
};

}  // namespace

std::shared_ptr<Model> functional_from_config(const json& model_config, const ConfigSource& source) {
    const json config = model_config.value("config", json::object());
    const json layer_list = config.value("layers", json());
    if (!layer_list.is_array()) value_error("File '{}': model_config has no list of layers (config.layers)", source.file);
    // layer name -> the outputs of each of its calls, by node index (one tensor for most layers)
    std::map<std::string, std::vector<std::vector<KerasTensor>>> produced;
    std::vector<Entry> pending;
    const auto needed = layers_reaching_outputs(layer_list, config.value("output_layers", json()), source);
    for (size_t i = 0; i < layer_list.size(); ++i) {
        const json& item = layer_list[i];
        if (!item.is_object() || !item.contains("class_name") || !item["class_name"].is_string())
            value_error("File '{}': layer #{} of model_config has no class_name", source.file, i);
        const std::string class_name = item["class_name"].get<std::string>();
        const json layer_config = item.value("config", json::object());
        if (class_name != "InputLayer" && !needed.contains(item.value("name", layer_config.value("name", std::string()))))
            continue;   // computes masks only
        if (class_name == "InputLayer") {
            const std::string name = item.value("name", layer_config.value("name", std::string()));
            produced[name].push_back({Input({}, {.dtype = input_dtype(layer_config),
                                                 .batch_shape = input_batch_shape(layer_config, source), .name = name})});
            continue;
        }
        Entry entry{layer_from_config(class_name, layer_config, source), class_name, {}};
        for (const json& node : item.value("inbound_nodes", json::array()))
            entry.calls.push_back(parse_call(node, class_name, source));
        apply_causal(*entry.layer, entry.calls, source);
        pending.push_back(std::move(entry));
    }
    // The tensor a reference names, or null when its layer has not been called that often yet.
    auto find = [&](const TensorRef& ref) -> const KerasTensor* {
        auto it = produced.find(ref.layer);
        if (it == produced.end() || static_cast<int>(it->second.size()) <= ref.node) return nullptr;
        const auto& outputs = it->second[ref.node];
        if (static_cast<int>(outputs.size()) <= ref.tensor)
            value_error("File '{}': the model_config names output {} of layer \"{}\" (call {}), which has {} output(s)",
                        source.file, ref.tensor, ref.layer, ref.node, outputs.size());
        return &outputs[ref.tensor];
    };
    auto gather = [&](const std::vector<TensorRef>& refs, std::vector<KerasTensor>& out) {
        for (const auto& ref : refs) {
            const KerasTensor* t = find(ref);
            if (!t) return false;
            out.push_back(*t);
        }
        return true;
    };
    // Keras's passes: call each layer once everything its next call reads exists.
    for (bool progress = true; progress;) {
        progress = false;
        for (auto& entry : pending) {
            auto& outputs = produced[entry.layer->name()];
            while (outputs.size() < entry.calls.size()) {
                const Call& call = entry.calls[outputs.size()];
                std::vector<KerasTensor> args, states;
                if (!gather(call.inputs, args) || !gather(call.initial_state, states)) break;
                if (call.return_attention_scores) outputs.push_back(call_with_scores(*entry.layer, args, source));
                else if (!states.empty() || entry.layer->output_count() > 1) outputs.push_back(entry.layer->call_all(args[0], states));
                else outputs.push_back({call.list ? (*entry.layer)(args) : (*entry.layer)(args[0])});
                progress = true;
            }
        }
    }
    for (const auto& entry : pending) {
        const size_t done = produced[entry.layer->name()].size();
        if (done == entry.calls.size()) continue;
        std::vector<TensorRef> reads = entry.calls[done].inputs;
        reads.insert(reads.end(), entry.calls[done].initial_state.begin(), entry.calls[done].initial_state.end());
        for (const auto& ref : reads)
            if (!find(ref))
                value_error("File '{}': layer \"{}\" of the functional model_config reads [\"{}\", {}, {}], which no layer "
                            "produces (or the graph has a cycle)", source.file, entry.layer->name(), ref.layer, ref.node,
                            ref.tensor);
    }
    auto resolve = [&](const std::vector<TensorRef>& refs) {
        std::vector<KerasTensor> out;
        for (const auto& ref : refs) {
            const KerasTensor* t = find(ref);
            if (!t)
                value_error("File '{}': the model_config names [\"{}\", {}, {}], which no layer produces", source.file,
                            ref.layer, ref.node, ref.tensor);
            out.push_back(*t);
        }
        return out;
    };
    return std::make_shared<Model>(resolve(parse_endpoints(config.value("input_layers", json()), "input_layers", source)),
                                   resolve(parse_endpoints(config.value("output_layers", json()), "output_layers", source)),
                                   config.value("name", std::string()));
}

}  // namespace keras::layers
