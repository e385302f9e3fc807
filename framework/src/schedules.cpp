// Keras 3's learning-rate schedules: formulas, argument checks and configs of
// keras/src/optimizers/schedules/learning_rate_schedule.py.
#include "keras/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numbers>

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::optimizers::schedules {

namespace {

using nlohmann::json;

// Step counts are integers in Keras's configs (decay_steps=100): keep them so when written back.
json count_json(double v) {
    if (std::floor(v) == v && std::abs(v) < 9e15) return static_cast<int64_t>(v);
    return v;
}

// Python's repr of a number in an error message: 100, -5, 2.5.
std::string repr(double v) { return count_json(v).dump(); }

void check_decay_steps(const char* argument, double steps) {
    if (!(steps > 0)) value_error("Argument `{}` must be > 0. Received: {}={}", argument, argument, repr(steps));
}

json counts_json(const std::vector<double>& values) {
    json out = json::array();
    for (double v : values) out.push_back(count_json(v));
    return out;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out;
}

// Python's repr of a list: [10, 50, 100], [1.0, 0.5].
std::string list_repr(const std::vector<double>& values, bool counts) {
    std::vector<std::string> items;
    for (double v : values) items.push_back(counts ? repr(v) : json(v).dump());
    return fmt::format("[{}]", joined(items));
}

}  // namespace

// ---- ExponentialDecay

ExponentialDecay::ExponentialDecay(ExponentialDecayOptions options) : options(std::move(options)) {
    check_decay_steps("decay_steps", this->options.decay_steps);
}

double ExponentialDecay::operator()(double step) const {
    double p = step / options.decay_steps;
    if (options.staircase) p = std::floor(p);
    return options.initial_learning_rate * std::pow(options.decay_rate, p);
}

json ExponentialDecay::get_config() const {
    return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", count_json(options.decay_steps)},
            {"decay_rate", options.decay_rate}, {"staircase", options.staircase}, {"name", options.name}};
}

// ---- InverseTimeDecay

InverseTimeDecay::InverseTimeDecay(InverseTimeDecayOptions options) : options(std::move(options)) {
    check_decay_steps("decay_steps", this->options.decay_steps);
}

double InverseTimeDecay::operator()(double step) const {
    double p = step / options.decay_steps;
    if (options.staircase) p = std::floor(p);
    return options.initial_learning_rate / (1.0 + options.decay_rate * p);
}

json InverseTimeDecay::get_config() const {
    return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", count_json(options.decay_steps)},
            {"decay_rate", options.decay_rate}, {"staircase", options.staircase}, {"name", options.name}};
}

// ---- PolynomialDecay

PolynomialDecay::PolynomialDecay(PolynomialDecayOptions options) : options(std::move(options)) {
    check_decay_steps("decay_steps", this->options.decay_steps);
}

double PolynomialDecay::operator()(double step) const {
    double decay_steps = options.decay_steps;
    if (options.cycle) {
        // The period stretches to the first multiple of decay_steps at or above step (one at step 0).
        decay_steps *= step == 0 ? 1.0 : std::ceil(step / options.decay_steps);
    } else {
        step = std::min(step, decay_steps);
    }
    const double p = step / decay_steps;
    return (options.initial_learning_rate - options.end_learning_rate) * std::pow(1.0 - p, options.power) +
           options.end_learning_rate;
}

json PolynomialDecay::get_config() const {
    return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", count_json(options.decay_steps)},
            {"end_learning_rate", options.end_learning_rate}, {"power", options.power}, {"cycle", options.cycle},
            {"name", options.name}};
}

// ---- PiecewiseConstantDecay

PiecewiseConstantDecay::PiecewiseConstantDecay(PiecewiseConstantDecayOptions options) : options(std::move(options)) {
    const auto& b = this->options.boundaries;
    const auto& v = this->options.values;
    if (b.size() + 1 != v.size())
        value_error("The length of boundaries should be 1 less than the length of values. Received: boundaries={} "
                    "of length {}, and values={} of length {}.", list_repr(b, true), b.size(), list_repr(v, false),
                    v.size());
}

double PiecewiseConstantDecay::operator()(double step) const {
    // The first boundary not below step: its value (values[i] covers (boundaries[i-1], boundaries[i]]).
    const auto& b = options.boundaries;
    const size_t i = static_cast<size_t>(std::lower_bound(b.begin(), b.end(), step) - b.begin());
    return options.values[i];
}

json PiecewiseConstantDecay::get_config() const {
    return {{"boundaries", counts_json(options.boundaries)}, {"values", options.values}, {"name", options.name}};
}

// ---- CosineDecay

CosineDecay::CosineDecay(CosineDecayOptions options) : options(std::move(options)) {
    check_decay_steps("decay_steps", this->options.decay_steps);
}

double CosineDecay::operator()(double step) const {
    const double decay_steps = options.decay_steps;
    auto decay = [&](double s, double from_lr) {
        const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * s / decay_steps));
        return from_lr * ((1.0 - options.alpha) * cosine + options.alpha);
    };
    if (!options.warmup_target) return decay(std::min(step, decay_steps), options.initial_learning_rate);
    const double target = *options.warmup_target, warmup_steps = options.warmup_steps;
    step = std::min(step, decay_steps + warmup_steps);
    if (step < warmup_steps)
        return (target - options.initial_learning_rate) * (step / warmup_steps) + options.initial_learning_rate;
    return decay(step - warmup_steps, target);
}

json CosineDecay::get_config() const {
    return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", count_json(options.decay_steps)},
            {"alpha", options.alpha}, {"name", options.name},
            {"warmup_target", options.warmup_target ? json(*options.warmup_target) : json(nullptr)},
            {"warmup_steps", count_json(options.warmup_steps)}};
}

// ---- CosineDecayRestarts

CosineDecayRestarts::CosineDecayRestarts(CosineDecayRestartsOptions options) : options(std::move(options)) {
    check_decay_steps("first_decay_steps", this->options.first_decay_steps);
}

double CosineDecayRestarts::operator()(double step) const {
    const double t_mul = options.t_mul;
    double fraction = step / options.first_decay_steps;
    double restart;
    if (t_mul == 1.0) {
        restart = std::floor(fraction);
        fraction -= restart;
    } else {
        // Periods 1, t, t^2, ...: the restart is the largest i with (1 - t^i) / (1 - t) <= fraction.
        restart = std::floor(std::log(1.0 - fraction * (1.0 - t_mul)) / std::log(t_mul));
        const double elapsed = (1.0 - std::pow(t_mul, restart)) / (1.0 - t_mul);
        fraction = (fraction - elapsed) / std::pow(t_mul, restart);
    }
    const double cosine = 0.5 * std::pow(options.m_mul, restart) * (1.0 + std::cos(std::numbers::pi * fraction));
    return options.initial_learning_rate * ((1.0 - options.alpha) * cosine + options.alpha);
}

json CosineDecayRestarts::get_config() const {
    return {{"initial_learning_rate", options.initial_learning_rate},
            {"first_decay_steps", count_json(options.first_decay_steps)}, {"t_mul", options.t_mul},
            {"m_mul", options.m_mul}, {"alpha", options.alpha}, {"name", options.name}};
}

// ---- (de)serialization

json serialize(const LearningRateSchedule& schedule) {
    return {{"module", "keras.optimizers.schedules"}, {"class_name", schedule.class_name()},
            {"config", schedule.get_config()}, {"registered_name", nullptr}};
}

namespace {

// Typed access to a schedule's config fields, naming the schedule and field in errors.
class Fields {
public:
    Fields(const json& config, std::string class_name) : config_(config), class_name_(std::move(class_name)) {}

    double number(const char* key, std::optional<double> fallback = std::nullopt) const {
        if (!has(key)) {
            if (fallback) return *fallback;
            value_error("Learning-rate schedule {}: its config has no `{}`", class_name_, key);
        }
        if (!config_[key].is_number()) wrong_type(key, "a number");
        return config_[key].get<double>();
    }
    std::optional<double> optional_number(const char* key) const {
        return has(key) ? std::optional<double>(number(key)) : std::nullopt;
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!config_[key].is_boolean()) wrong_type(key, "true or false");
        return config_[key].get<bool>();
    }
    std::string name(const std::string& fallback) const {
        if (!has("name")) return fallback;
        if (!config_["name"].is_string()) wrong_type("name", "a string");
        return config_["name"].get<std::string>();
    }
    std::vector<double> numbers(const char* key) const {
        if (!has(key)) value_error("Learning-rate schedule {}: its config has no `{}`", class_name_, key);
        if (!config_[key].is_array()) wrong_type(key, "a list of numbers");
        std::vector<double> out;
        for (const json& v : config_[key]) {
            if (!v.is_number()) wrong_type(key, "a list of numbers");
            out.push_back(v.get<double>());
        }
        return out;
    }

private:
    bool has(const char* key) const { return config_.contains(key) && !config_[key].is_null(); }
    [[noreturn]] void wrong_type(const char* key, const char* expected) const {
        value_error("Learning-rate schedule {}: `{}` should be {}, got {}", class_name_, key, expected,
                    config_[key].dump());
    }
    const json& config_;
    std::string class_name_;
};

using Factory = std::function<SchedulePtr(const Fields&)>;

const std::map<std::string, Factory>& factories() {
    static const std::map<std::string, Factory> table = {
        {"ExponentialDecay", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<ExponentialDecay>(ExponentialDecayOptions{
                 .initial_learning_rate = f.number("initial_learning_rate"), .decay_steps = f.number("decay_steps"),
                 .decay_rate = f.number("decay_rate"), .staircase = f.boolean("staircase", false),
                 .name = f.name("ExponentialDecay")});
         }},
        {"InverseTimeDecay", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<InverseTimeDecay>(InverseTimeDecayOptions{
                 .initial_learning_rate = f.number("initial_learning_rate"), .decay_steps = f.number("decay_steps"),
                 .decay_rate = f.number("decay_rate"), .staircase = f.boolean("staircase", false),
                 .name = f.name("InverseTimeDecay")});
         }},
        {"PolynomialDecay", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<PolynomialDecay>(PolynomialDecayOptions{
                 .initial_learning_rate = f.number("initial_learning_rate"), .decay_steps = f.number("decay_steps"),
                 .end_learning_rate = f.number("end_learning_rate", 0.0001), .power = f.number("power", 1.0),
                 .cycle = f.boolean("cycle", false), .name = f.name("PolynomialDecay")});
         }},
        {"PiecewiseConstantDecay", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<PiecewiseConstantDecay>(PiecewiseConstantDecayOptions{
                 .boundaries = f.numbers("boundaries"), .values = f.numbers("values"),
                 .name = f.name("PiecewiseConstant")});
         }},
        {"CosineDecay", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<CosineDecay>(CosineDecayOptions{
                 .initial_learning_rate = f.number("initial_learning_rate"), .decay_steps = f.number("decay_steps"),
                 .alpha = f.number("alpha", 0.0), .name = f.name("CosineDecay"),
                 .warmup_target = f.optional_number("warmup_target"), .warmup_steps = f.number("warmup_steps", 0.0)});
         }},
        {"CosineDecayRestarts", [](const Fields& f) -> SchedulePtr {
             return std::make_shared<CosineDecayRestarts>(CosineDecayRestartsOptions{
                 .initial_learning_rate = f.number("initial_learning_rate"),
                 .first_decay_steps = f.number("first_decay_steps"), .t_mul = f.number("t_mul", 2.0),
                 .m_mul = f.number("m_mul", 1.0), .alpha = f.number("alpha", 0.0), .name = f.name("SGDRDecay")});
         }},
    };
    return table;
}

}  // namespace

SchedulePtr deserialize(const json& config) {
    if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string())
        value_error("A learning-rate schedule should be {{\"class_name\", \"config\"}}, got {}", config.dump());
    const std::string class_name = config["class_name"].get<std::string>();
    const auto it = factories().find(class_name);
    if (it == factories().end()) {
        std::vector<std::string> known;
        for (const auto& [name, factory] : factories()) known.push_back(name);
        value_error("Unknown learning-rate schedule '{}' (kerascpp knows {})", class_name, joined(known));
    }
    const json fields = config.value("config", json::object());
    if (!fields.is_object())
        value_error("Learning-rate schedule {}: its config should be an object, got {}", class_name, fields.dump());
    return it->second(Fields(fields, class_name));
}

}  // namespace keras::optimizers::schedules
