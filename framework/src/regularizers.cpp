#include "keras/regularizers.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras {

namespace {
// A float32 argument as Keras writes it: its shortest text read as a double (0.01f -> 0.01).
nlohmann::json number(float value) { return std::stod(fmt::format("{}", value)); }

float non_negative(float value, const char* name) {
    if (!std::isfinite(value) || value < 0.0f)
        value_error("Invalid value for argument {}: expected a non-negative float.Received: {}={}", name, name, value);
    return value;
}

// {"class_name": ..., "config": {...}} (Keras 2 and 3, Keras 3 adding module / registered_name) or a name.
std::pair<std::string, nlohmann::json> class_and_config(const nlohmann::json& config, const std::string& where,
                                                        const char* what) {
    if (config.is_string()) return {config.get<std::string>(), nlohmann::json::object()};
    if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string())
        value_error("{}: expected a {} name or {{\"class_name\": ..., \"config\": ...}}, got {}", where, what, config.dump());
    const nlohmann::json args = config.contains("config") && config["config"].is_object() ? config["config"]
                                                                                          : nlohmann::json::object();
    return {config["class_name"].get<std::string>(), args};
}

float number_arg(const nlohmann::json& args, const char* key, float fallback, const std::string& where) {
    if (!args.contains(key) || args[key].is_null()) return fallback;
    if (!args[key].is_number()) value_error("{}: `{}` must be a number, got {}", where, key, args[key].dump());
    return args[key].get<float>();
}
}  // namespace

namespace regularizers {

Regularizer::Regularizer(std::string class_name, float l1, float l2)
    : class_name(std::move(class_name)), l1(non_negative(l1, "l1")), l2(non_negative(l2, "l2")) {}

Regularizer::Regularizer(const std::string& identifier) {
    if (identifier == "l1" || identifier == "L1") *this = L1();
    else if (identifier == "l2" || identifier == "L2") *this = L2();
    else if (identifier == "L1L2" || identifier == "l1l2") *this = L1L2();
    else if (identifier == "l1_l2") *this = L1L2(0.01f, 0.01f);   // Keras 2's l1_l2()
    else value_error("Could not interpret regularizer identifier: {}", identifier);
}

Tensor Regularizer::operator()(const Tensor& x) const {
    Tensor penalty = ops::multiply(ops::sum(x), 0.0f);   // a 0-d zero on x's device when both are 0
    if (l1 != 0.0f) penalty = ops::add(penalty, ops::multiply(ops::sum(ops::abs(x)), l1));
    if (l2 != 0.0f) penalty = ops::add(penalty, ops::multiply(ops::sum(ops::square(x)), l2));
    return penalty;
}

Tensor Regularizer::gradient(const Tensor& x) const {
    autodiff::StopRecording pause;
    Tensor g = ops::multiply(x, 2.0f * l2);
    if (l1 != 0.0f) g = ops::add(g, ops::multiply(ops::sign(x), l1));
    return g;
}

nlohmann::json Regularizer::get_config() const {
    if (class_name == "L1") return {{"l1", number(l1)}};
    if (class_name == "L2") return {{"l2", number(l2)}};
    return {{"l1", number(l1)}, {"l2", number(l2)}};
}

Regularizer L1(float l1) { return Regularizer("L1", l1, 0.0f); }
Regularizer L2(float l2) { return Regularizer("L2", 0.0f, l2); }
Regularizer L1L2(float l1, float l2) { return Regularizer("L1L2", l1, l2); }

nlohmann::json serialize(const Regularizer& r) {
    return {{"module", "keras.regularizers"}, {"class_name", r.class_name}, {"config", r.get_config()},
            {"registered_name", nullptr}};
}

Regularizer deserialize(const nlohmann::json& config, const std::string& where) {
    const auto [name, args] = class_and_config(config, where, "regularizer");
    try {
        if (config.is_string()) return Regularizer(name);
        if (name == "L1") return L1(number_arg(args, "l1", 0.01f, where));
        if (name == "L2") return L2(number_arg(args, "l2", 0.01f, where));
        if (name == "L1L2") return L1L2(number_arg(args, "l1", 0.0f, where), number_arg(args, "l2", 0.0f, where));
    } catch (const ValueError& e) {
        value_error("{}: {}", where, e.what());
    }
    value_error("{}: regularizer '{}' is not supported (kerascpp has L1, L2 and L1L2)", where, name);
}

}  // namespace regularizers

namespace constraints {

Constraint::Constraint(const std::string& identifier) {
    if (identifier == "max_norm" || identifier == "MaxNorm") *this = MaxNorm();
    else if (identifier == "non_neg" || identifier == "NonNeg") *this = NonNeg();
    else if (identifier == "unit_norm" || identifier == "UnitNorm") *this = UnitNorm();
    else if (identifier == "min_max_norm" || identifier == "MinMaxNorm") *this = MinMaxNorm();
    else value_error("Could not interpret constraint identifier: {}", identifier);
}

Tensor Constraint::operator()(const Tensor& w) const {
    autodiff::StopRecording pause;   // a projection after the step, not part of any gradient
    if (class_name == "NonNeg") return ops::maximum(w, 0.0f);
    std::vector<int> axes;
    for (int a : axis) {
        if (a >= static_cast<int>(w.ndim()) || a < -static_cast<int>(w.ndim()))
            value_error("{} constraint: axis {} is out of bounds for a weight of shape {}", class_name, a,
                        shape_str(w.shape()));
        axes.push_back(a);
    }
    const Tensor norms = ops::sqrt(ops::sum(ops::square(w), axes, true));
    const Tensor denominator = ops::add(norms, 1e-7f);
    if (class_name == "UnitNorm") return ops::divide(w, denominator);
    Tensor desired = ops::clip(norms, class_name == "MaxNorm" ? 0.0f : min_value, max_value);
    if (class_name == "MinMaxNorm" && rate != 1.0f)
        desired = ops::add(ops::multiply(desired, rate), ops::multiply(norms, 1.0f - rate));
    return ops::multiply(w, ops::divide(desired, denominator));
}

nlohmann::json Constraint::get_config() const {
    const nlohmann::json axis_json = axis.size() == 1 ? nlohmann::json(axis[0]) : nlohmann::json(axis);
    if (class_name == "NonNeg") return nlohmann::json::object();
    if (class_name == "UnitNorm") return {{"axis", axis_json}};
    if (class_name == "MaxNorm") return {{"max_value", number(max_value)}, {"axis", axis_json}};
    return {{"min_value", number(min_value)}, {"max_value", number(max_value)}, {"rate", number(rate)},
            {"axis", axis_json}};
}

namespace {
Constraint make(std::string class_name, float min_value, float max_value, float rate, std::vector<int> axis) {
    Constraint c;
    c.class_name = std::move(class_name);
    c.min_value = min_value;
    c.max_value = max_value;
    c.rate = rate;
    c.axis = std::move(axis);
    if (c.axis.empty()) value_error("{}: `axis` must name at least one axis", c.class_name);
    return c;
}
}  // namespace

Constraint MaxNorm(float max_value, std::vector<int> axis) { return make("MaxNorm", 0.0f, max_value, 1.0f, std::move(axis)); }
Constraint NonNeg() { return make("NonNeg", 0.0f, 2.0f, 1.0f, {0}); }
Constraint UnitNorm(std::vector<int> axis) { return make("UnitNorm", 0.0f, 2.0f, 1.0f, std::move(axis)); }
Constraint MinMaxNorm(float min_value, float max_value, float rate, std::vector<int> axis) {
    return make("MinMaxNorm", min_value, max_value, rate, std::move(axis));
}

nlohmann::json serialize(const Constraint& c) {
    return {{"module", "keras.constraints"}, {"class_name", c.class_name}, {"config", c.get_config()},
            {"registered_name", nullptr}};
}

Constraint deserialize(const nlohmann::json& config, const std::string& where) {
    const auto [name, args] = class_and_config(config, where, "constraint");
    std::vector<int> axis{0};
    if (args.contains("axis") && !args["axis"].is_null()) {
        const auto& a = args["axis"];
        if (a.is_number_integer()) axis = {a.get<int>()};
        else if (a.is_array() && !a.empty() && std::all_of(a.begin(), a.end(), [](const auto& e) { return e.is_number_integer(); }))
            axis = a.get<std::vector<int>>();
        else value_error("{}: constraint `axis` must be an integer or a list of integers, got {}", where, a.dump());
    }
    try {
        if (config.is_string()) return Constraint(name);
        if (name == "MaxNorm") return MaxNorm(number_arg(args, "max_value", 2.0f, where), axis);
        if (name == "NonNeg") return NonNeg();
        if (name == "UnitNorm") return UnitNorm(axis);
        if (name == "MinMaxNorm")
            return MinMaxNorm(number_arg(args, "min_value", 0.0f, where), number_arg(args, "max_value", 1.0f, where),
                              number_arg(args, "rate", 1.0f, where), axis);
    } catch (const ValueError& e) {
        value_error("{}: {}", where, e.what());
    }
    value_error("{}: constraint '{}' is not supported (kerascpp has MaxNorm, NonNeg, UnitNorm and MinMaxNorm)", where,
                name);
}

}  // namespace constraints

}  // namespace keras
