#include "callbacks/filepath_template.hpp"

#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::callbacks {

namespace {

// One piece of a template: literal text, or a field {name:spec}.
struct Piece {
    bool is_field = false;
    std::string text;   // the literal, or the field name
    std::string spec;
};

std::vector<Piece> parse(const std::string& filepath) {
    std::vector<Piece> pieces;
    std::string literal;
    for (size_t i = 0; i < filepath.size(); ++i) {
        const char c = filepath[i];
        if ((c == '{' || c == '}') && i + 1 < filepath.size() && filepath[i + 1] == c) {
            literal += c;   // "{{" or "}}"
            ++i;
            continue;
        }
        if (c == '}')
            value_error("Invalid ModelCheckpoint filepath \"{}\": single '}}' encountered in format string", filepath);
        if (c != '{') {
            literal += c;
            continue;
        }
        const size_t close = filepath.find('}', i);
        if (close == std::string::npos)
            value_error("Invalid ModelCheckpoint filepath \"{}\": expected '}}' before end of string", filepath);
        const std::string field = filepath.substr(i + 1, close - i - 1);
        const size_t colon = field.find(':');
        Piece piece{true, field.substr(0, colon), colon == std::string::npos ? "" : field.substr(colon + 1)};
        if (piece.text.empty() || piece.text.find('{') != std::string::npos)
            value_error("Invalid ModelCheckpoint filepath \"{}\": a field needs a name, e.g. {{epoch:02d}} or "
                        "{{val_loss:.2f}}", filepath);
        if (!literal.empty()) pieces.push_back({false, literal, ""});
        literal.clear();
        pieces.push_back(std::move(piece));
        i = close;
    }
    if (!literal.empty()) pieces.push_back({false, literal, ""});
    return pieces;
}

bool is_float_type(char type) { return std::string_view("eEfFgG%").find(type) != std::string_view::npos; }

// str(float) in Python: the shortest round-trip digits, with ".0" on whole numbers.
std::string python_str(double value) {
    std::string s = fmt::format("{}", value);
    if (s.find_first_of(".eni") == std::string::npos) s += ".0";
    return s;
}

// Python's format(value, spec) for an int or a float, through fmt (whose spec syntax is Python's).
std::string format_value(const std::variant<int64_t, double>& value, const std::string& spec, const std::string& name,
                         const std::string& filepath) {
    const char type = spec.empty() ? '\0' : spec.back();
    try {
        if (const auto* i = std::get_if<int64_t>(&value)) {
            if (is_float_type(type)) return format_value(static_cast<double>(*i), spec, name, filepath);
            return fmt::format(fmt::runtime("{:" + spec + "}"), *i);
        }
        const double d = std::get<double>(value);
        if (std::string_view("bcdoxXn").find(type) != std::string_view::npos && type != '\0')
            value_error("Failed to format this callback filepath: \"{}\". Reason: Unknown format code '{}' for object "
                        "of type 'float' (field '{}')", filepath, type, name);
        if (spec.empty()) return python_str(d);
        if (type == '%') {
            std::string inner = spec.substr(0, spec.size() - 1);
            if (inner.find('.') == std::string::npos) inner += ".6";
            return fmt::format(fmt::runtime("{:" + inner + "f}"), d * 100.0) + "%";
        }
        return fmt::format(fmt::runtime("{:" + spec + "}"), d);
    } catch (const fmt::format_error& e) {
        value_error("Failed to format this callback filepath: \"{}\". Reason: invalid format spec '{}' for field "
                    "'{}' ({})", filepath, spec, name, e.what());
    }
}

std::string available_keys(std::optional<int64_t> batch, const Logs& logs) {
    std::string keys = batch ? "epoch, batch" : "epoch";
    for (const auto& [key, value] : logs.items()) keys += ", " + key;
    return keys;
}

}  // namespace

// A spec that formats neither an int (epoch, batch) nor a float (a logs value) is malformed whatever
// the field's value will be: refused up front rather than at the first save, epochs later.
void check_filepath_template(const std::string& filepath) {
    for (const Piece& piece : parse(filepath)) {
        if (!piece.is_field || piece.spec.empty()) continue;
        bool formats_something = false;
        for (const std::variant<int64_t, double>& sample : {std::variant<int64_t, double>(int64_t{1}),
                                                           std::variant<int64_t, double>(0.5)}) {
            try {
                format_value(sample, piece.spec, piece.text, filepath);
                formats_something = true;
            } catch (const ValueError&) {
            }
        }
        if (!formats_something)
            value_error("Invalid ModelCheckpoint filepath \"{}\": '{}' is not a valid format spec for field '{}' "
                        "(e.g. {{epoch:02d}} or {{val_loss:.2f}})", filepath, piece.spec, piece.text);
    }
}

std::string format_filepath(const std::string& filepath, int epoch, std::optional<int64_t> batch, const Logs& logs) {
    std::string out;
    for (const Piece& piece : parse(filepath)) {
        if (!piece.is_field) {
            out += piece.text;
            continue;
        }
        std::variant<int64_t, double> value;
        // Keras passes epoch + 1 and batch + 1, then the logs (a "batch" key in the logs wins).
        if (piece.text == "epoch") value = int64_t{epoch} + 1;
        else if (logs.contains(piece.text)) value = logs.at(piece.text);
        else if (piece.text == "batch" && batch) value = *batch + 1;
        else
            value_error("Failed to format this callback filepath: \"{}\". Reason: '{}' is not a key this checkpoint "
                        "knows (available: {})", filepath, piece.text, available_keys(batch, logs));
        out += format_value(value, piece.spec, piece.text, filepath);
    }
    return out;
}

}  // namespace keras::callbacks
