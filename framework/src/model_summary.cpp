// Model::summary(): Keras 2's table, with a note under recurrent layers saying how they run.
#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "keras/backend.hpp"
#include "keras/input_layer.hpp"
#include "keras/model.hpp"

#include "functional_graph.hpp"

namespace keras {

namespace {
constexpr int kWidth = 65;
constexpr int kColumns[] = {29, 55, 65};   // right edges of: Layer (type), Output Shape, Param #

std::string row(const std::string& a, const std::string& b, const std::string& c) {
    std::string line = " " + a;
    const std::string cells[] = {b, c};
    for (int i = 0; i < 2; ++i) {
        line.resize(std::max<size_t>(line.size() + 1, kColumns[i]), ' ');
        line += cells[i];
    }
    line.resize(std::max<size_t>(line.size(), kWidth), ' ');
    return line;
}

// Keras's readable size: bytes in Byte / KB / MB / GB, two decimals.
std::string readable_size(double bytes) {
    const char* units[] = {"Byte", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        ++u;
    }
    return fmt::format("{:.2f} {}", bytes, units[u]);
}
// ---- Keras 2's functional table: 98 wide, columns at 0.30 / 0.60 / 0.70 of it, plus "Connected to".
constexpr int kFunctionalWidth = 98;
constexpr int kFunctionalColumns[] = {29, 58, 68};

std::string functional_row(const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
    std::string line = " " + a;
    const std::string cells[] = {b, c, d};
    for (int i = 0; i < 3; ++i) {
        line.resize(std::max<size_t>(line.size() + 1, kFunctionalColumns[i]), ' ');
        line += cells[i];
    }
    line.resize(std::max<size_t>(line.size(), kFunctionalWidth), ' ');
    return line;
}

// The layer's calls inside this model: ['in1[0][0]', 'in2[0][0]'] (a shared layer lists all of them).
std::vector<std::string> connections(const FunctionalGraph& graph, const Layer& layer) {
    std::vector<std::string> items;
    for (const auto& node : graph.nodes)
        if (node->layer.get() == &layer)
            for (const auto& in : node->inputs) items.push_back(fmt::format("'{}'", in.history_label()));
    return items;
}

// A node's outputs as Keras 2 prints them: (None, 4), or a list [(None, 5, 6), (None, 6)] for an
// InputLayer or a layer of several outputs.
std::string node_shapes(const Node& node) {
    if (node.output_shapes.size() <= 1)
        return node.inputs.empty() ? fmt::format("[{}]", shape_str(node.output_shape)) : shape_str(node.output_shape);
    std::string list;
    for (const auto& shape : node.output_shapes) list += (list.empty() ? "" : ", ") + shape_str(shape);
    return "[" + list + "]";
}

// Keras 2 breaks a cell's text after each "),", so a list of shapes takes one line per shape.
std::vector<std::string> break_after_tuples(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t at = text.find("),"); at != std::string::npos; at = text.find("),", start)) {
        lines.push_back(text.substr(start, at + 2 - start));
        start = at + 2;
    }
    lines.push_back(text.substr(start));
    return lines;
}

// "multiple" when a shared layer's calls produce different shapes, as in Keras.
std::string output_shape_of(const FunctionalGraph& graph, const Layer& layer) {
    std::string shape;
    for (const auto& node : graph.nodes)
        if (node->layer.get() == &layer) {
            const std::string s = node_shapes(*node);
            if (!shape.empty() && s != shape) return "multiple";
            shape = s;
        }
    return shape;
}

// Keras wraps a label longer than its column (27 characters) before " (ClassName)".
std::vector<std::string> wrap_label(const Layer& layer) {
    const std::string label = fmt::format("{} ({})", layer.name(), layer.class_name());
    if (label.size() <= 27) return {label};
    return {layer.name(), "(" + layer.class_name() + ")"};
}

void print_functional_rows(std::ostream& os, const FunctionalGraph& graph) {
    for (const auto& layer : graph.layers) {
        const auto label = wrap_label(*layer);
        const auto links = connections(graph, *layer);
        const auto shape = break_after_tuples(output_shape_of(graph, *layer));
        const size_t lines = std::max<size_t>({label.size(), links.size(), shape.size()});
        for (size_t i = 0; i < lines; ++i) {
            std::string link;
            if (links.empty() && i == 0) link = "[]";
            else if (i < links.size())
                link = (i == 0 ? "[" : " ") + links[i] + (i + 1 == links.size() ? "]" : ",");
            fmt::print(os, "{}\n", functional_row(i < label.size() ? label[i] : "", i < shape.size() ? shape[i] : "",
                                               i == 0 ? std::to_string(layer->count_params()) : "", link));
        }
        fmt::print(os, "{}\n", std::string(kFunctionalWidth, ' '));
    }
}

// Keras counts a weight once however many times its layer is called.
void print_totals(std::ostream& os, const std::vector<LayerPtr>& layers, int width) {
    int64_t trainable = 0, total = 0;
    for (const auto& layer : layers) {
        total += layer->count_params();
        for (const auto& w : layer->trainable_weights()) trainable += w->value.numel();
    }
    fmt::print(os, "Total params: {} ({})\n", total, readable_size(4.0 * total));
    fmt::print(os, "Trainable params: {} ({})\n", trainable, readable_size(4.0 * trainable));
    fmt::print(os, "Non-trainable params: {} ({})\n{}\n", total - trainable, readable_size(4.0 * (total - trainable)),
               std::string(width, '_'));
}
// Under a mixed policy: how many layers ask for bfloat16 and whether the device computes in it (Keras
// has no such line; a CPU without AVX512_BF16 / AMX runs them in float32, which users must know).
void print_precision(std::ostream& os, const std::vector<LayerPtr>& layers) {
    int mixed = 0;
    Device device = Device::cpu();
    for (const auto& layer : layers) {
        if (!layer->dtype_policy().mixed_bfloat16() || std::dynamic_pointer_cast<layers::InputLayer>(layer)) continue;
        ++mixed;
        if (!layer->weights().empty()) device = layer->weights()[0]->value.device();
    }
    if (mixed == 0) return;
    const std::string why_not = backend::get(device).bfloat16_unsupported_reason();
    if (why_not.empty())
        fmt::print(os, "Mixed precision: {} layer(s) with policy mixed_bfloat16 compute in bfloat16 "
                       "(float32 weights; a layer's \"runs on\" line names any kernel that keeps float32)\n",
                   mixed);
    else
        fmt::print(os, "Mixed precision: {} layer(s) with policy mixed_bfloat16 run in float32: {}\n", mixed, why_not);
}
// mixed_float16 has no kernels on any backend yet: its layers compute in float32, while the loss
// scaling Keras adds for it still runs.
void print_float16(std::ostream& os, const std::vector<LayerPtr>& layers) {
    const auto count = std::count_if(layers.begin(), layers.end(), [](const LayerPtr& layer) {
        return layer->dtype_policy().mixed_float16() && !std::dynamic_pointer_cast<layers::InputLayer>(layer);
    });
    if (count > 0)
        fmt::print(os, "Mixed precision: {} layer(s) with policy mixed_float16 run in float32: no backend has float16 "
                       "kernels yet (the LossScaleOptimizer's loss scaling still runs)\n", count);
}
}  // namespace

void Model::summary(std::ostream* out) const {
    std::ostream& os = out ? *out : std::cout;
    if (is_functional()) {
        const std::string rule(kFunctionalWidth, '_'), double_rule(kFunctionalWidth, '=');
        fmt::print(os, "Model: \"{}\"\n{}\n{}\n{}\n", name_, rule,
                   functional_row("Layer (type)", "Output Shape", "Param #", "Connected to"), double_rule);
        print_functional_rows(os, *graph_);
        fmt::print(os, "{}\n", double_rule);
        print_totals(os, layers_, kFunctionalWidth);
        print_precision(os, layers_);
        print_float16(os, layers_);
        return;
    }
    const std::string rule(kWidth, '_'), double_rule(kWidth, '=');
    fmt::print(os, "Model: \"{}\"\n{}\n{}\n{}\n", name_, rule, row("Layer (type)", "Output Shape", "Param #"), double_rule);
    Shape shape = input_shape_;
    int64_t trainable = 0, total = 0;
    bool first = true;
    for (const auto& layer : layers_) {
        if (std::dynamic_pointer_cast<layers::InputLayer>(layer)) continue;   // Keras hides it in Sequential
        if (!first) fmt::print(os, "{}\n", std::string(kWidth, ' '));
        first = false;
        const std::string label = fmt::format("{} ({})", layer->name(), layer->class_name());
        if (layer->built()) {
            shape = layer->compute_output_shape(shape);
            fmt::print(os, "{}\n", row(label, shape_str(shape), std::to_string(layer->count_params())));
        } else {
            fmt::print(os, "{}\n", row(label, "?", "0 (unbuilt)"));
        }
        if (const auto note = layer->implementation_note(); !note.empty()) fmt::print(os, "   runs on: {}\n", note);
        total += layer->count_params();
        for (const auto& w : layer->trainable_weights()) trainable += w->value.numel();
    }
    fmt::print(os, "{}\n", double_rule);
    fmt::print(os, "Total params: {} ({})\n", total, readable_size(4.0 * total));
    fmt::print(os, "Trainable params: {} ({})\n", trainable, readable_size(4.0 * trainable));
    fmt::print(os, "Non-trainable params: {} ({})\n{}\n", total - trainable, readable_size(4.0 * (total - trainable)),
               rule);
    print_precision(os, layers_);
    print_float16(os, layers_);
}

}  // namespace keras
