#include "config_reader.hpp"

#include <fmt/format.h>

#include "keras/activations.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"

namespace keras::layers {

using nlohmann::json;

ConfigReader::ConfigReader(const std::string& class_name, const json& config, const ConfigSource& source)
    : class_name_(class_name), config_(config), source_(source) {
    if (!config_.is_object())
        value_error("Layer of class {} in file '{}': its config should be a JSON object, got {}", class_name,
                    source.file, config.dump());
    name_ = config_.contains("name") && config_["name"].is_string() ? config_["name"].get<std::string>() : "";
}

void ConfigReader::fail(const std::string& key, const std::string& what) const {
    value_error("Layer \"{}\" ({}) in file '{}', field `{}`: {}", name_, class_name_, source_.file, key, what);
}

int64_t ConfigReader::positive_int(const std::string& key) const {
    if (!has(key)) fail(key, "missing");
    const json& v = config_[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key, "expected a positive integer, got " + v.dump());
    return v.get<int64_t>();
}

bool ConfigReader::boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!config_[key].is_boolean()) fail(key, "expected true or false, got " + config_[key].dump());
    return config_[key].get<bool>();
}

float ConfigReader::number(const std::string& key, float fallback) const {
    if (!has(key)) return fallback;
    if (!config_[key].is_number()) fail(key, "expected a number, got " + config_[key].dump());
    return config_[key].get<float>();
}

int ConfigReader::integer(const std::string& key, int fallback) const {
    if (!has(key)) return fallback;
    const json& v = config_[key];
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
    return v.get<int>();
}

std::string ConfigReader::activation(const std::string& key, const std::string& fallback) const {
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

std::string ConfigReader::initializer(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    return initializers::from_config(config_[key], fmt::format("Layer \"{}\" ({}) in file '{}', field `{}`", name_,
                                                               class_name_, source_.file, key));
}

std::optional<std::string> ConfigReader::optional_string(const std::string& key,
                                                         const std::optional<std::string>& fallback) const {
    if (is_null(key)) return std::nullopt;
    if (!has(key)) return fallback;
    if (!config_[key].is_string()) fail(key, "expected a string or null, got " + config_[key].dump());
    return config_[key].get<std::string>();
}

void ConfigReader::require_null(std::initializer_list<const char*> keys) const {
    for (const char* key : keys)
        if (has(key)) fail(key, fmt::format("{} is not supported (only null)", config_[key].dump()));
}

void ConfigReader::require(const std::string& key, const json& neutral) const {
    if (has(key) && config_[key] != neutral)
        fail(key, fmt::format("{} is not supported (only {})", config_[key].dump(), neutral.dump()));
}

std::optional<mixed_precision::DTypePolicy> ConfigReader::dtype_policy() const {
    if (!has("dtype") || has("batch_input_shape")) return std::nullopt;
    const json& d = config_["dtype"];
    std::string name;
    if (d.is_string()) name = d.get<std::string>();
    else if (d.is_object() && d.contains("config") && d["config"].is_object() && d["config"].contains("name") &&
             d["config"]["name"].is_string())
        name = d["config"]["name"].get<std::string>();
    else fail("dtype", fmt::format("expected a dtype policy name or object, got {}", d.dump()));
    if (name != "float32" && name != "mixed_bfloat16" && name != "mixed_float16")
        fail("dtype", fmt::format("{} is not supported (float32, mixed_bfloat16 or mixed_float16)", d.dump()));
    return mixed_precision::DTypePolicy(name);
}

}  // namespace keras::layers

namespace keras::layers {

std::optional<regularizers::Regularizer> ConfigReader::regularizer(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return regularizers::deserialize(config_[key], fmt::format("Layer \"{}\" ({}) in file '{}', field `{}`", name_,
                                                               class_name_, source_.file, key));
}

std::optional<constraints::Constraint> ConfigReader::constraint(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return constraints::deserialize(config_[key], fmt::format("Layer \"{}\" ({}) in file '{}', field `{}`", name_,
                                                              class_name_, source_.file, key));
}

}  // namespace keras::layers
