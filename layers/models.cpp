// load_model: a Keras HDF5 model file -> a Sequential or functional model with its weights and, when compiled,
// its optimizer state. The version differences handled here: model_config as a plain list (Keras 2.0)
// or a dict with layers; the input shape as an InputLayer (batch_shape / batch_input_shape), as
// batch_input_shape on the first layer (Keras 2.0), or as build_input_shape (Keras 3); hard_sigmoid's
// meaning by keras_version. Weight paths differ by version too, but weight_names spells them out.
#include "keras/models.hpp"

#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "functional_loader.hpp"
#include "layer_factory.hpp"
#include "saving/h5_file.hpp"
#include "saving/keras_errors_only.hpp"
#include "saving/legacy_weights.hpp"
#include "saving/optimizer_weights.hpp"
#include "saving/training_config.hpp"

namespace keras::models {

namespace {

using nlohmann::json;

int major_version(const std::string& version, const std::string& file) {
    size_t end = 0;
    int major = 0;
    try {
        major = std::stoi(version, &end);
    } catch (const std::exception&) {
        value_error("File '{}': keras_version '{}' is not a version number", file, version);
    }
    if (major < 2) value_error("File '{}' was written by Keras {}: kerascpp reads Keras 2.0 and later", file, version);
    return major;
}

json parse_json_attr(const saving::H5Group& root, const std::string& name) {
    const std::string text = root.string_attr(name);
    try {
        return json::parse(text);
    } catch (const json::exception& e) {   // parse_error, and out_of_range for a number above 1e308
        value_error("Attribute '{}' of file '{}' is not valid JSON: {}", name, root.file(), e.what());
    }
}

// A first layer that carries the input shape itself (Keras 2.0's batch_input_shape) gets an InputLayer.
std::optional<LayerPtr> implicit_input(const std::string& class_name, const json& config,
                                       const layers::ConfigSource& source) {
    if (!config.is_object()) return std::nullopt;
    for (const char* key : {"batch_input_shape", "batch_shape"})
        if (config.contains(key) && !config[key].is_null()) {
            // Token ids feed an Embedding; everything else takes floats.
            json input = {{key, config[key]}, {"dtype", class_name == "Embedding" ? "int32" : "float32"},
                          {"name", config.value("name", std::string("layer")) + "_input"}};
            return layers::layer_from_config("InputLayer", input, source);
        }
    return std::nullopt;
}

std::shared_ptr<Model> build_model(const json& model_config, const layers::ConfigSource& source) {
    // Keras 3 calls a functional model "Functional", Keras 2 "Model" (or "Functional").
    const std::string kind = model_config.is_object() ? model_config.value("class_name", std::string()) : "";
    if (kind == "Functional" || kind == "Model") return layers::functional_from_config(model_config, source);
    if (kind != "Sequential")
        value_error("File '{}': only Sequential and functional models can be loaded, model_config has class_name {}",
                    source.file,
                    model_config.is_object() && model_config.contains("class_name")
                        ? model_config["class_name"].dump() : std::string("(none)"));
    const json& config = model_config.contains("config") ? model_config["config"] : json();
    // Keras 2.0 wrote the list of layers itself; later versions a dict with "layers".
    const json& layer_list = config.is_array() ? config : config.is_object() && config.contains("layers")
                                                             ? config["layers"] : json();
    if (!layer_list.is_array())
        value_error("File '{}': model_config has no list of layers (config.layers)", source.file);
    const std::string name = config.is_object() ? config.value("name", std::string("sequential")) : "sequential";
    auto model = std::make_shared<Sequential>(name);
    for (size_t i = 0; i < layer_list.size(); ++i) {
        const json& entry = layer_list[i];
        if (!entry.is_object() || !entry.contains("class_name") || !entry["class_name"].is_string())
            value_error("File '{}': layer #{} of model_config has no class_name", source.file, i);
        const std::string class_name = entry["class_name"].get<std::string>();
        const json layer_config = entry.value("config", json::object());
        if (i == 0 && class_name != "InputLayer")
            if (auto input = implicit_input(class_name, layer_config, source)) model->add(*input);
        LayerPtr layer = layers::layer_from_config(class_name, layer_config, source);
        try {
            model->add(layer);
        } catch (const ValueError& e) {
            value_error("File '{}': cannot add layer \"{}\" to the model: {}", source.file, layer->name(), e.what());
        }
    }
    if (!model->built() && config.is_object() && config.contains("build_input_shape") &&
        config["build_input_shape"].is_array()) {
        Shape shape;
        for (const auto& d : config["build_input_shape"]) shape.push_back(d.is_null() ? -1 : d.get<int64_t>());
        model->build(shape);
    }
    return model;
}

void compile_from_file(Model& model, const saving::H5File& file, int keras_major) {
    const json training = parse_json_attr(file, "training_config");
    const std::string where = fmt::format("training_config of file '{}'", file.file());
    if (!training.is_object() || !training.contains("optimizer_config"))
        value_error("{}: optimizer_config is missing", where);
    auto optimizer = saving::optimizer_from_config(training["optimizer_config"], where);
    // A list of losses (one per output) or a dict by output name.
    const json loss = training.value("loss", json());
    const auto names = model.output_names();
    std::vector<losses::LossPtr> losses;
    if (loss.is_object() && !loss.contains("class_name")) {
        for (const auto& name : names) {
            if (!loss.contains(name))
                value_error("{}: Expected keys {} in loss dict, but found loss.keys()={}", where, json(names).dump(),
                            [&] { json keys = json::array(); for (const auto& [k, v] : loss.items()) keys.push_back(k); return keys.dump(); }());
            losses.push_back(saving::loss_from_config(loss[name], where));
        }
    } else {
        for (const json& l : loss.is_array() ? loss : json::array({loss})) losses.push_back(saving::loss_from_config(l, where));
    }
    const CompileOptions options = saving::compile_options_from_config(training, names, where);
    if (losses.size() == 1) model.compile(optimizer, losses[0], options);
    else model.compile(optimizer, losses, options);
    try {
        const auto state = saving::read_optimizer_weights(file, *optimizer, model.trainable_weights());
        saving::apply_optimizer_state(state, *optimizer, model.trainable_weights());
    } catch (const ValueError& e) {
        if (keras_major >= 3) throw;
        // Keras itself only warns when an older file's optimizer state does not fit.
        std::cerr << fmt::format("WARNING: the optimizer state of '{}' was not restored (training continues with a "
                                 "fresh optimizer): {}\n", file.file(), e.what());
    }
}

}  // namespace

namespace {

std::shared_ptr<Model> load_model_file(const std::string& filepath, const LoadModelOptions& options) {
    std::error_code ec;
    if (std::filesystem::is_directory(filepath, ec))   // Keras 3's words for a SavedModel folder
        value_error("File format not supported: filepath={}. It is a directory, not a file: kerascpp loads Keras's "
                    "HDF5 model files (`.h5` extension). Note that the legacy SavedModel format (a directory) is not "
                    "supported by `load_model()`.", filepath);
    const saving::H5File file = saving::H5File::open(filepath);
    if (!file.has_attr("model_config"))
        value_error("No model config found in the file at {} (a weights-only file? use Model::load_weights).",
                    filepath);
    // Keras 2.0 files have keras_version too; only Keras 1 files lack it.
    const std::string version = file.has_attr("keras_version") ? file.string_attr("keras_version") : "1";
    const layers::ConfigSource source{.keras_major = major_version(version, filepath), .file = filepath};
    auto model = build_model(parse_json_attr(file, "model_config"), source);
    if (!model->built())
        value_error("File '{}': the model's input shape is unknown (no InputLayer, batch_input_shape or "
                    "build_input_shape), so its weights cannot be loaded", filepath);
    saving::read_legacy_weights(file.group("model_weights"), *model);
    if (options.compile && file.has_attr("training_config")) compile_from_file(*model, file, source.keras_major);
    return model;
}

}  // namespace

std::shared_ptr<Model> load_model(const std::string& filepath, const LoadModelOptions& options) {
    return saving::keras_errors_only(filepath, [&] { return load_model_file(filepath, options); });
}

}  // namespace keras::models
