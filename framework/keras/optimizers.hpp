// Keras optimizers with Keras 3's defaults and update formulas. Gradient clipping (clipnorm per
// variable, clipvalue element-wise, global_clipnorm over all variables) happens before the update.
// The arithmetic runs on the variables' device through backend::Backend.
#pragma once

#include "keras/export.hpp"

#include <concepts>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/schedules.hpp"
#include "keras/variable.hpp"

namespace keras::optimizers {

// An optimizer's learning_rate option: a number, or a schedule evaluated at every step (Keras's
// `learning_rate=PolynomialDecay(...)`).
struct KERAS_API LearningRate {
    LearningRate(double value) : value(value) {}
    template <std::derived_from<schedules::LearningRateSchedule> S>
    LearningRate(std::shared_ptr<S> schedule) : schedule(std::move(schedule)) {}
    double value = 0.0;                   // used when there is no schedule
    schedules::SchedulePtr schedule;
};

// Gradient clipping: at most one of clipnorm, clipvalue, global_clipnorm.
struct KERAS_API Clipping {
    std::optional<float> clipnorm = std::nullopt, clipvalue = std::nullopt, global_clipnorm = std::nullopt;
};

// One optimizer slot per variable (Adam's "momentum", Adagrad's "accumulator"), created with the
// variable's shape and device and filled with initial_value.
struct KERAS_API SlotSpec {
    std::string name;
    float initial_value = 0.0f;
};

// Keras's optimizer base: apply_gradients() / apply() update variables from their gradients.
class KERAS_API Optimizer {
public:
    virtual ~Optimizer() = default;
    virtual std::string name() const = 0;   // Keras class name, "Adam"

    // Applies one step using each variable's grad: clipping first, then iterations += 1, then the
    // update of every trainable variable with a defined grad (step = iterations). Creates slots on
    // first sight of a variable. Does nothing when no variable has a gradient.
    void apply_gradients(const std::vector<VariablePtr>& variables);
    // Keras 3's optimizer.apply(grads, trainable_variables): the gradients given (one per variable,
    // e.g. from GradientTape::gradient; undefined = none) instead of the variables' grad fields.
    void apply(const std::vector<Tensor>& grads, const std::vector<VariablePtr>& variables);
    int64_t iterations = 0;
    // The rate of the next step. With a schedule it follows the schedule (its value at `iterations`,
    // refreshed every step) and may not be set: see learning_rate_schedule.
    float learning_rate;
    Clipping clipping;
    // The schedule given as learning_rate, or null for a constant rate.
    schedules::SchedulePtr learning_rate_schedule() const { return schedule_; }
    // Throws RuntimeError (Keras's message) when the learning rate follows a schedule: for callbacks
    // and code that would assign learning_rate.
    void check_learning_rate_settable() const;
    // Sets learning_rate to the schedule's value at `iterations` (after iterations were loaded).
    void sync_learning_rate();

    // Keras's config: name (Keras's default, e.g. "adam"), learning_rate, the base optimizer's keys
    // (clipnorm / clipvalue / global_clipnorm null when unset) and the subclass's options.
    virtual nlohmann::json get_config() const;
    // Slot tensors of a variable (e.g. Adam's m and v), in Keras's order, for saving and tests;
    // empty before the variable's first update.
    std::vector<Tensor> slots(const Variable& v) const;
    // Replaces a variable's slots when a checkpoint is loaded: `values` in slot_specs() order, each
    // of the variable's shape. ValueError naming the variable and the shapes otherwise.
    void set_slots(const VariablePtr& v, const std::vector<Tensor>& values);
    // Forgets a variable's slots: its next update creates them afresh (lr_find puts an optimizer back
    // as it was before the sweep's first steps created them).
    void remove_slots(const Variable& v) { slots_.erase(&v); }
    // The slots every variable gets with the current options, in Keras's order.
    virtual std::vector<SlotSpec> slot_specs() const = 0;
    // The factor a train step multiplies the loss by before the backward pass (Keras's
    // optimizer.scale_loss): 1, or LossScaleOptimizer's dynamic scale. Gradients given to
    // apply_gradients are then that many times the loss's.
    virtual float loss_scale() const { return 1.0f; }
    // Keras's optimizer.scale_loss(loss): the loss times loss_scale(). A GradientTape loop
    // differentiates the scaled loss and gives those gradients to apply(), which unscales them.
    Tensor scale_loss(const Tensor& loss) const;

protected:
    // Throws ValueError when more than one of clipnorm, clipvalue and global_clipnorm is set.
    Optimizer(const LearningRate& learning_rate, Clipping clipping);
    // The update for one variable with its (clipped) gradient and its slots (slot_specs() order).
    virtual void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) = 0;
    // apply_gradients' first step, before clipping: false skips the step (no update, iterations
    // unchanged). LossScaleOptimizer unscales the gradients here.
    virtual bool begin_step(std::vector<Tensor>& /*grads*/) { return true; }
    // apply_gradients' last step, after the updates.
    virtual void end_step() {}

private:
    friend class LossScaleOptimizer;   // runs its inner optimizer's update()
    void clip_gradients(std::vector<Tensor>& grads) const;
    struct SlotEntry {
        std::weak_ptr<Variable> owner;
        std::vector<Tensor> tensors;
    };
    std::map<const Variable*, SlotEntry> slots_;
    schedules::SchedulePtr schedule_;
};
// How compile() and OptimizerArg hold optimizers.
using OptimizerPtr = std::shared_ptr<Optimizer>;

// SGD's keyword arguments, in Keras's order.
struct KERAS_API SGDOptions {
    LearningRate learning_rate = 0.01f;
    float momentum = 0.0f;
    bool nesterov = false;
    std::optional<float> clipnorm = std::nullopt, clipvalue = std::nullopt, global_clipnorm = std::nullopt;
};
// Stochastic gradient descent, with momentum and Nesterov momentum.
class KERAS_API SGD : public Optimizer {
public:
    explicit SGD(LearningRate learning_rate) : SGD(SGDOptions{.learning_rate = learning_rate}) {}
    // Throws ValueError unless 0 <= momentum <= 1 (Keras's check).
    explicit SGD(SGDOptions options = {});
    std::string name() const override { return "SGD"; }
    nlohmann::json get_config() const override;
    float momentum;
    bool nesterov;
    std::vector<SlotSpec> slot_specs() const override;
protected:
    void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) override;
};

// Adam's keyword arguments, in Keras's order.
struct KERAS_API AdamOptions {
    LearningRate learning_rate = 0.001f;
    float beta_1 = 0.9f;
    float beta_2 = 0.999f;
    float epsilon = 1e-7f;
    bool amsgrad = false;
    std::optional<float> clipnorm = std::nullopt, clipvalue = std::nullopt, global_clipnorm = std::nullopt;
};
// Adam (Kingma and Ba), with the AMSGrad variant.
class KERAS_API Adam : public Optimizer {
public:
    explicit Adam(LearningRate learning_rate) : Adam(AdamOptions{.learning_rate = learning_rate}) {}
    explicit Adam(AdamOptions options = {});
    std::string name() const override { return "Adam"; }
    nlohmann::json get_config() const override;
    float beta_1, beta_2, epsilon;
    bool amsgrad;
    std::vector<SlotSpec> slot_specs() const override;
protected:
    void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) override;
};

// RMSprop's keyword arguments, in Keras's order.
struct KERAS_API RMSpropOptions {
    LearningRate learning_rate = 0.001f;
    float rho = 0.9f;
    float momentum = 0.0f;
    float epsilon = 1e-7f;
    bool centered = false;
    std::optional<float> clipnorm = std::nullopt, clipvalue = std::nullopt, global_clipnorm = std::nullopt;
};
// RMSprop, with momentum and the centered variant.
class KERAS_API RMSprop : public Optimizer {
public:
    explicit RMSprop(LearningRate learning_rate) : RMSprop(RMSpropOptions{.learning_rate = learning_rate}) {}
    explicit RMSprop(RMSpropOptions options = {});
    std::string name() const override { return "RMSprop"; }
    nlohmann::json get_config() const override;
    float rho, momentum, epsilon;
    bool centered;
    std::vector<SlotSpec> slot_specs() const override;
protected:
    void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) override;
};

// Adagrad's keyword arguments, in Keras's order.
struct KERAS_API AdagradOptions {
    LearningRate learning_rate = 0.001f;
    float initial_accumulator_value = 0.1f;
    float epsilon = 1e-7f;
    std::optional<float> clipnorm = std::nullopt, clipvalue = std::nullopt, global_clipnorm = std::nullopt;
};
// Adagrad: per-parameter rates from the accumulated squared gradients.
class KERAS_API Adagrad : public Optimizer {
public:
    explicit Adagrad(LearningRate learning_rate) : Adagrad(AdagradOptions{.learning_rate = learning_rate}) {}
    explicit Adagrad(AdagradOptions options = {});
    std::string name() const override { return "Adagrad"; }
    nlohmann::json get_config() const override;
    float initial_accumulator_value, epsilon;
    std::vector<SlotSpec> slot_specs() const override;
protected:
    void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) override;
};

// LossScaleOptimizer's keyword arguments, Keras's defaults.
struct KERAS_API LossScaleOptimizerOptions {
    float initial_scale = 32768.0f;   // 2^15
    int64_t dynamic_growth_steps = 2000;
};
// Keras 3's dynamic loss scaling around another optimizer. A train step multiplies the loss by
// dynamic_scale (loss_scale()), so every gradient is that many times larger (float16 gradients that
// would underflow stay representable). apply_gradients then:
// - if any gradient holds an inf or a NaN: skips the step (no update, iterations unchanged), halves
//   dynamic_scale and sets step_counter to 0;
// - else divides the gradients by dynamic_scale and runs the inner optimizer's update (its clipping,
//   rate and formula); after dynamic_growth_steps such steps in a row, dynamic_scale doubles.
// compile() wraps the optimizer in one when the global policy is "mixed_float16" (Keras's
// auto_scale_loss). The inner optimizer gives the formula and its options; the step's state
// (iterations, learning_rate, the slots, clipping) is this object's, copied from the inner one when
// it is made: set the rate on the LossScaleOptimizer (callbacks do).
class KERAS_API LossScaleOptimizer : public Optimizer {
public:
    explicit LossScaleOptimizer(OptimizerPtr inner_optimizer, LossScaleOptimizerOptions options = {});
    std::string name() const override { return "LossScaleOptimizer"; }
    // Keras's: {name, inner_optimizer: {module, class_name, config, registered_name}, initial_scale,
    // dynamic_growth_steps}.
    nlohmann::json get_config() const override;
    std::vector<SlotSpec> slot_specs() const override { return inner_->slot_specs(); }
    float loss_scale() const override { return dynamic_scale; }
    const OptimizerPtr& inner_optimizer() const { return inner_; }
    const float initial_scale;
    const int64_t dynamic_growth_steps;
    float dynamic_scale;        // Keras's optimizer.dynamic_scale
    int64_t step_counter = 0;   // finite steps since dynamic_scale last changed
protected:
    void update(Variable& variable, const Tensor& grad, std::vector<Tensor>& slots) override;
    bool begin_step(std::vector<Tensor>& grads) override;
    void end_step() override;
private:
    OptimizerPtr inner_;
};

// Keras strings with default arguments: "sgd", "adam", "rmsprop", "adagrad" (any case).
KERAS_API OptimizerPtr get(const std::string& name);

}  // namespace keras::optimizers
