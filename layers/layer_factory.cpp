#include "layer_factory.hpp"

#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "keras/activations.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/attention.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/convolutional.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/layers/global_max_pooling1d.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/masking.hpp"
#include "keras/layers/merge.hpp"
#include "keras/layers/noise.hpp"
#include "keras/layers/normalization.hpp"
#include "keras/layers/reshaping.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/layers/rnn_cells.hpp"
#include "keras/layers/rnn_layer.hpp"
#include "keras/layers/wrappers.hpp"
#include "config_reader.hpp"

namespace keras::layers {

namespace {

using nlohmann::json;

// Keys every layer of a Keras file may carry.
void common_checks(const ConfigReader& f) {
    (void)f.dtype_policy();   // refuses a policy kerascpp cannot run, naming the layer and file
}

template <typename L> LayerPtr finish(L layer, const ConfigReader& f) {
    auto ptr = std::make_shared<L>(std::move(layer));
    ptr->trainable = f.boolean("trainable", true);
    if (const auto policy = f.dtype_policy()) ptr->set_dtype_policy(*policy);
    // Any layer's, as Keras's base Layer (ActivityRegularization's own comes from its l1 / l2).
    if (f.has("activity_regularizer")) ptr->activity_regularizer = f.regularizer("activity_regularizer");
    return ptr;
}

LayerPtr input_layer(const ConfigReader& f) {
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

// Each layer's options come from its field table (read_fields); only the constructor's positional
// arguments are read here.
LayerPtr embedding(const ConfigReader& f) {
    common_checks(f);
    return finish(Embedding(f.positive_int("input_dim"), f.positive_int("output_dim"), read_fields<EmbeddingOptions>(f)), f);
}

LayerPtr dense(const ConfigReader& f) {
    common_checks(f);
    return finish(Dense(f.positive_int("units"), read_fields<DenseOptions>(f)), f);
}

template <typename L, typename Options> LayerPtr recurrent(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<Options>(f);
    return finish(L(f.positive_int("units"), std::move(options)), f);
}

LayerPtr dropout(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<DropoutOptions>(f);
    return finish(Dropout(f.number("rate", -1.0f), std::move(options)), f);
}

LayerPtr masking(const ConfigReader& f) {
    common_checks(f);
    return finish(Masking(f.number("mask_value", 0.0f), read_fields<MaskingOptions>(f)), f);
}

LayerPtr activation(const ConfigReader& f) {
    common_checks(f);
    if (!f.has("activation")) f.fail("activation", "missing");
    return finish(Activation(f.activation("activation", "linear"), read_fields<ActivationOptions>(f)), f);
}

// Layers whose config is their options struct's alone.
template <typename L, typename Options> LayerPtr options_only(const ConfigReader& f) {
    common_checks(f);
    return finish(L(read_fields<Options>(f)), f);
}

LayerPtr repeat_vector(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<RepeatVectorOptions>(f);
    return finish(RepeatVector(f.positive_int("n"), std::move(options)), f);
}

// An `axis` of an int or a list of ints (Keras 3's LayerNormalization writes [-1], tf.keras's
// BatchNormalization [3]); absent: the fallback.
std::vector<int> axes(const ConfigReader& f, std::vector<int> fallback) {
    if (!f.has("axis")) return fallback;
    const json& v = f.raw("axis");
    if (v.is_number_integer()) return {v.get<int>()};
    std::vector<int> out;
    if (v.is_array())
        for (const json& a : v)
            if (a.is_number_integer()) out.push_back(a.get<int>());
    if (out.empty() || out.size() != v.size()) f.fail("axis", "expected an integer or a list of integers, got " + v.dump());
    return out;
}

// Dot's axes: an int, or a list of two ints (one per input).
LayerPtr dot(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<DotOptions>(f);
    if (!f.has("axes")) f.fail("axes", "missing");
    const json& v = f.raw("axes");
    std::vector<int> axes;
    if (v.is_number_integer()) axes = {v.get<int>()};
    else if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
        axes = {v[0].get<int>(), v[1].get<int>()};
    else f.fail("axes", "expected an integer or a list of two integers, got " + v.dump());
    return finish(Dot(std::move(axes), std::move(options)), f);
}

LayerPtr attention(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<AttentionOptions>(f);
    if (f.has("score_mode")) {
        const json& mode = f.raw("score_mode");
        if (!mode.is_string()) f.fail("score_mode", "expected \"dot\" or \"concat\", got " + mode.dump());
        options.score_mode = mode.get<std::string>();
    }
    return finish(Attention(std::move(options)), f);
}

// An int or None, or Keras 3's list of one int (output_shape).
std::optional<int> optional_dim(const ConfigReader& f, const std::string& key) {
    if (!f.has(key)) return std::nullopt;
    json v = f.raw(key);
    if (v.is_array() && v.size() == 1) v = v[0];
    if (!v.is_number_integer() || v.get<int>() <= 0)
        f.fail(key, "expected a positive integer or None (one output axis), got " + f.raw(key).dump());
    return v.get<int>();
}

LayerPtr multi_head_attention(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<MultiHeadAttentionOptions>(f);
    options.value_dim = optional_dim(f, "value_dim");
    options.output_shape = optional_dim(f, "output_shape");
    if (f.has("attention_axes")) {   // only the default: the steps axis of (batch, steps, dim) inputs
        const json& axes = f.raw("attention_axes");
        const bool steps = axes == json(1) || axes == json::array({1}) || axes == json(-2) || axes == json::array({-2});
        if (!steps) f.fail("attention_axes", axes.dump() + " is not supported (only the default, [1])");
    }
    if (f.has("flash_attention") && f.raw("flash_attention") == json(true))
        f.fail("flash_attention", "true is not supported (only null or false)");
    return finish(MultiHeadAttention(static_cast<int>(f.positive_int("num_heads")),
                                     static_cast<int>(f.positive_int("key_dim")), std::move(options)), f);
}

LayerPtr batch_normalization(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<BatchNormalizationOptions>(f);
    const std::vector<int> axis = axes(f, {-1});
    if (axis.size() != 1) f.fail("axis", "BatchNormalization normalizes one axis, got " + f.raw("axis").dump());
    options.axis = axis[0];
    return finish(BatchNormalization(std::move(options)), f);
}

LayerPtr layer_normalization(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<LayerNormalizationOptions>(f);
    options.axis = axes(f, {-1});
    return finish(LayerNormalization(std::move(options)), f);
}

LayerPtr unit_normalization(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<UnitNormalizationOptions>(f);
    options.axis = axes(f, {-1});
    return finish(UnitNormalization(std::move(options)), f);
}

LayerPtr activity_regularization(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<NoiseOptions>(f);
    return finish(ActivityRegularization(f.number("l1", 0.0f), f.number("l2", 0.0f), std::move(options)), f);
}

// SpatialDropout1D / GaussianDropout (rate) and GaussianNoise (stddev).
template <typename L> LayerPtr noise_layer(const ConfigReader& f, const char* key) {
    common_checks(f);
    auto options = read_fields<NoiseOptions>(f);
    if (!f.has(key)) f.fail(key, "missing");
    return finish(L(f.number(key, 0.0f), std::move(options)), f);
}

// A wrapped layer: a nested {"class_name", "config"} entry, read like any other layer.
LayerPtr nested_layer(const ConfigReader& f, const std::string& key) {
    if (!f.has(key)) f.fail(key, "missing");
    const json& inner = f.raw(key);
    if (!inner.is_object() || !inner.contains("class_name") || !inner["class_name"].is_string() ||
        !inner.contains("config"))
        f.fail(key, "expected a layer entry {\"class_name\": ..., \"config\": ...}, got " + inner.dump());
    return layer_from_config(inner["class_name"].get<std::string>(), inner["config"], f.source());
}

LayerPtr time_distributed(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<TimeDistributedOptions>(f);
    return finish(TimeDistributed(nested_layer(f, "layer"), std::move(options)), f);
}

LayerPtr bidirectional(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<BidirectionalOptions>(f);   // merge_mode null (Keras's None): the outputs stay separate
    options.backward_layer = f.has("backward_layer") ? nested_layer(f, "backward_layer") : nullptr;
    return finish(Bidirectional(nested_layer(f, "layer"), std::move(options)), f);
}

// Keras's RNN(cell) with one of its own cells; a list of cells (StackedRNNCells) or a custom cell
// class has no loader.
LayerPtr rnn(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<RNNOptions>(f);
    if (!f.has("cell")) f.fail("cell", "missing");
    const json& entry = f.raw("cell");
    if (entry.is_array())
        f.fail("cell", "a list of cells (StackedRNNCells) is not supported: stack RNN layers instead");
    if (!entry.is_object() || !entry.contains("class_name") || !entry["class_name"].is_string() ||
        !entry.contains("config"))
        f.fail("cell", "expected a cell entry {\"class_name\": ..., \"config\": ...}, got " + entry.dump());
    auto cell = std::dynamic_pointer_cast<RNNCell>(
        cell_from_config(entry["class_name"].get<std::string>(), entry["config"], f.source()));
    return finish(RNN(std::move(cell), std::move(options)), f);
}

// ---- Convolution, pooling and shape layers: their tuple arguments are read here.

// Keras's 1-tuple arguments (kernel_size, strides, ...): [k] as get_config() writes them, or a bare k.
// Absent (or null, a pooling's strides=None): the fallback.
int64_t tuple1(const ConfigReader& f, const std::string& key, int64_t fallback) {
    if (!f.has(key)) {
        if (fallback < 0) f.fail(key, "missing");
        return fallback;
    }
    const json& v = f.raw(key);
    const json& item = v.is_array() && v.size() == 1 ? v[0] : v;
    if (!item.is_number_integer() || item.get<int64_t>() <= 0)
        f.fail(key, "expected a positive integer or a list of one, got " + v.dump());
    return item.get<int64_t>();
}

// A list of integers (Reshape's target_shape, Permute's dims); a bare n is (n, n) where `pair`.
std::vector<int64_t> int_list(const ConfigReader& f, const std::string& key, const std::vector<int64_t>& fallback,
                              bool pair = false) {
    if (!f.has(key)) {
        if (fallback.empty()) f.fail(key, "missing");
        return fallback;
    }
    const json& v = f.raw(key);
    if (pair && v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
    std::vector<int64_t> out;
    if (v.is_array())
        for (const json& item : v) {
            if (!item.is_number_integer()) break;
            out.push_back(item.get<int64_t>());
        }
    if (!v.is_array() || out.size() != v.size() || (pair && out.size() != 2))
        f.fail(key, std::string(pair ? "expected an integer or a list of two" : "expected a list of integers") +
                        ", got " + v.dump());
    return out;
}

std::string text(const ConfigReader& f, const std::string& key, const std::string& fallback) {
    if (!f.has(key)) return fallback;
    if (!f.raw(key).is_string()) f.fail(key, "expected a string, got " + f.raw(key).dump());
    return f.raw(key).get<std::string>();
}

LayerPtr conv1d(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<Conv1DOptions>(f);
    options.strides = static_cast<int>(tuple1(f, "strides", 1));
    options.padding = text(f, "padding", "valid");
    options.data_format = text(f, "data_format", "channels_last");
    options.dilation_rate = static_cast<int>(tuple1(f, "dilation_rate", 1));
    return finish(Conv1D(f.positive_int("filters"), tuple1(f, "kernel_size", -1), std::move(options)), f);
}

LayerPtr separable_conv1d(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<SeparableConv1DOptions>(f);
    options.strides = static_cast<int>(tuple1(f, "strides", 1));
    options.padding = text(f, "padding", "valid");
    options.data_format = text(f, "data_format", "channels_last");
    options.dilation_rate = static_cast<int>(tuple1(f, "dilation_rate", 1));
    return finish(SeparableConv1D(f.positive_int("filters"), tuple1(f, "kernel_size", -1), std::move(options)), f);
}

template <typename L> LayerPtr pooling1d(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<Pooling1DOptions>(f);
    options.strides = static_cast<int>(tuple1(f, "strides", 0));
    options.padding = text(f, "padding", "valid");
    options.data_format = text(f, "data_format", "channels_last");
    return finish(L(tuple1(f, "pool_size", 2), std::move(options)), f);
}

LayerPtr cropping1d(const ConfigReader& f) {
    common_checks(f);
    return finish(Cropping1D(int_list(f, "cropping", {1, 1}, true), read_fields<ShapeLayerOptions>(f)), f);
}

LayerPtr zero_padding1d(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<ZeroPadding1DOptions>(f);
    return finish(ZeroPadding1D(int_list(f, "padding", {1, 1}, true), std::move(options)), f);
}

LayerPtr up_sampling1d(const ConfigReader& f) {
    common_checks(f);
    return finish(UpSampling1D(tuple1(f, "size", 2), read_fields<ShapeLayerOptions>(f)), f);
}

LayerPtr reshape(const ConfigReader& f) {
    common_checks(f);
    return finish(Reshape(int_list(f, "target_shape", {}), read_fields<ShapeLayerOptions>(f)), f);
}

LayerPtr permute(const ConfigReader& f) {
    common_checks(f);
    const auto dims = int_list(f, "dims", {});
    return finish(Permute(std::vector<int>(dims.begin(), dims.end()), read_fields<ShapeLayerOptions>(f)), f);
}

// An explicit table (not self-registration, which a static link would drop).
const std::map<std::string, std::function<LayerPtr(const ConfigReader&)>>& factories() {
    static const std::map<std::string, std::function<LayerPtr(const ConfigReader&)>> table = {
        {"InputLayer", input_layer}, {"Embedding", embedding}, {"Dense", dense},
        {"SimpleRNN", recurrent<SimpleRNN, SimpleRNNOptions>}, {"LSTM", recurrent<LSTM, LSTMOptions>},
        {"GRU", recurrent<GRU, GRUOptions>}, {"Dropout", dropout}, {"Masking", masking}, {"Activation", activation},
        {"Flatten", options_only<Flatten, FlattenOptions>},
        {"GlobalAveragePooling1D", options_only<GlobalAveragePooling1D, GlobalAveragePooling1DOptions>},
        {"GlobalMaxPooling1D", options_only<GlobalMaxPooling1D, GlobalMaxPooling1DOptions>},
        {"Add", options_only<Add, MergeOptions>}, {"Multiply", options_only<Multiply, MergeOptions>},
        {"Average", options_only<Average, MergeOptions>}, {"Subtract", options_only<Subtract, MergeOptions>},
        {"Maximum", options_only<Maximum, MergeOptions>}, {"Minimum", options_only<Minimum, MergeOptions>},
        {"Dot", dot}, {"Concatenate", options_only<Concatenate, ConcatenateOptions>},
        {"RepeatVector", repeat_vector}, {"TimeDistributed", time_distributed}, {"Bidirectional", bidirectional},
        {"RNN", rnn}, {"Conv1D", conv1d}, {"SeparableConv1D", separable_conv1d},
        {"MaxPooling1D", pooling1d<MaxPooling1D>}, {"AveragePooling1D", pooling1d<AveragePooling1D>},
        {"Cropping1D", cropping1d}, {"ZeroPadding1D", zero_padding1d}, {"UpSampling1D", up_sampling1d},
        {"Reshape", reshape}, {"Permute", permute}, {"Identity", options_only<Identity, ShapeLayerOptions>},
        {"BatchNormalization", batch_normalization}, {"LayerNormalization", layer_normalization},
        {"UnitNormalization", unit_normalization},
        {"SpatialDropout1D", [](const ConfigReader& f) { return noise_layer<SpatialDropout1D>(f, "rate"); }},
        {"GaussianDropout", [](const ConfigReader& f) { return noise_layer<GaussianDropout>(f, "rate"); }},
        {"GaussianNoise", [](const ConfigReader& f) { return noise_layer<GaussianNoise>(f, "stddev"); }},
        {"ActivityRegularization", activity_regularization},
        {"Attention", attention}, {"AdditiveAttention", options_only<AdditiveAttention, AdditiveAttentionOptions>},
        {"MultiHeadAttention", multi_head_attention},
    };
    return table;
}

}  // namespace

namespace {

// Errors from a layer's own constructor (e.g. a bad rate) get the file and layer prepended.
LayerPtr with_context(const std::function<LayerPtr(const ConfigReader&)>& make, const std::string& class_name,
                      const json& config, const ConfigSource& source) {
    const ConfigReader fields(class_name, config, source);
    try {
        return make(fields);
    } catch (const ValueError& e) {
        const std::string message = e.what();
        if (message.find(source.file) != std::string::npos) throw;
        value_error("Layer \"{}\" ({}) in file '{}': {}", fields.name(), class_name, source.file, message);
    }
}

template <typename Cell, typename Options> LayerPtr cell(const ConfigReader& f) {
    common_checks(f);
    auto options = read_fields<Options>(f);
    return finish(Cell(f.positive_int("units"), std::move(options)), f);
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
    return with_context(it->second, class_name, config, source);
}

LayerPtr cell_from_config(const std::string& class_name, const json& config, const ConfigSource& source) {
    static const std::map<std::string, std::function<LayerPtr(const ConfigReader&)>> cells = {
        {"SimpleRNNCell", cell<SimpleRNNCell, SimpleRNNCellOptions>},
        {"LSTMCell", cell<LSTMCell, LSTMCellOptions>},
        {"GRUCell", cell<GRUCell, GRUCellOptions>},
    };
    const auto it = cells.find(class_name);
    if (it == cells.end())
        value_error("Unknown cell: '{}' (layer \"{}\" in file '{}'). kerascpp can load: GRUCell, LSTMCell, "
                    "SimpleRNNCell.", class_name,
                    config.is_object() ? config.value("name", std::string("?")) : std::string("?"), source.file);
    return with_context(it->second, class_name, config, source);
}

}  // namespace keras::layers
