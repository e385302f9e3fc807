// plot_model / model_to_dot: the model's graph as Graphviz dot text (tf.keras 2's record labels),
// rendered by the `dot` program when it is on PATH.
#include "keras/utils/model_visualization.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "functional_graph.hpp"
#include "keras/errors.hpp"
#include "plots/output_file.hpp"
#include "plots/run_program.hpp"
#include "saving/atomic_write.hpp"

namespace keras::utils {

namespace {

// Characters that are syntax inside a quoted record label: escaped so a layer name is only text.
std::string record_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (std::string_view("{}|<>\"\\").find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

std::string quoted_id(const std::string& name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// "name: Class", or tf.keras's "name(inner): Wrapper(Inner)" for a layer wrapping another
// (TimeDistributed, Bidirectional: their config holds the wrapped layer).
std::string name_and_class(const Layer& layer, bool show_name) {
    std::string name = layer.name(), cls = layer.class_name();
    const nlohmann::json config = layer.get_config();
    if (config.contains("layer") && config["layer"].is_object()) {
        const auto& inner = config["layer"];
        name += "(" + inner.value("config", nlohmann::json::object()).value("name", std::string("?")) + ")";
        cls += "(" + inner.value("class_name", std::string("?")) + ")";
    }
    return show_name ? fmt::format("{}: {}", name, cls) : cls;
}

std::string activation_of(const Layer& layer) {
    const nlohmann::json config = layer.get_config();
    if (config.contains("activation") && config["activation"].is_string()) return config["activation"];
    return "";
}

// Shapes as tf.keras prints them: one shape (None, 4); several in a list [(None, 3), (None, 3)]. An
// input layer's shape is a list of one, as Keras 2 shows it.
std::string shapes_str(const std::vector<Shape>& shapes, bool as_list) {
    if (shapes.size() == 1 && !as_list) return shape_str(shapes[0]);
    std::string items;
    for (const auto& s : shapes) items += (items.empty() ? "" : ", ") + shape_str(s);
    return "[" + items + "]";
}

struct LayerShapes {
    std::string input = "?", output = "?";
};

// A layer's shapes over its calls in this graph; "multiple" when its calls differ (a shared layer).
LayerShapes shapes_of(const FunctionalGraph* graph, const Layer& layer) {
    LayerShapes result;
    if (!graph) return result;
    bool first = true;
    for (const auto& node : graph->nodes) {
        if (node->layer.get() != &layer) continue;
        const bool is_input = node->inputs.empty();
        std::vector<Shape> in;
        for (const auto& t : node->inputs) in.push_back(t.shape);
        const std::vector<Shape> out = node->output_shapes.empty() ? std::vector<Shape>{node->output_shape}
                                                                   : node->output_shapes;
        const LayerShapes these{is_input ? shapes_str(out, true) : shapes_str(in, false),
                                shapes_str(out, is_input)};
        if (first) result = these;
        if (!first && these.input != result.input) result.input = "multiple";
        if (!first && these.output != result.output) result.output = "multiple";
        first = false;
    }
    return result;
}

std::string node_label(const Layer& layer, const FunctionalGraph* graph, const PlotModelOptions& options) {
    std::string label = record_escape(name_and_class(layer, options.show_layer_names));
    if (const std::string activation = activation_of(layer); options.show_layer_activations && !activation.empty())
        label = fmt::format("{{{}|{}}}", label, record_escape(activation));
    if (options.show_shapes) {
        const LayerShapes shapes = shapes_of(graph, layer);
        label = fmt::format("{}|{{input:|output:}}|{{{{{}}}|{{{}}}}}", label, shapes.input, shapes.output);
    }
    if (options.show_trainable) label = fmt::format("{}|{}", layer.trainable ? "T" : "NT", label);
    return label;
}

using Edge = std::pair<std::string, std::string>;

// Each connection once, in the graph's order; an unbuilt Sequential is the chain of its layers.
std::vector<Edge> edges_of(const Model& model, const std::vector<LayerPtr>& layers) {
    std::vector<Edge> edges;
    std::set<Edge> seen;
    auto add = [&](const std::string& from, const std::string& to) {
        if (seen.insert({from, to}).second) edges.emplace_back(from, to);
    };
    if (const FunctionalGraph* graph = model.functional_graph()) {
        for (const auto& node : graph->nodes)
            for (const auto& in : node->inputs) add(in.node->layer->name(), node->layer->name());
    } else {
        for (size_t i = 1; i < layers.size(); ++i) add(layers[i - 1]->name(), layers[i]->name());
    }
    return edges;
}

void check_options(const PlotModelOptions& options) {
    const std::string dirs[] = {"TB", "LR", "BT", "RL"};
    if (std::find(std::begin(dirs), std::end(dirs), options.rankdir) == std::end(dirs))
        value_error("plot_model: rankdir must be 'TB', 'LR', 'BT' or 'RL' (got '{}')", options.rankdir);
    if (options.dpi < 1) value_error("plot_model: dpi must be at least 1 (got {})", options.dpi);
}

// The dot text in a temporary file while `dot` reads it; removed when done.
struct TempDotFile {
    std::string path;
    explicit TempDotFile(const std::string& text) {
        const char* dir = std::getenv("TMPDIR");
        path = fmt::format("{}/kerascpp-model-XXXXXX", dir && *dir ? dir : "/tmp");
        const int fd = ::mkstemp(path.data());
        if (fd < 0) runtime_error("plot_model: cannot create a temporary file '{}'", path);
        ::close(fd);
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) runtime_error("plot_model: cannot write the temporary file '{}'", path);
    }
    ~TempDotFile() { std::filesystem::remove(path); }
};

void render(const std::string& dot_program, const std::string& format, const std::string& dot_text,
            const std::string& to_file) {
    const TempDotFile source(dot_text);
    saving::atomic_write(to_file, [&](const std::string& temp) {
        const std::vector<std::string> argv = {dot_program, "-T" + format, "-o", temp, source.path};
        const plots::ProgramResult result = plots::run_program(argv);
        if (result.exit_code != 0)
            runtime_error("plot_model: '{}' failed with exit status {} drawing '{}': {}", fmt::join(argv, " "),
                          result.exit_code, to_file, result.errors.empty() ? "(no message)" : result.errors);
    });
}

// The dot text; with_dpi false leaves the dpi out: Graphviz 2.43 scales an SVG by dpi / 72 inside a
// viewBox that is not scaled, cutting the picture off, so an SVG is drawn at its natural size.
std::string dot_source(const Model& model, const PlotModelOptions& options, bool with_dpi) {
    check_options(options);
    const FunctionalGraph* graph = model.functional_graph();
    const std::vector<LayerPtr>& layers = graph ? graph->layers : model.all_layers();
    const std::string dpi = with_dpi ? fmt::format(", dpi={}", options.dpi) : "";
    std::string dot = fmt::format("digraph G {{\n  graph [rankdir={}, concentrate=true{}];\n"
                                  "  node [shape=record, fontname=\"Helvetica\"];\n",
                                  options.rankdir, dpi);
    for (const auto& layer : layers)
        dot += fmt::format("  {} [label=\"{}\"];\n", quoted_id(layer->name()), node_label(*layer, graph, options));
    for (const auto& [from, to] : edges_of(model, layers))
        dot += fmt::format("  {} -> {};\n", quoted_id(from), quoted_id(to));
    return dot + "}\n";
}

}  // namespace

std::string model_to_dot(const Model& model, const PlotModelOptions& options) {
    return dot_source(model, options, true);
}

std::string plot_model(const Model& model, const std::string& to_file, const PlotModelOptions& options) {
    std::string format = plots::extension_of(to_file);
    if (format.empty()) format = "png";   // Keras's default when the name has no extension
    const std::string formats[] = {"png", "svg", "pdf", "jpg", "jpeg", "gif", "dot"};
    if (std::find(std::begin(formats), std::end(formats), format) == std::end(formats))
        value_error("plot_model: cannot draw '{}': the extension must be one of png, svg, pdf, jpg, jpeg, gif, dot",
                    to_file);
    const std::string dot_text = model_to_dot(model, options);
    if (format == "dot") {
        plots::write_file_atomically(to_file, dot_text);
        return to_file;
    }
    if (const auto dot_program = plots::find_on_path("dot")) {
        render(*dot_program, format, format == "svg" ? dot_source(model, options, false) : dot_text, to_file);
        return to_file;
    }
    const std::string dot_file = std::filesystem::path(to_file).replace_extension(".dot").string();
    plots::write_file_atomically(dot_file, dot_text);
    std::cerr << fmt::format("WARNING: plot_model: Graphviz's `dot` is not on PATH, so '{}' was not drawn; wrote "
                             "the graph to '{}' instead (install graphviz, or run: dot -T{} {} -o {})\n",
                             to_file, dot_file, format, dot_file, to_file)
              << std::flush;
    return dot_file;
}

}  // namespace keras::utils
