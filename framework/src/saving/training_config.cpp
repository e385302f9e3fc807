#include "saving/training_config.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include "keras/errors.hpp"

namespace keras::saving {

namespace {

using nlohmann::json;

class OptimizerFields {
public:
    OptimizerFields(const json& config, std::string where) : config_(config), where_(std::move(where)) {}

    float number(const std::string& key, float fallback) const {
        if (!has(key)) return fallback;
        if (!config_[key].is_number())
            value_error("{}: optimizer field `{}` should be a number, got {}", where_, key, config_[key].dump());
        return config_[key].get<float>();
    }
    std::optional<float> optional_number(const std::string& key) const {
        return has(key) ? std::optional<float>(number(key, 0.0f)) : std::nullopt;
    }
    bool boolean(const std::string& key, bool fallback) const {
        return has(key) && config_[key].is_boolean() ? config_[key].get<bool>() : fallback;
    }
    // A number or a schedule's config (Keras 3's {"module", "class_name", "config", "registered_name"} or
    // tf-keras's {"class_name", "config"}). Keras 2.0 calls the learning rate "lr".
    optimizers::LearningRate learning_rate(float fallback) const {
        const char* key = has("learning_rate") ? "learning_rate" : "lr";
        if (has(key) && config_[key].is_object()) {
            try {
                return optimizers::schedules::deserialize(config_[key]);
            } catch (const ValueError& e) {
                value_error("{}: optimizer field `{}`: {}", where_, key, e.what());
            }
        }
        return number(key, fallback);
    }
    // Options we do not implement must be absent or neutral.
    void require_neutral() const {
        for (const char* key : {"weight_decay", "decay"})
            if (has(key) && !(config_[key].is_number() && config_[key].get<double>() == 0.0))
                value_error("{}: optimizer field `{}` = {} is not supported", where_, key, config_[key].dump());
        if (boolean("use_ema", false)) value_error("{}: optimizer field `use_ema` = true is not supported", where_);
    }

private:
    bool has(const std::string& key) const { return config_.contains(key) && !config_[key].is_null(); }
    json config_;
    std::string where_;
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Keras 3's {name, inner_optimizer, initial_scale, dynamic_growth_steps}; tf.keras 2 adds `dynamic`.
optimizers::OptimizerPtr loss_scale_optimizer_from_config(const json& config, const std::string& where) {
    if (!config.contains("inner_optimizer"))
        value_error("{}: the LossScaleOptimizer's config has no `inner_optimizer`", where);
    if (config.contains("dynamic") && config["dynamic"] == false)
        value_error("{}: LossScaleOptimizer field `dynamic` = false is not supported (Keras 3 dropped it: set "
                    "`loss_scale_factor` on the inner optimizer instead)", where);
    // Checked before reading it, so a file cannot nest wrappers as deep as it likes.
    const json& inner = config["inner_optimizer"];
    if (inner.is_object() && inner.value("class_name", json()) == "LossScaleOptimizer")
        value_error("{}: the LossScaleOptimizer's inner optimizer is a LossScaleOptimizer", where);
    optimizers::LossScaleOptimizerOptions options;
    options.initial_scale = OptimizerFields(config, where).number("initial_scale", options.initial_scale);
    if (config.contains("dynamic_growth_steps")) {
        const json& steps = config["dynamic_growth_steps"];
        if (!steps.is_number_integer())
            value_error("{}: LossScaleOptimizer field `dynamic_growth_steps` should be an integer, got {}", where,
                        steps.dump());
        options.dynamic_growth_steps = steps.get<int64_t>();
    }
    try {
        return std::make_shared<optimizers::LossScaleOptimizer>(
            optimizer_from_config(inner, where + ", inner_optimizer"), options);
    } catch (const ValueError& e) {
        if (std::string(e.what()).rfind(where, 0) == 0) throw;
        value_error("{}: {}", where, e.what());
    }
}

}  // namespace

optimizers::OptimizerPtr optimizer_from_config(const json& optimizer_config, const std::string& where) {
    if (optimizer_config.is_string()) return optimizers::get(optimizer_config.get<std::string>());
    if (!optimizer_config.is_object() || !optimizer_config.contains("class_name"))
        value_error("{}: optimizer_config should be {{\"class_name\", \"config\"}}, got {}", where,
                    optimizer_config.dump());
    std::string class_name = optimizer_config["class_name"].get<std::string>();
    // tf-keras writes "Custom>Adam" for its own optimizers.
    if (class_name.rfind("Custom>", 0) == 0) class_name = class_name.substr(7);
    if (class_name == "LossScaleOptimizer")
        return loss_scale_optimizer_from_config(optimizer_config.value("config", json::object()), where);
    const OptimizerFields f(optimizer_config.value("config", json::object()), where);
    f.require_neutral();
    const auto clipnorm = f.optional_number("clipnorm"), clipvalue = f.optional_number("clipvalue"),
               global_clipnorm = f.optional_number("global_clipnorm");
    const std::string key = lower(class_name);
    if (key == "adam")
        return std::make_shared<optimizers::Adam>(optimizers::AdamOptions{
            .learning_rate = f.learning_rate(0.001f), .beta_1 = f.number("beta_1", 0.9f),
            .beta_2 = f.number("beta_2", 0.999f), .epsilon = f.number("epsilon", 1e-7f),
            .amsgrad = f.boolean("amsgrad", false), .clipnorm = clipnorm, .clipvalue = clipvalue,
            .global_clipnorm = global_clipnorm});
    if (key == "sgd")
        return std::make_shared<optimizers::SGD>(optimizers::SGDOptions{
            .learning_rate = f.learning_rate(0.01f), .momentum = f.number("momentum", 0.0f),
            .nesterov = f.boolean("nesterov", false), .clipnorm = clipnorm, .clipvalue = clipvalue,
            .global_clipnorm = global_clipnorm});
    if (key == "rmsprop")
        return std::make_shared<optimizers::RMSprop>(optimizers::RMSpropOptions{
            .learning_rate = f.learning_rate(0.001f), .rho = f.number("rho", 0.9f),
            .momentum = f.number("momentum", 0.0f), .epsilon = f.number("epsilon", 1e-7f),
            .centered = f.boolean("centered", false), .clipnorm = clipnorm, .clipvalue = clipvalue,
            .global_clipnorm = global_clipnorm});
    if (key == "adagrad")
        return std::make_shared<optimizers::Adagrad>(optimizers::AdagradOptions{
            .learning_rate = f.learning_rate(0.001f),
            .initial_accumulator_value = f.number("initial_accumulator_value", 0.1f),
            .epsilon = f.number("epsilon", 1e-7f), .clipnorm = clipnorm, .clipvalue = clipvalue,
            .global_clipnorm = global_clipnorm});
    value_error("{}: optimizer '{}' is not supported (Adam, SGD, RMSprop, Adagrad)", where, class_name);
}

losses::LossPtr loss_from_config(const json& loss, const std::string& where) {
    if (loss.is_string()) return losses::get(loss.get<std::string>());
    if (!loss.is_object() || !loss.contains("class_name") || !loss["class_name"].is_string())
        value_error("{}: the loss should be a name or {{\"class_name\", \"config\"}}, got {}", where, loss.dump());
    const std::string class_name = loss["class_name"].get<std::string>();
    const json config = loss.value("config", json::object());
    const losses::CrossentropyOptions options{.from_logits = config.value("from_logits", false),
                                              .label_smoothing = config.value("label_smoothing", 0.0f)};
    if (class_name == "BinaryCrossentropy") return std::make_shared<losses::BinaryCrossentropy>(options);
    if (class_name == "CategoricalCrossentropy") return std::make_shared<losses::CategoricalCrossentropy>(options);
    if (class_name == "SparseCategoricalCrossentropy") {
        if (config.contains("ignore_class") && !config["ignore_class"].is_null())
            value_error("{}: loss field `ignore_class` is not supported", where);
        return std::make_shared<losses::SparseCategoricalCrossentropy>(
            losses::CrossentropyOptions{.from_logits = options.from_logits});
    }
    return losses::get(class_name);
}

std::vector<std::string> metrics_from_config(const json& metrics, const std::string& where) {
    std::vector<std::string> names;
    if (metrics.is_null()) return names;
    // Keras 2.x nests them ([[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy"}}]]).
    std::function<void(const json&)> collect = [&](const json& m) {
        if (m.is_string()) names.push_back(m.get<std::string>());
        else if (m.is_array()) for (const auto& item : m) collect(item);
        else if (m.is_object() && m.contains("config") && m["config"].is_object() && m["config"].contains("name"))
            names.push_back(m["config"]["name"].get<std::string>());
        else if (!m.is_null()) value_error("{}: cannot read the metric {}", where, m.dump());
    };
    collect(metrics);
    return names;
}

namespace {
// A dict by output name rather than a serialized metric object ({"class_name", "config"}).
bool is_output_dict(const json& j) { return j.is_object() && !j.contains("class_name"); }
}  // namespace

CompileOptions compile_options_from_config(const json& training, const std::vector<std::string>& output_names,
                                           const std::string& where) {
    CompileOptions options;
    const json metrics = training.value("metrics", json());
    const bool one_list_per_output = metrics.is_array() && output_names.size() > 1 &&
                                     metrics.size() == output_names.size() &&
                                     std::all_of(metrics.begin(), metrics.end(), [](const json& m) { return m.is_array(); });
    if (one_list_per_output) {
        for (const auto& m : metrics) options.per_output_metrics.push_back(metrics_from_config(m, where));
    } else if (is_output_dict(metrics)) {
        for (const auto& [name, m] : metrics.items()) options.metrics_by_output[name] = metrics_from_config(m, where);
    } else {
        options.metrics = metrics_from_config(metrics, where);
    }
    const json weights = training.value("loss_weights", json());
    auto number = [&](const json& w) {
        if (!w.is_number()) value_error("{}: a loss weight should be a number, got {}", where, w.dump());
        return w.get<double>();
    };
    if (weights.is_array()) {
        for (const auto& w : weights) options.loss_weights.push_back(number(w));
    } else if (weights.is_object()) {
        for (const auto& [name, w] : weights.items()) options.loss_weights_by_output[name] = number(w);
    } else if (weights.is_number()) {   // Keras's single-output form: one float
        options.loss_weights.assign(output_names.size(), number(weights));
    } else if (!weights.is_null()) {
        value_error("{}: `loss_weights` should be a list, a dict or null, got {}", where, weights.dump());
    }
    return options;
}

}  // namespace keras::saving
