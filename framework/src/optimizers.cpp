// Keras 3 optimizers: the bookkeeping (slots, clipping, iterations, configs) lives here; the
// arithmetic of each update runs on the variable's device through backend::Backend.
#include "keras/optimizers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <regex>

#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::optimizers {

namespace {

// Shortest decimal form of a float as a double, so configs read 0.001 rather than 0.0010000000475.
double config_float(float f) { return std::stod(fmt::format("{}", f)); }

nlohmann::json optional_float(const std::optional<float>& f) {
    return f ? nlohmann::json(config_float(*f)) : nlohmann::json(nullptr);
}

// Python's repr of an optional float in error messages: None, 1.0, 0.5.
std::string python_repr(const std::optional<float>& f) {
    if (!f) return "None";
    std::string s = fmt::format("{}", *f);
    if (s.find_first_of(".eni") == std::string::npos) s += ".0";
    return s;
}

// Keras names an optimizer after its class in snake case (keras.src.utils.naming.to_snake_case):
// "Adam" -> "adam", "SGD" -> "sgd", "RMSprop" -> "rm_sprop".
std::string to_snake_case(const std::string& name) {
    std::string s = std::regex_replace(name, std::regex("(.)([A-Z][a-z]+)"), "$1_$2");
    s = std::regex_replace(s, std::regex("([a-z])([A-Z])"), "$1_$2");
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

Clipping clipping_of(const auto& options) {
    return Clipping{.clipnorm = options.clipnorm, .clipvalue = options.clipvalue,
                    .global_clipnorm = options.global_clipnorm};
}

Tensor undefined_tensor() { return Tensor(); }

}  // namespace

// ---- base optimizer

Optimizer::Optimizer(const LearningRate& learning_rate, Clipping clipping)
    : learning_rate(static_cast<float>(learning_rate.value)), clipping(clipping), schedule_(learning_rate.schedule) {
    sync_learning_rate();
    const int set = clipping.clipnorm.has_value() + clipping.clipvalue.has_value() +
                    clipping.global_clipnorm.has_value();
    if (set > 1)
        value_error("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: clipnorm={}, "
                    "clipvalue={}, global_clipnorm={}", python_repr(clipping.clipnorm),
                    python_repr(clipping.clipvalue), python_repr(clipping.global_clipnorm));
}

void Optimizer::sync_learning_rate() {
    if (schedule_) learning_rate = static_cast<float>((*schedule_)(static_cast<double>(iterations)));
}

void Optimizer::check_learning_rate_settable() const {
    if (schedule_)
        runtime_error("This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                      "constructor argument, hence its learning rate is not settable. If you need the learning rate "
                      "to be settable, you should instantiate the optimizer with a float `learning_rate` argument.");
}

void Optimizer::clip_gradients(std::vector<Tensor>& grads) const {
    // Keras applies the first option that is set and positive, in this order. Clipped gradients are
    // copies: the variables' grads stay as the backward pass left them.
    if (clipping.clipnorm && *clipping.clipnorm > 0) {
        const double c = *clipping.clipnorm;
        for (Tensor& g : grads) {
            // g * c / max(||g||, c): unchanged when the norm is within c.
            const double norm = std::sqrt(backend::for_tensor(g).sum_squares(g));
            if (!(norm > c)) continue;
            g = g.clone();
            backend::for_tensor(g).scale_(g, static_cast<float>(c / norm));
        }
    } else if (clipping.global_clipnorm && *clipping.global_clipnorm > 0) {
        const double c = *clipping.global_clipnorm;
        double sum = 0.0;
        for (const Tensor& g : grads) sum += backend::for_tensor(g).sum_squares(g);
        const double norm = std::sqrt(sum);
        // Keras: c * min(1/norm, 1/c), made NaN when the norm is not finite.
        const double scale = std::isfinite(norm) ? c * std::min(1.0 / norm, 1.0 / c)
                                                 : std::numeric_limits<double>::quiet_NaN();
        if (scale == 1.0) return;
        for (Tensor& g : grads) {
            g = g.clone();
            backend::for_tensor(g).scale_(g, static_cast<float>(scale));
        }
    } else if (clipping.clipvalue && *clipping.clipvalue > 0) {
        const float v = *clipping.clipvalue;
        for (Tensor& g : grads) {
            g = g.clone();
            backend::for_tensor(g).clip_(g, -v, v);
        }
    }
}

void Optimizer::apply(const std::vector<Tensor>& grads, const std::vector<VariablePtr>& variables) {
    if (grads.size() != variables.size())
        value_error("optimizer.apply(): {} gradients for {} variables", grads.size(), variables.size());
    for (size_t i = 0; i < variables.size(); ++i)
        if (variables[i]) variables[i]->grad = grads[i];
    apply_gradients(variables);
}

void Optimizer::apply_gradients(const std::vector<VariablePtr>& variables) {
    std::vector<VariablePtr> targets;
    std::vector<Tensor> grads;
    for (const VariablePtr& v : variables) {
        if (!v || !v->trainable || !v->grad.defined()) continue;
        if (v->grad.shape() != v->value.shape())
            value_error("Gradient of variable '{}' has shape {}, expected the variable's shape {}", v->name,
                        shape_str(v->grad.shape()), shape_str(v->value.shape()));
        targets.push_back(v);
        grads.push_back(v->grad);
    }
    if (targets.empty()) return;
    if (!begin_step(grads)) return;
    clip_gradients(grads);
    // Keras evaluates the schedule at the step count before the update; learning_rate then shows the
    // next step's rate, as Keras's optimizer.learning_rate does.
    sync_learning_rate();
    ++iterations;
    const std::vector<SlotSpec> specs = slot_specs();
    for (size_t i = 0; i < targets.size(); ++i) {
        Variable& var = *targets[i];
        SlotEntry& entry = slots_[&var];
        // A variable freed and another allocated at its address must not inherit its slots.
        if (entry.owner.lock() != targets[i]) entry = SlotEntry{targets[i], {}};
        std::vector<Tensor>& slots = entry.tensors;
        if (slots.empty())
            for (const SlotSpec& spec : specs)
                slots.push_back(Tensor::full(var.value.shape(), spec.initial_value, var.value.device()));
        // The model moved its weights to another device (Model::to): the slots follow them.
        for (Tensor& slot : slots)
            if (slot.device() != var.value.device()) slot = slot.to(var.value.device());
        if (slots.size() != specs.size())
            runtime_error("{} options changed after its slots were created (variable '{}' has {} slots, the "
                          "options need {})", name(), var.name, slots.size(), specs.size());
        // A variable's own rate (fine_tune's discriminative rates), put back even if update throws.
        struct RateScope {
            float& rate;
            const float base;
            ~RateScope() { rate = base; }
        } scope{learning_rate, learning_rate};
        learning_rate = scope.base * var.learning_rate_multiplier;
        update(var, grads[i], slots);
        // Keras: a constrained variable is projected right after its update.
        if (var.constraint) var.value = (*var.constraint)(var.value);
    }
    sync_learning_rate();
    end_step();
}

Tensor Optimizer::scale_loss(const Tensor& loss) const {
    return loss_scale() == 1.0f ? loss : ops::multiply(loss, loss_scale());
}

std::vector<Tensor> Optimizer::slots(const Variable& v) const {
    auto it = slots_.find(&v);
    return it == slots_.end() || it->second.owner.expired() ? std::vector<Tensor>{} : it->second.tensors;
}

void Optimizer::set_slots(const VariablePtr& v, const std::vector<Tensor>& values) {
    if (!v) value_error("{}.set_slots(): the variable is null", name());
    const size_t expected = slot_specs().size();
    if (values.size() != expected)
        value_error("{} keeps {} slot(s) per variable, but {} were given for variable '{}'", name(), expected,
                    values.size(), v->name);
    std::vector<Tensor> tensors;
    for (const Tensor& value : values) {
        if (value.shape() != v->value.shape())
            value_error("{} slot for variable '{}' has shape {}, expected the variable's shape {}", name(), v->name,
                        shape_str(value.shape()), shape_str(v->value.shape()));
        tensors.push_back(value.astype(DType::float32).to(v->value.device()).clone());
    }
    slots_[v.get()] = SlotEntry{v, std::move(tensors)};
}

nlohmann::json Optimizer::get_config() const {
    return {
        {"name", to_snake_case(name())},
        {"learning_rate", schedule_ ? schedules::serialize(*schedule_) : nlohmann::json(config_float(learning_rate))},
        {"weight_decay", nullptr},
        {"clipnorm", optional_float(clipping.clipnorm)},
        {"global_clipnorm", optional_float(clipping.global_clipnorm)},
        {"clipvalue", optional_float(clipping.clipvalue)},
        {"use_ema", false},
        {"ema_momentum", 0.99},
        {"ema_overwrite_frequency", nullptr},
        {"loss_scale_factor", nullptr},
        {"gradient_accumulation_steps", nullptr},
    };
}

// ---- LossScaleOptimizer

namespace {
LearningRate rate_of(const Optimizer& inner) {
    if (inner.learning_rate_schedule()) return LearningRate(inner.learning_rate_schedule());
    return LearningRate(inner.learning_rate);
}
const Optimizer& checked_inner(const OptimizerPtr& inner) {
    if (!inner) value_error("LossScaleOptimizer: the inner optimizer is null");
    if (dynamic_cast<const LossScaleOptimizer*>(inner.get()))
        value_error("LossScaleOptimizer: the inner optimizer is already a LossScaleOptimizer");
    return *inner;
}
}  // namespace

LossScaleOptimizer::LossScaleOptimizer(OptimizerPtr inner_optimizer, LossScaleOptimizerOptions options)
    // Both arguments check: their order of evaluation is unspecified.
    : Optimizer(rate_of(checked_inner(inner_optimizer)), checked_inner(inner_optimizer).clipping),
      initial_scale(options.initial_scale), dynamic_growth_steps(options.dynamic_growth_steps),
      dynamic_scale(options.initial_scale), inner_(std::move(inner_optimizer)) {
    if (!(initial_scale > 0.0f) || !std::isfinite(initial_scale))
        value_error("LossScaleOptimizer: `initial_scale` must be a positive finite number. Received: "
                    "initial_scale={}", initial_scale);
    if (dynamic_growth_steps < 1)
        value_error("LossScaleOptimizer: `dynamic_growth_steps` must be at least 1. Received: "
                    "dynamic_growth_steps={}", dynamic_growth_steps);
    iterations = inner_->iterations;
}

nlohmann::json LossScaleOptimizer::get_config() const {
    nlohmann::json inner = inner_->get_config();
    // The rate is this object's (callbacks set it here).
    inner["learning_rate"] = Optimizer::get_config()["learning_rate"];
    return {
        {"name", "loss_scale_optimizer"},
        {"inner_optimizer", {{"module", "keras.optimizers"}, {"class_name", inner_->name()}, {"config", inner},
                             {"registered_name", nullptr}}},
        {"initial_scale", config_float(initial_scale)},
        {"dynamic_growth_steps", dynamic_growth_steps},
    };
}

bool LossScaleOptimizer::begin_step(std::vector<Tensor>& grads) {
    // A sum of squares in double is finite exactly when every element is (float's largest square,
    // 1.2e77, times any tensor's size stays far below double's limit).
    bool finite = true;
    for (const Tensor& g : grads) finite = finite && std::isfinite(backend::for_tensor(g).sum_squares(g));
    if (!finite) {
        step_counter = 0;
        dynamic_scale *= 0.5f;
        return false;
    }
    // Keras divides (x / s, not x * (1 / s), which differ when s is not a power of two).
    for (Tensor& g : grads) g = ops::divide(g, dynamic_scale);
    return true;
}

void LossScaleOptimizer::end_step() {
    if (step_counter == dynamic_growth_steps - 1) {
        step_counter = 0;
        dynamic_scale *= 2.0f;
    } else {
        ++step_counter;
    }
}

void LossScaleOptimizer::update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) {
    // The inner formula reads its own rate and step count: this step's.
    inner_->learning_rate = learning_rate;
    inner_->iterations = iterations;
    inner_->update(variable, grad, slots);
}

// ---- SGD

SGD::SGD(SGDOptions options)
    : Optimizer(options.learning_rate, clipping_of(options)), momentum(options.momentum), nesterov(options.nesterov) {
    if (!(momentum >= 0.0f && momentum <= 1.0f)) value_error("`momentum` must be a float between [0, 1].");
}

std::vector<SlotSpec> SGD::slot_specs() const {
    if (momentum == 0.0f) return {};
    return {{"momentum"}};
}

void SGD::update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) {
    Tensor none = undefined_tensor();
    Tensor& m = slots.empty() ? none : slots[0];
    backend::for_tensor(variable.value).sgd_update(variable.value, grad, m, learning_rate, momentum, nesterov);
}

nlohmann::json SGD::get_config() const {
    nlohmann::json config = Optimizer::get_config();
    config["momentum"] = config_float(momentum);
    config["nesterov"] = nesterov;
    return config;
}

// ---- Adam

Adam::Adam(AdamOptions options)
    : Optimizer(options.learning_rate, clipping_of(options)), beta_1(options.beta_1), beta_2(options.beta_2),
      epsilon(options.epsilon), amsgrad(options.amsgrad) {}

std::vector<SlotSpec> Adam::slot_specs() const {
    std::vector<SlotSpec> specs = {{"momentum"}, {"velocity"}};
    if (amsgrad) specs.push_back({"velocity_hat"});
    return specs;
}

void Adam::update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) {
    Tensor none = undefined_tensor();
    Tensor& vhat = amsgrad ? slots[2] : none;
    backend::for_tensor(variable.value).adam_update(variable.value, grad, slots[0], slots[1], vhat, learning_rate,
                                                    beta_1, beta_2, epsilon, iterations);
}

nlohmann::json Adam::get_config() const {
    nlohmann::json config = Optimizer::get_config();
    config["beta_1"] = config_float(beta_1);
    config["beta_2"] = config_float(beta_2);
    config["epsilon"] = config_float(epsilon);
    config["amsgrad"] = amsgrad;
    return config;
}

// ---- RMSprop

RMSprop::RMSprop(RMSpropOptions options)
    : Optimizer(options.learning_rate, clipping_of(options)), rho(options.rho), momentum(options.momentum),
      epsilon(options.epsilon), centered(options.centered) {}

std::vector<SlotSpec> RMSprop::slot_specs() const {
    std::vector<SlotSpec> specs = {{"velocity"}};
    if (momentum > 0.0f) specs.push_back({"momentum"});
    if (centered) specs.push_back({"average_gradient"});
    return specs;
}

void RMSprop::update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) {
    // Slots follow slot_specs(): velocity, then momentum and average_gradient when enabled.
    Tensor none_momentum = undefined_tensor(), none_average = undefined_tensor();
    size_t next = 1;
    Tensor& mom = momentum > 0.0f ? slots[next++] : none_momentum;
    Tensor& average_grad = centered ? slots[next++] : none_average;
    backend::for_tensor(variable.value).rmsprop_update(variable.value, grad, slots[0], mom, average_grad,
                                                       learning_rate, rho, momentum, epsilon);
}

nlohmann::json RMSprop::get_config() const {
    nlohmann::json config = Optimizer::get_config();
    config["rho"] = config_float(rho);
    config["momentum"] = config_float(momentum);
    config["epsilon"] = config_float(epsilon);
    config["centered"] = centered;
    return config;
}

// ---- Adagrad

Adagrad::Adagrad(AdagradOptions options)
    : Optimizer(options.learning_rate, clipping_of(options)),
      initial_accumulator_value(options.initial_accumulator_value), epsilon(options.epsilon) {}

std::vector<SlotSpec> Adagrad::slot_specs() const { return {{"accumulator", initial_accumulator_value}}; }

void Adagrad::update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) {
    backend::for_tensor(variable.value).adagrad_update(variable.value, grad, slots[0], learning_rate, epsilon);
}

nlohmann::json Adagrad::get_config() const {
    nlohmann::json config = Optimizer::get_config();
    config["initial_accumulator_value"] = config_float(initial_accumulator_value);
    config["epsilon"] = config_float(epsilon);
    return config;
}

// ---- lookup by Keras identifier

OptimizerPtr get(const std::string& name) {
    // Keras matches built-in optimizer names case-insensitively.
    std::string key = name;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (key == "sgd") return std::make_shared<SGD>();
    if (key == "adam") return std::make_shared<Adam>();
    if (key == "rmsprop") return std::make_shared<RMSprop>();
    if (key == "adagrad") return std::make_shared<Adagrad>();
    value_error("Could not interpret optimizer identifier: {}", name);
}

}  // namespace keras::optimizers
