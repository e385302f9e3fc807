#include "saving/weight_paths.hpp"

#include <map>

namespace keras::saving {

bool has_cell(const Layer& layer) {
    const std::string& c = layer.class_name();
    return c == "SimpleRNN" || c == "LSTM" || c == "GRU";
}

std::vector<LayerPtr> saved_layers(const Model& model) {
    std::vector<LayerPtr> out;
    for (const auto& layer : model.layers())
        if (layer->class_name() != "InputLayer") out.push_back(layer);
    return out;
}

namespace {
// The cell's scope in a recurrent layer's weight names: "lstm_cell/" in an LSTM's, the cell's own
// name in Keras's RNN(cell)'s.
std::string cell_scope(const Layer& layer) {
    if (has_cell(layer)) return utils::to_snake_case(layer.class_name()) + "_cell/";
    if (layer.class_name() == "RNN" && !layer.nested_layers().empty()) return layer.nested_layers()[0].second->name() + "/";
    return "";
}
}  // namespace

std::string legacy_weight_name(const Layer& layer, const Variable& weight) {
    return layer.name() + "/" + cell_scope(layer) + weight.name + ":0";
}

std::string keras3_weight_path(const Model& model, const Layer& layer, const Variable& weight) {
    return model.name() + "/" + layer.name() + "/" + cell_scope(layer) + weight.name;
}

namespace {

void add_vars(const Layer& layer, const std::string& path, const std::string& owner, std::vector<Keras3Vars>& out) {
    const auto nested = layer.nested_layers();
    const bool cell = has_cell(layer);
    out.push_back({path + "/vars", layer.name(), nested.empty() && !cell ? layer.weights() : std::vector<VariablePtr>{},
                   owner});
    if (cell) out.push_back({path + "/cell/vars", utils::to_snake_case(layer.class_name()) + "_cell", layer.weights(), owner});
    for (const auto& [attribute, inner] : nested) add_vars(*inner, path + "/" + attribute, owner, out);
}

}  // namespace

std::vector<Keras3Vars> keras3_vars(const Model& model) {
    std::vector<Keras3Vars> out;
    std::map<std::string, int> seen;   // class -> how many came before
    // Keras's model.layers: a Sequential's leave out its InputLayer, a functional model's keep it.
    for (const auto& layer : model.layers()) {
        const std::string base = utils::to_snake_case(layer->class_name());
        const int k = seen[base]++;
        add_vars(*layer, "layers/" + (k == 0 ? base : base + "_" + std::to_string(k)), layer->name(), out);
    }
    return out;
}

}  // namespace keras::saving
