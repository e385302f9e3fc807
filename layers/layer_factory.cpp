#include "layer_factory.hpp"

#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "keras/activations.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/masking.hpp"
#include "keras/layers/merge.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/layers/wrappers.hpp"

namespace keras::layers {

namespace {

using nlohmann::json;

// Reads one layer's config, every error naming the layer, the field and the file.
class Fields {
public:
    Fields(const std::string& class_name, const json& config, const ConfigSource& source)
        : class_name_(class_name), config_(config), source_(source) {
        if (!config_.is_object())
            value_error("Layer of class {} in file '{}': its config should be a JSON object, got {}", class_name,
                        source.file, config.dump());
        name_ = config_.contains("name") && config_["name"].is_string() ? config_["name"].get<std::string>() : "";
    }

    const std::string& name() const { return name_; }

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        value_error("Layer \"{}\" ({}) in file '{}', field `{}`: {}", name_, class_name_, source_.file, key, what);
    }

    bool has(const std::string& key) const { return config_.contains(key) && !config_[key].is_null(); }
    bool is_null(const std::string& key) const { return config_.contains(key) && config_[key].is_null(); }

    int64_t positive_int(const std::string& key) const {
        if (!has(key)) fail(key, "missing");
        const json& v = config_[key];
        if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key, "expected a positive integer, got " + v.dump());
        return v.get<int64_t>();
    }

    bool boolean(const std::string& key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!config_[key].is_boolean()) fail(key, "expected true or false, got " + config_[key].dump());
        return config_[key].get<bool>();
    }

    float number(const std::string& key, float fallback) const {
        if (!has(key)) return fallback;
        if (!config_[key].is_number()) fail(key, "expected a number, got " + config_[key].dump());
        return config_[key].get<float>();
    }

    // Keras 2 and Keras 3 give "hard_sigmoid" different slopes: keep the file's meaning.
    std::string activation(const std::string& key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const json& v = config_[key];
        std::string name;
        if (v.is_string()) name = v.get<std::string>();
        else if (v.is_object() && v.contains("config") && v["config"].is_string()) name = v["config"].get<std::string>();
        else fail(key, "expected an activation name, got " + v.dump());
        if (name == "hard_sigmoid" && source_.keras_major < 3) name = "hard_sigmoid_keras2";
        try {
            activation_from_string(name);
        } catch (const ValueError&) {
            fail(key, fmt::format("unknown activation '{}'", name));
        }
        return name;
    }

    std::string initializer(const std::string& key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        return initializers::from_config(config_[key],
                                         fmt::format("Layer \"{}\" ({}) in file '{}', field `{}`", name_, class_name_,
                                                     source_.file, key));
    }

    // Options kerascpp does not implement must hold their neutral value.
    void require_null(std::initializer_list<const char*> keys) const {
        for (const char* key : keys)
            if (has(key)) fail(key, fmt::format("{} is not supported (only null)", config_[key].dump()));
    }
    void require(const std::string& key, const json& neutral) const {
        if (has(key) && config_[key] != neutral)
            fail(key, fmt::format("{} is not supported (only {})", config_[key].dump(), neutral.dump()));
    }
    // float32 as a string (Keras 2) or a DTypePolicy (Keras 3). Next to batch_input_shape (Keras 2.0's
    // first layer) the dtype is the input's, e.g. int32 token ids.
    void require_float32() const {
        if (!has("dtype") || has("batch_input_shape")) return;
        const json& d = config_["dtype"];
        std::string name;
        if (d.is_string()) name = d.get<std::string>();
        else if (d.is_object() && d.contains("config") && d["config"].is_object() && d["config"].contains("name"))
            name = d["config"]["name"].get<std::string>();
        if (name != "float32") fail("dtype", fmt::format("{} is not supported (only float32)", d.dump()));
    }

    const json& raw(const std::string& key) const { return config_.at(key); }
    const ConfigSource& source() const { return source_; }

private:
    std::string class_name_;
    json config_;
    const ConfigSource& source_;
    std::string name_;
};

// Fields every layer of a Keras file may carry.
void common_checks(const Fields& f) {
    f.require_float32();
    f.require_null({"activity_regularizer"});
}

template <typename L> LayerPtr finish(L layer, const Fields& f) {
    auto ptr = std::make_shared<L>(std::move(layer));
    ptr->trainable = f.boolean("trainable", true);
    return ptr;
}

LayerPtr input_layer(const Fields& f) {
    const char* key = f.has("batch_shape") ? "batch_shape" : "batch_input_shape";
    if (!f.has(key)) f.fail("batch_shape", "missing (neither batch_shape nor batch_input_shape is given)");
    const json& dims = f.raw(key);
    if (!dims.is_array() || dims.empty()) f.fail(key, "expected a list [None, ...], got " + dims.dump());
    Shape batch_shape;   // a fixed batch size (stateful models) loads as one
    for (const json& d : dims) {
        if (d.is_null()) batch_shape.push_back(-1);
        else if (d.is_number_integer() && d.get<int64_t>() > 0) batch_shape.push_back(d.get<int64_t>());
        else f.fail(key, "expected positive dimensions or None, got " + dims.dump());
    }
    DType dtype = DType::float32;
    if (f.has("dtype")) {
        const std::string d = f.raw("dtype").is_string() ? f.raw("dtype").get<std::string>() : "";
        if (d == "int32") dtype = DType::int32;
        else if (d == "int64") dtype = DType::int64;
        else if (d != "float32") f.fail("dtype", fmt::format("{} is not supported (float32, int32 or int64)", f.raw("dtype").dump()));
    }
    f.require("sparse", false);
    f.require("ragged", false);
    return std::make_shared<InputLayer>(Shape{}, InputOptions{.dtype = dtype, .batch_shape = batch_shape, .name = f.name()});
}

LayerPtr embedding(const Fields& f) {
    common_checks(f);
    f.require_null({"embeddings_regularizer", "embeddings_constraint"});
    return finish(Embedding(f.positive_int("input_dim"), f.positive_int("output_dim"),
                            {.embeddings_initializer = f.initializer("embeddings_initializer", "uniform"),
                             .mask_zero = f.boolean("mask_zero", false),
                             .name = f.name()}),
                  f);
}

LayerPtr dense(const Fields& f) {
    common_checks(f);
    f.require_null({"kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint",
                    "quantization_config"});
    return finish(Dense(f.positive_int("units"),
                        DenseOptions{.activation = f.activation("activation", "linear"),
                                     .use_bias = f.boolean("use_bias", true),
                                     .kernel_initializer = f.initializer("kernel_initializer", "glorot_uniform"),
                                     .bias_initializer = f.initializer("bias_initializer", "zeros"),
                                     .name = f.name()}),
                  f);
}

// Recurrent options kerascpp does not implement.
void recurrent_checks(const Fields& f) {
    common_checks(f);
    f.require_null({"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
                    "recurrent_constraint", "bias_constraint"});
    f.require("time_major", false);
}

// The arguments every recurrent layer's options struct shares, read from its config.
template <typename Options>
Options recurrent_options(const Fields& f) {
    recurrent_checks(f);
    Options options;
    options.activation = f.activation("activation", "tanh");
    options.use_bias = f.boolean("use_bias", true);
    options.kernel_initializer = f.initializer("kernel_initializer", "glorot_uniform");
    options.recurrent_initializer = f.initializer("recurrent_initializer", "orthogonal");
    options.bias_initializer = f.initializer("bias_initializer", "zeros");
    options.dropout = f.number("dropout", 0.0f);
    options.recurrent_dropout = f.number("recurrent_dropout", 0.0f);
    options.return_sequences = f.boolean("return_sequences", false);
    options.return_state = f.boolean("return_state", false);
    options.go_backwards = f.boolean("go_backwards", false);
    options.stateful = f.boolean("stateful", false);
    options.zero_output_for_mask = f.boolean("zero_output_for_mask", false);
    options.name = f.name();
    return options;
}

LayerPtr simple_rnn(const Fields& f) {
    return finish(SimpleRNN(f.positive_int("units"), recurrent_options<SimpleRNNOptions>(f)), f);
}

LayerPtr lstm(const Fields& f) {
    auto options = recurrent_options<LSTMOptions>(f);
    options.recurrent_activation = f.activation("recurrent_activation", "sigmoid");
    options.unit_forget_bias = f.boolean("unit_forget_bias", true);
    return finish(LSTM(f.positive_int("units"), options), f);
}

LayerPtr gru(const Fields& f) {
    auto options = recurrent_options<GRUOptions>(f);
    options.recurrent_activation = f.activation("recurrent_activation", "sigmoid");
    // Keras before 2.3 had no reset_after and computed the original GRU (false).
    options.reset_after = f.boolean("reset_after", false);
    return finish(GRU(f.positive_int("units"), options), f);
}

LayerPtr dropout(const Fields& f) {
    common_checks(f);
    f.require_null({"noise_shape"});
    return finish(Dropout(f.number("rate", -1.0f), {.name = f.name()}), f);
}

LayerPtr masking(const Fields& f) {
    common_checks(f);
    return finish(Masking(f.number("mask_value", 0.0f), {.name = f.name()}), f);
}

LayerPtr activation(const Fields& f) {
    common_checks(f);
    if (!f.has("activation")) f.fail("activation", "missing");
    return finish(Activation(f.activation("activation", "linear"), {.name = f.name()}), f);
}

LayerPtr flatten(const Fields& f) {
    common_checks(f);
    f.require("data_format", "channels_last");
    return finish(Flatten({.name = f.name()}), f);
}

LayerPtr global_average_pooling_1d(const Fields& f) {
    common_checks(f);
    f.require("data_format", "channels_last");
    f.require("keepdims", false);
    return finish(GlobalAveragePooling1D({.name = f.name()}), f);
}

template <typename L> LayerPtr merge(const Fields& f) {
    common_checks(f);
    return finish(L({.name = f.name()}), f);
}

LayerPtr concatenate(const Fields& f) {
    common_checks(f);
    int axis = -1;
    if (f.has("axis")) {
        const json& v = f.raw("axis");
        if (!v.is_number_integer()) f.fail("axis", "expected an integer, got " + v.dump());
        axis = v.get<int>();
    }
    return finish(Concatenate({.axis = axis, .name = f.name()}), f);
}

LayerPtr repeat_vector(const Fields& f) {
    common_checks(f);
    return finish(RepeatVector(f.positive_int("n"), {.name = f.name()}), f);
}

// A wrapped layer: a nested {"class_name", "config"} entry, read like any other layer.
LayerPtr nested_layer(const Fields& f, const std::string& key) {
    if (!f.has(key)) f.fail(key, "missing");
    const json& inner = f.raw(key);
    if (!inner.is_object() || !inner.contains("class_name") || !inner["class_name"].is_string() ||
        !inner.contains("config"))
        f.fail(key, "expected a layer entry {\"class_name\": ..., \"config\": ...}, got " + inner.dump());
    return layer_from_config(inner["class_name"].get<std::string>(), inner["config"], f.source());
}

LayerPtr time_distributed(const Fields& f) {
    common_checks(f);
    return finish(TimeDistributed(nested_layer(f, "layer"), {.name = f.name()}), f);
}

LayerPtr bidirectional(const Fields& f) {
    common_checks(f);
    // merge_mode null (Keras's None): the two directions' outputs stay separate; absent: "concat".
    std::optional<std::string> merge_mode = "concat";
    if (f.is_null("merge_mode")) {
        merge_mode = std::nullopt;
    } else if (f.has("merge_mode")) {
        if (!f.raw("merge_mode").is_string()) f.fail("merge_mode", "expected a string or null, got " + f.raw("merge_mode").dump());
        merge_mode = f.raw("merge_mode").get<std::string>();
    }
    const LayerPtr backward_layer = f.has("backward_layer") ? nested_layer(f, "backward_layer") : nullptr;
    return finish(Bidirectional(nested_layer(f, "layer"), {.merge_mode = merge_mode,
                                                             .backward_layer = backward_layer,
                                                             .name = f.name()}),
                  f);
}

// An explicit table (not self-registration, which a static link would drop).
const std::map<std::string, std::function<LayerPtr(const Fields&)>>& factories() {
    static const std::map<std::string, std::function<LayerPtr(const Fields&)>> table = {
        {"InputLayer", input_layer}, {"Embedding", embedding}, {"Dense", dense}, {"SimpleRNN", simple_rnn},
        {"LSTM", lstm}, {"GRU", gru}, {"Dropout", dropout}, {"Masking", masking}, {"Activation", activation}, {"Flatten", flatten},
        {"GlobalAveragePooling1D", global_average_pooling_1d}, {"Add", merge<Add>}, {"Multiply", merge<Multiply>},
        {"Average", merge<Average>}, {"Concatenate", concatenate}, {"RepeatVector", repeat_vector},
        {"TimeDistributed", time_distributed}, {"Bidirectional", bidirectional},
    };
    return table;
}

}  // namespace

LayerPtr layer_from_config(const std::string& class_name, const json& config, const ConfigSource& source) {
    const auto it = factories().find(class_name);
    if (it == factories().end()) {
        std::string known;
        for (const auto& [name, _] : factories()) known += (known.empty() ? "" : ", ") + name;
        value_error("Unknown layer: '{}' (layer \"{}\" in file '{}'). kerascpp can load: {}.", class_name,
                    config.is_object() ? config.value("name", std::string("?")) : std::string("?"), source.file,
                    known);
    }
    const Fields fields(class_name, config, source);
    try {
        return it->second(fields);
    } catch (const ValueError& e) {
        // Errors from the layer's own constructor (e.g. a bad rate) get the file and layer prepended.
        const std::string message = e.what();
        if (message.find(source.file) != std::string::npos) throw;
        value_error("Layer \"{}\" ({}) in file '{}': {}", fields.name(), class_name, source.file, message);
    }
}

}  // namespace keras::layers
