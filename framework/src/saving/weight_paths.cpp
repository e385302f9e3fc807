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

std::string legacy_weight_name(const Layer& layer, const Variable& weight) {
    const std::string cell = has_cell(layer) ? utils::to_snake_case(layer.class_name()) + "_cell/" : "";
    return layer.name() + "/" + cell + weight.name + ":0";
}

std::string keras3_weight_path(const Model& model, const Layer& layer, const Variable& weight) {
    const std::string cell = has_cell(layer) ? utils::to_snake_case(layer.class_name()) + "_cell/" : "";
    return model.name() + "/" + layer.name() + "/" + cell + weight.name;
}

std::vector<std::string> keras3_vars_paths(const Model& model) {
    std::vector<std::string> paths;
    std::map<std::string, int> seen;   // class -> how many came before
    for (const auto& layer : saved_layers(model)) {
        const std::string base = utils::to_snake_case(layer->class_name());
        const int k = seen[base]++;
        const std::string group = "layers/" + (k == 0 ? base : base + "_" + std::to_string(k));
        paths.push_back(group + (has_cell(*layer) ? "/cell/vars" : "/vars"));
    }
    return paths;
}

}  // namespace keras::saving
