// A layer's fields, declared once. Each options struct lists its Keras config keys in one table
// (`static const FieldTable<XOptions>& fields()`), and get_config() (write_fields) and loading a Keras 2 /
// Keras 3 file (layer_factory.cpp, read_fields) are generated from that table, so adding an option is
// one member in the struct plus one line in its table. The struct stays a plain aggregate, so
// `layers::LSTM(32, {.return_sequences = true})` keeps working; its default member initializers are
// the defaults, also for a key a file leaves out (unless the field says otherwise, e.g. GRU's
// reset_after of Keras < 2.3).
//
//     struct DenseOptions {
//         std::string activation{};
//         bool use_bias = true;
//         std::string name{};
//         static const FieldTable<DenseOptions>& fields();
//     };
//     inline const FieldTable<DenseOptions>& DenseOptions::fields() {
//         static const auto table = FieldTable<DenseOptions>()
//             .activation("activation", &DenseOptions::activation)
//             .boolean("use_bias", &DenseOptions::use_bias)
//             .nulls({"kernel_regularizer"});   // a Keras argument kerascpp keeps at None
//         return table;
//     }
//
// A struct's `name` is not a field: Layer::get_config() writes the layer's (unique) name and loading
// sets it from the file. A layer's positional constructor arguments (units, rate, ...) are written
// and read next to the table by the layer's get_config() and its loader.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/regularizers.hpp"

namespace keras::layers {

// How a field is written by get_config() and read back from a file.
enum class FieldKind {
    boolean,           // true / false
    number,            // a float, written as its shortest text as a double (0.2f reads 0.2, as Keras writes it)
    integer,           // an int
    activation,        // a name; written normalised ("" -> "linear", "silu" -> "swish"); read also from
                       // Keras 3's {"class_name", "config"} form, Keras 2's "hard_sigmoid" keeping its slope
    initializer,       // a name; written as Keras 3's object, read from Keras 2 / 3 names and objects
    optional_string,   // a string, or null for std::nullopt
    regularizer,       // a regularizer or null: Keras 3's object, read from Keras 2 / 3 objects and names
    constraint,        // a constraint or null, the same way
    fixed,             // no member: a Keras argument kerascpp keeps at one value (a regularizer's None,
                       // data_format "channels_last"); a file with another value is refused
};

// One entry of a FieldTable: a Keras config key, its kind and the options member it maps to.
template <typename Options>
struct Field {
    using Member = std::variant<std::monostate, bool Options::*, float Options::*, int Options::*,
                                std::string Options::*, std::optional<std::string> Options::*,
                                std::optional<regularizers::Regularizer> Options::*,
                                std::optional<constraints::Constraint> Options::*>;
    std::string_view key;
    FieldKind kind;
    Member member{};
    // fixed: the value, as JSON text. Others: the JSON an absent key loads as, where that is not the
    // struct's default (empty: the default).
    std::string_view value{};
    bool written = true;   // get_config() writes it (false: Keras 2's time_major, only checked on load)
    bool checked = true;   // fixed: loading refuses another value (false: ignored, as Keras 3's seed)
};

// One options struct's fields, in the order loading checks them. The builder methods chain:
// FieldTable<O>().boolean(...).number(...).
template <typename Options>
class FieldTable {
public:
    using O = Options;
    FieldTable& boolean(std::string_view key, bool O::*m, std::string_view when_absent = {}) {
        return add({key, FieldKind::boolean, m, when_absent});
    }
    FieldTable& number(std::string_view key, float O::*m) { return add({key, FieldKind::number, m}); }
    FieldTable& integer(std::string_view key, int O::*m) { return add({key, FieldKind::integer, m}); }
    FieldTable& activation(std::string_view key, std::string O::*m) { return add({key, FieldKind::activation, m}); }
    FieldTable& initializer(std::string_view key, std::string O::*m) { return add({key, FieldKind::initializer, m}); }
    FieldTable& optional_string(std::string_view key, std::optional<std::string> O::*m) {
        return add({key, FieldKind::optional_string, m});
    }
    FieldTable& regularizer(std::string_view key, std::optional<regularizers::Regularizer> O::*m) {
        return add({key, FieldKind::regularizer, m});
    }
    FieldTable& constraint(std::string_view key, std::optional<constraints::Constraint> O::*m) {
        return add({key, FieldKind::constraint, m});
    }
    // Keys kerascpp keeps at None (regularizers, constraints): written null, a file's non-null refused.
    FieldTable& nulls(std::initializer_list<std::string_view> keys) {
        for (std::string_view key : keys) add({key, FieldKind::fixed, {}, "null"});
        return *this;
    }
    // A key at one value (JSON text): `written` by get_config(), `checked` when loading.
    FieldTable& fixed(std::string_view key, std::string_view json, bool written = true, bool checked = true) {
        return add({key, FieldKind::fixed, {}, json, written, checked});
    }
    // Fields shared by several structs (the recurrent cells' and layers'), as a function of the table.
    FieldTable& with(void (*fragment)(FieldTable&)) {
        fragment(*this);
        return *this;
    }
    FieldTable& add(Field<O> field) {
        entries.push_back(field);
        return *this;
    }

    std::vector<Field<O>> entries;
};

namespace fields_detail {
// The JSON get_config() writes for a field's value (fields.cpp).
nlohmann::json number_json(float value);
nlohmann::json activation_json(const std::string& name);
nlohmann::json initializer_json(const std::string& name);
}  // namespace fields_detail

// Writes the table's fields of `options` into a get_config() object.
template <typename O>
void write_fields(nlohmann::json& config, const O& options) {
    for (const Field<O>& f : O::fields().entries) {
        if (!f.written) continue;
        nlohmann::json& out = config[std::string(f.key)];
        switch (f.kind) {
            case FieldKind::boolean: out = options.*std::get<bool O::*>(f.member); break;
            case FieldKind::number: out = fields_detail::number_json(options.*std::get<float O::*>(f.member)); break;
            case FieldKind::integer: out = options.*std::get<int O::*>(f.member); break;
            case FieldKind::activation:
                out = fields_detail::activation_json(options.*std::get<std::string O::*>(f.member));
                break;
            case FieldKind::initializer:
                out = fields_detail::initializer_json(options.*std::get<std::string O::*>(f.member));
                break;
            case FieldKind::optional_string: {
                const auto& v = options.*std::get<std::optional<std::string> O::*>(f.member);
                out = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
                break;
            }
            case FieldKind::regularizer: {
                const auto& v = options.*std::get<std::optional<regularizers::Regularizer> O::*>(f.member);
                out = v ? regularizers::serialize(*v) : nlohmann::json(nullptr);
                break;
            }
            case FieldKind::constraint: {
                const auto& v = options.*std::get<std::optional<constraints::Constraint> O::*>(f.member);
                out = v ? constraints::serialize(*v) : nlohmann::json(nullptr);
                break;
            }
            case FieldKind::fixed:
                // A None the Layer's own config already filled in (activity_regularizer) keeps its value.
                if (!(f.value == "null" && !out.is_null())) out = nlohmann::json::parse(f.value);
                break;
        }
    }
}

// GCC's -Warray-bounds flags the std::visit branches for member types a struct does not have (e.g. a
// std::string member of RecurrentCommon, which has none): branches never taken, as each Field's
// member pointer is one of the struct's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#endif

// The members of `options`, by key, as they are (no normalising): what convert_fields copies.
template <typename O>
void write_members(nlohmann::json& out, const O& options) {
    for (const Field<O>& f : O::fields().entries)
        std::visit([&](auto member) {
            if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
                const auto& v = options.*member;
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::optional<std::string>>)
                    out[std::string(f.key)] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
                else if constexpr (std::is_same_v<T, std::optional<regularizers::Regularizer>> ||
                                   std::is_same_v<T, std::optional<constraints::Constraint>>)
                    out[std::string(f.key)] = v ? serialize(*v) : nlohmann::json(nullptr);
                else
                    out[std::string(f.key)] = v;
            }
        }, f.member);
}

// Copies the fields of one or more options structs into another by their Keras keys (later sources
// win): a layer's options to its cell's, or back to the layer's for get_config(), without a line per field.
template <typename To, typename... From>
To convert_fields(To to, const From&... from) {
    nlohmann::json values = nlohmann::json::object();
    (write_members(values, from), ...);
    for (const Field<To>& f : To::fields().entries) {
        const auto it = values.find(std::string(f.key));
        if (it == values.end()) continue;
        std::visit([&](auto member) {
            if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
                auto& v = to.*member;
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::optional<std::string>>)
                    v = it->is_null() ? std::nullopt : std::optional<std::string>(it->template get<std::string>());
                else if constexpr (std::is_same_v<T, std::optional<regularizers::Regularizer>>)
                    v = it->is_null() ? std::nullopt : T(regularizers::deserialize(*it, "convert_fields"));
                else if constexpr (std::is_same_v<T, std::optional<constraints::Constraint>>)
                    v = it->is_null() ? std::nullopt : T(constraints::deserialize(*it, "convert_fields"));
                else
                    v = it->template get<std::decay_t<decltype(v)>>();
            }
        }, f.member);
    }
    return to;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace keras::layers
