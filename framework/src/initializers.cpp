#include "keras/initializers.hpp"

#include <cmath>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/random.hpp"

namespace keras::initializers {

namespace {
const char* const kNames[] = {"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                              "lecun_uniform", "lecun_normal", "orthogonal", "random_uniform",
                              "random_normal", "uniform", "normal"};

// Keras's fans: for 2-D (in, out); for higher ranks the leading dims are a receptive field.
std::pair<double, double> fans(const Shape& shape) {
    if (shape.empty()) return {1, 1};
    if (shape.size() == 1) return {double(shape[0]), double(shape[0])};
    if (shape.size() == 2) return {double(shape[0]), double(shape[1])};
    double receptive = 1;
    for (size_t i = 0; i + 2 < shape.size(); ++i) receptive *= double(shape[i]);
    return {shape[shape.size() - 2] * receptive, shape.back() * receptive};
}

// Keras's truncated normal: redraw values beyond two standard deviations.
double truncated_normal() {
    for (;;) {
        const double v = random::normal();
        if (std::fabs(v) <= 2.0) return v;
    }
}

void fill_uniform(Tensor& t, double limit) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(random::uniform(-limit, limit));
}

// Keras's variance-scaling normal uses a truncated normal with stddev corrected by 0.8796...
void fill_truncated(Tensor& t, double scale) {
    const double stddev = std::sqrt(scale) / 0.87962566103423978;
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(stddev * truncated_normal());
}

// Orthogonal: QR of a normal (rows x cols) matrix, rows = prod(shape[:-1]), sign-corrected so the
// result is uniformly distributed (Keras does the same through numpy/TF qr).
void fill_orthogonal(Tensor& t) {
    const int64_t cols = t.shape().back();
    const int64_t rows = t.numel() / cols;
    const bool transpose = rows < cols;
    const int64_t m = transpose ? cols : rows, n = transpose ? rows : cols;   // m >= n
    std::vector<double> a(m * n);
    for (double& v : a) v = random::normal();
    // Modified Gram-Schmidt on the n columns of the m x n matrix a (column j = a[i*n + j]).
    for (int64_t j = 0; j < n; ++j) {
        for (int64_t k = 0; k < j; ++k) {
            double dot = 0;
            for (int64_t i = 0; i < m; ++i) dot += a[i * n + j] * a[i * n + k];
            for (int64_t i = 0; i < m; ++i) a[i * n + j] -= dot * a[i * n + k];
        }
        double norm = 0;
        for (int64_t i = 0; i < m; ++i) norm += a[i * n + j] * a[i * n + j];
        norm = std::sqrt(norm);
        for (int64_t i = 0; i < m; ++i) a[i * n + j] /= norm;
    }
    float* p = t.data<float>();
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            p[r * cols + c] = static_cast<float>(transpose ? a[c * n + r] : a[r * n + c]);
}
// The value of a "constant(<value>)" name; nullopt for any other name.
std::optional<float> constant_value(const std::string& name) {
    if (name.rfind("constant(", 0) != 0 || name.back() != ')') return std::nullopt;
    try {
        size_t used = 0;
        const std::string text = name.substr(9, name.size() - 10);
        const float value = std::stof(text, &used);
        if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}
}  // namespace

std::string Constant(float value) { return fmt::format("constant({})", value); }

void check_name(const std::string& name) {
    if (constant_value(name)) return;
    for (const char* n : kNames)
        if (name == n) return;
    value_error("Could not interpret initializer identifier: {}", name);
}

Tensor make(const std::string& name, const Shape& shape) {
    check_name(name);
    Tensor t(shape, DType::float32);
    const auto [fan_in, fan_out] = fans(shape);
    if (const auto value = constant_value(name)) t.fill(*value);
    else if (name == "zeros") t.fill(0.0f);
    else if (name == "ones") t.fill(1.0f);
    else if (name == "glorot_uniform") fill_uniform(t, std::sqrt(6.0 / (fan_in + fan_out)));
    else if (name == "he_uniform") fill_uniform(t, std::sqrt(6.0 / fan_in));
    else if (name == "lecun_uniform") fill_uniform(t, std::sqrt(3.0 / fan_in));
    else if (name == "glorot_normal") fill_truncated(t, 2.0 / (fan_in + fan_out));
    else if (name == "he_normal") fill_truncated(t, 2.0 / fan_in);
    else if (name == "lecun_normal") fill_truncated(t, 1.0 / fan_in);
    else if (name == "orthogonal") fill_orthogonal(t);
    else if (name == "random_uniform" || name == "uniform") fill_uniform(t, 0.05);
    else {   // random_normal / normal: stddev 0.05
        float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(0.05 * random::normal());
    }
    return t;
}

}  // namespace keras::initializers

// ---- configs (Keras 3's serialized form, and the forms older Keras files carry)

namespace keras::initializers {

namespace {

struct InitializerInfo {
    const char* name;
    const char* class_name;
    nlohmann::json config;
};

// Keras 3.15's get_config() of each initializer with its default arguments.
const std::vector<InitializerInfo>& infos() {
    static const nlohmann::json variance = {{"seed", nullptr}, {"input_axes", nullptr}, {"output_axes", nullptr}};
    static const std::vector<InitializerInfo> table = {
        {"zeros", "Zeros", nlohmann::json::object()},
        {"ones", "Ones", nlohmann::json::object()},
        {"glorot_uniform", "GlorotUniform", variance},
        {"glorot_normal", "GlorotNormal", variance},
        {"he_uniform", "HeUniform", variance},
        {"he_normal", "HeNormal", variance},
        {"lecun_uniform", "LecunUniform", variance},
        {"lecun_normal", "LecunNormal", variance},
        {"orthogonal", "Orthogonal", {{"seed", nullptr}, {"gain", 1.0}}},
        {"random_uniform", "RandomUniform", {{"seed", nullptr}, {"minval", -0.05}, {"maxval", 0.05}}},
        {"random_normal", "RandomNormal", {{"seed", nullptr}, {"mean", 0.0}, {"stddev", 0.05}}},
    };
    return table;
}

// Keras 2.0 wrote the Glorot / He / LeCun initializers as VarianceScaling(scale, mode, distribution).
std::string from_variance_scaling(const nlohmann::json& c, const std::string& where) {
    const double scale = c.value("scale", 1.0);
    const std::string mode = c.value("mode", "fan_in");
    std::string distribution = c.value("distribution", "truncated_normal");
    if (distribution == "normal") distribution = "truncated_normal";   // Keras 2.0's name for it
    struct Form { double scale; const char* mode; const char* distribution; const char* name; };
    static const Form forms[] = {
        {1.0, "fan_avg", "uniform", "glorot_uniform"}, {1.0, "fan_avg", "truncated_normal", "glorot_normal"},
        {2.0, "fan_in", "uniform", "he_uniform"},      {2.0, "fan_in", "truncated_normal", "he_normal"},
        {1.0, "fan_in", "uniform", "lecun_uniform"},   {1.0, "fan_in", "truncated_normal", "lecun_normal"},
    };
    for (const Form& f : forms)
        if (f.scale == scale && mode == f.mode && distribution == f.distribution) return f.name;
    value_error("{}: VarianceScaling(scale={}, mode='{}', distribution='{}') is not supported", where, scale, mode,
                distribution);
}

// The arguments in `given` must equal the defaults we implement (seeds and axes aside).
void check_arguments(const InitializerInfo& info, const nlohmann::json& given, const std::string& where) {
    if (!given.is_object()) return;
    for (const auto& [key, value] : given.items()) {
        if (key == "seed" || key == "input_axes" || key == "output_axes" || key == "dtype") continue;
        const auto expected = info.config.find(key);
        const bool same = expected != info.config.end() && value.is_number() && expected->is_number() &&
                          std::abs(value.get<double>() - expected->get<double>()) < 1e-12;
        if (!same)
            value_error("{}: {} with {}={} is not supported (only the default {})", where, info.class_name, key,
                        value.dump(), expected != info.config.end() ? expected->dump() : std::string("arguments"));
    }
}

}  // namespace

nlohmann::json get_config(const std::string& name) {
    if (const auto value = constant_value(name))
        return {{"module", "keras.initializers"}, {"class_name", "Constant"},
                {"config", {{"value", std::stod(fmt::format("{}", *value))}}}, {"registered_name", nullptr}};
    const std::string key = name == "uniform" ? "random_uniform" : name;
    for (const auto& info : infos())
        if (key == info.name)
            return {{"module", "keras.initializers"}, {"class_name", info.class_name}, {"config", info.config},
                    {"registered_name", nullptr}};
    check_name(name);   // throws for an unknown name
    return nullptr;
}

std::string from_config(const nlohmann::json& config, const std::string& where) {
    if (config.is_string()) {
        const std::string name = config.get<std::string>();
        for (const auto& info : infos())
            if (name == info.name || name == info.class_name) return info.name;
        if (name == "uniform") return "random_uniform";
        value_error("{}: unknown initializer '{}'", where, name);
    }
    if (!config.is_object() || !config.contains("class_name") || !config["class_name"].is_string())
        value_error("{}: expected an initializer name or {{\"class_name\": ..., \"config\": ...}}, got {}", where,
                    config.dump());
    const std::string class_name = config["class_name"].get<std::string>();
    const nlohmann::json args = config.value("config", nlohmann::json::object());
    if (class_name == "VarianceScaling") return from_variance_scaling(args, where);
    if (class_name == "Constant") {
        const nlohmann::json value = args.value("value", nlohmann::json(0.0));
        if (!value.is_number())
            value_error("{}: Constant with value={} is not supported (only a number; give a pretrained matrix to "
                        "Embedding's weights instead)", where, value.dump().substr(0, 80));
        return Constant(value.get<float>());
    }
    for (const auto& info : infos())
        if (class_name == info.class_name) {
            check_arguments(info, args, where);
            return info.name;
        }
    value_error("{}: initializer '{}' is not supported", where, class_name);
}

}  // namespace keras::initializers
