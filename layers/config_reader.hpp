// Reading one layer's Keras config (internal to loading): ConfigReader checks and reads single keys,
// every error naming the layer, the field and the file; read_fields fills an options struct from its
// field table (keras/layers/fields.hpp), so loading needs no line per option.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "keras/mixed_precision.hpp"

#include "keras/layers/fields.hpp"
#include "layer_factory.hpp"

namespace keras::layers {

class ConfigReader {
public:
    ConfigReader(const std::string& class_name, const nlohmann::json& config, const ConfigSource& source);

    const std::string& name() const { return name_; }
    [[noreturn]] void fail(const std::string& key, const std::string& what) const;

    bool has(const std::string& key) const { return config_.contains(key) && !config_[key].is_null(); }
    bool is_null(const std::string& key) const { return config_.contains(key) && config_[key].is_null(); }

    int64_t positive_int(const std::string& key) const;
    bool boolean(const std::string& key, bool fallback) const;
    float number(const std::string& key, float fallback) const;
    int integer(const std::string& key, int fallback) const;
    // Keras 2 and Keras 3 give "hard_sigmoid" different slopes: keep the file's meaning.
    std::string activation(const std::string& key, const std::string& fallback) const;
    std::string initializer(const std::string& key, const std::string& fallback) const;
    // A string, or null for std::nullopt (Bidirectional's merge_mode); absent: the fallback.
    std::optional<std::string> optional_string(const std::string& key, const std::optional<std::string>& fallback) const;

    // A regularizer / constraint in Keras 2's or 3's form; absent or null: std::nullopt.
    std::optional<regularizers::Regularizer> regularizer(const std::string& key) const;
    std::optional<constraints::Constraint> constraint(const std::string& key) const;

    // Options kerascpp does not implement must hold their neutral value.
    void require_null(std::initializer_list<const char*> keys) const;
    void require(const std::string& key, const nlohmann::json& neutral) const;
    // The layer's dtype policy: a name (Keras 2's "float32") or a policy object (Keras 3's DTypePolicy,
    // Keras 2's Policy), "float32" or "mixed_bfloat16"; std::nullopt when absent (the global policy
    // then applies, as in Keras). Next to batch_input_shape (Keras 2.0's first layer) the dtype is the
    // input's, e.g. int32 token ids, and no policy.
    std::optional<mixed_precision::DTypePolicy> dtype_policy() const;

    const nlohmann::json& raw(const std::string& key) const { return config_.at(key); }
    const ConfigSource& source() const { return source_; }

private:
    std::string class_name_;
    nlohmann::json config_;
    const ConfigSource& source_;
    std::string name_;
};

// An options struct from a config: its table's fixed keys checked first (refusing what kerascpp does
// not implement, as before any value is read), then each member read, absent keys keeping the
// struct's default (or the field's when_absent). The struct's name is the layer's.
template <typename O>
O read_fields(const ConfigReader& f) {
    O options{};
    for (const Field<O>& field : O::fields().entries) {
        if (field.kind != FieldKind::fixed || !field.checked) continue;
        const std::string key(field.key);
        if (field.value == "null") {
            if (f.has(key)) f.require_null({key.c_str()});
        } else {
            f.require(key, nlohmann::json::parse(field.value));
        }
    }
    for (const Field<O>& field : O::fields().entries) {
        const std::string key(field.key);
        switch (field.kind) {
            case FieldKind::boolean: {
                bool& v = options.*std::get<bool O::*>(field.member);
                v = f.boolean(key, field.value.empty() ? v : nlohmann::json::parse(field.value).template get<bool>());
                break;
            }
            case FieldKind::number: {
                float& v = options.*std::get<float O::*>(field.member);
                v = f.number(key, v);
                break;
            }
            case FieldKind::integer: {
                int& v = options.*std::get<int O::*>(field.member);
                v = f.integer(key, v);
                break;
            }
            case FieldKind::activation: {
                std::string& v = options.*std::get<std::string O::*>(field.member);
                v = f.activation(key, v);
                break;
            }
            case FieldKind::initializer: {
                std::string& v = options.*std::get<std::string O::*>(field.member);
                v = f.initializer(key, v);
                break;
            }
            case FieldKind::optional_string: {
                auto& v = options.*std::get<std::optional<std::string> O::*>(field.member);
                v = f.optional_string(key, v);
                break;
            }
            case FieldKind::regularizer:
                options.*std::get<std::optional<regularizers::Regularizer> O::*>(field.member) = f.regularizer(key);
                break;
            case FieldKind::constraint:
                options.*std::get<std::optional<constraints::Constraint> O::*>(field.member) = f.constraint(key);
                break;
            case FieldKind::fixed: break;
        }
    }
    options.name = f.name();
    return options;
}

}  // namespace keras::layers
