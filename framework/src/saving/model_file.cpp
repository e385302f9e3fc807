#include "saving/model_file.hpp"

#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "saving/atomic_write.hpp"
#include "saving/functional_config.hpp"
#include "saving/h5_file.hpp"
#include "saving/legacy_weights.hpp"
#include "saving/optimizer_weights.hpp"
#include "saving/writer_stamp.hpp"

namespace keras {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

nlohmann::json shape_json(const Shape& shape) {
    nlohmann::json dims = nlohmann::json::array();
    for (int64_t d : shape) dims.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
    return dims;
}

// What Keras's loss serialization gives: the name when the loss has its default arguments,
// otherwise the loss object.
nlohmann::json loss_config(const losses::Loss& loss) {
    const nlohmann::json config = loss.get_config();
    if (config == losses::get(loss.name())->get_config()) return loss.name();
    std::string class_name;
    for (const char* c : {"BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                          "MeanSquaredError", "MeanAbsoluteError"})
        if (losses::get(c)->name() == loss.name()) class_name = c;
    return {{"module", "keras.losses"}, {"class_name", class_name}, {"config", config}, {"registered_name", nullptr}};
}

}  // namespace

namespace saving {

nlohmann::json model_config(const Model& model) {
    if (model.is_functional()) return functional_config(model, *model.functional_graph());
    const auto& model_layers = model.all_layers();   // the InputLayer too, with its own config
    const nlohmann::json input_shape = shape_json(model_layers.empty() ? Shape{} : model_layers[0]->input_shape());
    nlohmann::json layers = nlohmann::json::array();
    // Keras 3 lists the InputLayer first; a model built by build() gets one for its input shape.
    if (model_layers.empty() || model_layers[0]->class_name() != "InputLayer")
        layers.push_back({{"class_name", "InputLayer"},
                          {"config", {{"batch_shape", input_shape}, {"dtype", "float32"}, {"sparse", false},
                                      {"ragged", false}, {"name", "input_layer"}, {"optional", false}}}});
    for (const auto& layer : model_layers)
        layers.push_back({{"class_name", layer->class_name()}, {"config", layer->get_config()}});
    nlohmann::json config = {{"name", model.name()}, {"trainable", true},
                             {"dtype", {{"module", "keras"}, {"class_name", "DTypePolicy"},
                                        {"config", {{"name", "float32"}}}, {"registered_name", nullptr}}},
                             {"layers", layers}, {"build_input_shape", input_shape}};
    return {{"class_name", "Sequential"}, {"config", config}};
}

namespace {

// Keras writes compile()'s arguments as given: a list (one weight per output) or a dict by output name.
nlohmann::json loss_weights_config(const CompileOptions& options) {
    if (!options.loss_weights.empty()) return options.loss_weights;
    if (!options.loss_weights_by_output.empty()) return options.loss_weights_by_output;
    return nullptr;
}

// ["accuracy"], [["accuracy"], ["mae"]] (one list per output) or {"cls": ["accuracy"]}.
nlohmann::json metrics_config(const CompileOptions& options) {
    if (!options.per_output_metrics.empty()) return options.per_output_metrics;
    if (!options.metrics_by_output.empty()) return options.metrics_by_output;
    if (!options.metrics.empty()) return options.metrics;
    return nullptr;
}

}  // namespace

nlohmann::json training_config(const Model& model) {
    const auto& optimizer = model.optimizer();
    // Several outputs: one loss each, as a list (Keras's form for a list of losses).
    nlohmann::json loss = loss_config(model.loss());
    if (model.output_losses().size() > 1) {
        loss = nlohmann::json::array();
        for (const auto& l : model.output_losses()) loss.push_back(loss_config(*l));
    }
    return {{"loss", loss},
            {"loss_weights", loss_weights_config(model.compile_options())},
            {"metrics", metrics_config(model.compile_options())},
            {"weighted_metrics", nullptr},
            {"run_eagerly", false},
            {"steps_per_execution", 1},
            {"jit_compile", false},
            {"optimizer_config", {{"class_name", optimizer.name()}, {"config", optimizer.get_config()}}}};
}

namespace {

// A full model file's model_weights group: the legacy weights layout with Keras 3's weight names.
void write_model_weights(const H5Group& root, const Model& model) {
    H5Group group = root.create_group("model_weights");
    write_legacy_weights(group, model, {.keras_version = kModelFileKerasVersion,
                                        .weight_name = [&model](const Layer& layer, const Variable& weight) {
                                            return keras3_weight_path(model, layer, weight);
                                        }});
    group.create_group("top_level_model_weights").write_string_array_attr("weight_names", {});
}

}  // namespace

void write_model_file(const std::string& filepath, const Model& model, bool include_optimizer) {
    H5File file = H5File::create(filepath);
    file.write_string_attr("backend", kModelFileBackend);
    file.write_string_attr("keras_version", kModelFileKerasVersion);
    stamp_kerascpp_version(file);
    file.write_string_attr("model_config", model_config(model).dump());
    if (include_optimizer && model.compiled()) file.write_string_attr("training_config", training_config(model).dump());
    write_model_weights(file, model);
    if (include_optimizer && model.compiled()) write_optimizer_weights(file, model);
    file.close();
}

}  // namespace saving

void Model::save(const std::string& filepath, const SaveOptions& options) const {
    if (!is_chief()) return;   // distributed: the chief (rank 0) writes the file for every worker
    if (!built_)
        value_error("You are saving a model that has not yet been built. Call build() or fit() with data, or start "
                    "the model with an Input, before saving model \"{}\".", name_);
    if (!ends_with(filepath, ".h5") && !ends_with(filepath, ".hdf5"))
        value_error("Invalid filepath extension for saving. kerascpp saves Keras's HDF5 format: add a `.h5` (or "
                    "`.hdf5`) extension. Received: filepath={}", filepath);
    saving::atomic_write(
        filepath, [&](const std::string& temp) { saving::write_model_file(temp, *this, options.include_optimizer); },
        options.overwrite);
}

}  // namespace keras
