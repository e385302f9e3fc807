#include "saving/legacy_weights.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "saving/weight_paths.hpp"

namespace keras::saving {

void write_legacy_weights(const H5Group& group, const Model& model, const LegacyWeightsNaming& naming) {
    std::vector<std::string> layer_names;
    for (const auto& layer : saved_layers(model)) layer_names.push_back(layer->name());
    group.write_string_array_attr("layer_names", layer_names);
    group.write_string_attr("backend", kLegacyBackend);
    group.write_string_attr("keras_version", naming.keras_version);
    for (const auto& layer : saved_layers(model)) {
        const H5Group layer_group = group.create_group(layer->name());
        std::vector<std::string> names;
        for (const auto& w : layer->weights()) names.push_back(naming.weight_name(*layer, *w));
        layer_group.write_string_array_attr("weight_names", names);
        for (size_t i = 0; i < names.size(); ++i) {
            const Tensor value = layer->weights()[i]->value.to(Device::cpu()).astype(DType::float32);
            layer_group.write_dataset(names[i], value.shape(), static_cast<const float*>(value.raw()));
        }
    }
}

namespace {

// A saved layer that has weights: its name and its weight_names.
struct SavedLayer {
    std::string name;
    std::vector<std::string> weight_names;
};

std::vector<SavedLayer> saved_layers_with_weights(const H5Group& group) {
    std::vector<SavedLayer> out;
    for (const auto& name : group.string_array_attr("layer_names")) {
        if (!group.has_group(name))
            value_error("Cannot load weights from {}: layer_names lists layer '{}' but the file has no group for it",
                        group.where(), name);
        const H5Group layer_group = group.group(name);
        if (!layer_group.has_string_array_attr("weight_names"))
            value_error("Cannot load weights from {}: the attribute 'weight_names' is missing", layer_group.where());
        auto names = layer_group.string_array_attr("weight_names");
        if (!names.empty()) out.push_back({name, std::move(names)});
    }
    return out;
}

Tensor read_weight(const H5Group& layer_group, const std::string& weight_name, const H5Group::ShapeCheck& check) {
    if (!layer_group.has_dataset(weight_name))
        value_error("Cannot load weights: weight '{}' is listed in weight_names but missing from {}", weight_name,
                    layer_group.where());
    H5Array array = layer_group.read_dataset(weight_name, check);
    return Tensor(array.values, Shape(array.shape.begin(), array.shape.end()));
}

// Keras pairs the model's layers with the file's by position. A model built from the file's own config
// (load_model) has the file's layer names, and is paired by name instead: Keras 3 orders a functional
// model's layers counting the mask-only op layers it writes (NotEqual, LogicalOr, ...), which the
// loader leaves out, so the positions can differ while the names cannot.
void pair_by_name_when_all_match(std::vector<LayerPtr>& layers, const std::vector<SavedLayer>& saved) {
    if (layers.size() != saved.size()) return;
    std::vector<LayerPtr> by_name;
    for (const auto& s : saved) {
        auto it = std::find_if(layers.begin(), layers.end(), [&](const LayerPtr& l) { return l->name() == s.name; });
        if (it == layers.end()) return;
        by_name.push_back(*it);
    }
    layers = std::move(by_name);
}

}  // namespace

void read_legacy_weights(const H5Group& group, Model& model) {
    if (!model.built())
        value_error("Cannot load weights into model \"{}\": it is not built yet. Build it first (add an Input, or "
                    "call build())", model.name());
    std::vector<LayerPtr> layers;
    for (const auto& layer : saved_layers(model))
        if (!layer->weights().empty()) layers.push_back(layer);
    const auto saved = saved_layers_with_weights(group);
    pair_by_name_when_all_match(layers, saved);
    if (saved.size() != layers.size())
        value_error("Layer count mismatch when loading weights from file {}. Model expected {} layers, found {} saved "
                    "layers.", group.file(), layers.size(), saved.size());

    std::vector<std::pair<VariablePtr, Tensor>> assignments;
    for (size_t k = 0; k < layers.size(); ++k) {
        const Layer& layer = *layers[k];
        const auto& names = saved[k].weight_names;
        if (names.size() != layer.weights().size())
            value_error("Layer #{} (named \"{}\" in the current model) was found to correspond to layer {} in the save "
                        "file {}. However the new layer {} expects {} weights, but the saved weights have {} elements.",
                        k, layer.name(), saved[k].name, group.file(), layer.name(), layer.weights().size(), names.size());
        const H5Group layer_group = group.group(saved[k].name);
        for (size_t i = 0; i < names.size(); ++i) {
            const VariablePtr& weight = layer.weights()[i];
            // The saved shape is compared before the data is read: a file may declare any size.
            Tensor value = read_weight(layer_group, names[i], [&](const Shape& saved_shape) {
                if (saved_shape != weight->value.shape())
                    value_error("Shape mismatch in layer #{} (named {}) for weight {} in file {}. Weight expects shape "
                                "{}. Received saved weight with shape {}", k, layer.name(), names[i], group.file(),
                                shape_str(weight->value.shape()), shape_str(saved_shape));
            });
            assignments.emplace_back(weight, std::move(value));
        }
    }
    for (auto& [weight, value] : assignments) weight->value.copy_from(value);
}

}  // namespace keras::saving
