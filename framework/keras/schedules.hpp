// Keras 3's learning-rate schedules (keras.optimizers.schedules): a function of the optimizer's step
// count, given to an optimizer as its learning_rate. Argument names, defaults, checks and formulas
// follow keras/src/optimizers/schedules/learning_rate_schedule.py; values are computed in double.
// The options are declared in Keras's argument order (designated initializers must follow it).
#pragma once

#include "keras/export.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace keras::optimizers::schedules {

// Keras's LearningRateSchedule: the learning rate as a function of the step.
class KERAS_API LearningRateSchedule {
public:
    virtual ~LearningRateSchedule() = default;
    virtual std::string class_name() const = 0;   // Keras's class name, "PolynomialDecay"
    // The learning rate at `step` (the optimizer's iterations before the update).
    virtual double operator()(double step) const = 0;
    // Keras's get_config(): the constructor arguments by name.
    virtual nlohmann::json get_config() const = 0;
};
// How optimizers hold a schedule (LearningRate takes any shared_ptr to one).
using SchedulePtr = std::shared_ptr<const LearningRateSchedule>;

// initial_learning_rate * decay_rate ^ (step / decay_steps), the exponent floored when staircase.
struct KERAS_API ExponentialDecayOptions {
    double initial_learning_rate = 0.0;
    double decay_steps = 0.0;
    double decay_rate = 0.0;
    bool staircase = false;
    std::string name = "ExponentialDecay";
};
// Keras's ExponentialDecay (formula at ExponentialDecayOptions).
class KERAS_API ExponentialDecay : public LearningRateSchedule {
public:
    // ValueError unless decay_steps > 0.
    explicit ExponentialDecay(ExponentialDecayOptions options);
    std::string class_name() const override { return "ExponentialDecay"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const ExponentialDecayOptions options;
};

// initial_learning_rate / (1 + decay_rate * step / decay_steps), the ratio floored when staircase.
struct KERAS_API InverseTimeDecayOptions {
    double initial_learning_rate = 0.0;
    double decay_steps = 0.0;
    double decay_rate = 0.0;
    bool staircase = false;
    std::string name = "InverseTimeDecay";
};
// Keras's InverseTimeDecay (formula at InverseTimeDecayOptions).
class KERAS_API InverseTimeDecay : public LearningRateSchedule {
public:
    // ValueError unless decay_steps > 0.
    explicit InverseTimeDecay(InverseTimeDecayOptions options);
    std::string class_name() const override { return "InverseTimeDecay"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const InverseTimeDecayOptions options;
};

// (initial - end) * (1 - step / decay_steps) ^ power + end, step held at decay_steps; with cycle,
// decay_steps grows to the next multiple of itself above step instead.
struct KERAS_API PolynomialDecayOptions {
    double initial_learning_rate = 0.0;
    double decay_steps = 0.0;
    double end_learning_rate = 0.0001;
    double power = 1.0;
    bool cycle = false;
    std::string name = "PolynomialDecay";
};
// Keras's PolynomialDecay (formula at PolynomialDecayOptions).
class KERAS_API PolynomialDecay : public LearningRateSchedule {
public:
    // ValueError unless decay_steps > 0.
    explicit PolynomialDecay(PolynomialDecayOptions options);
    std::string class_name() const override { return "PolynomialDecay"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const PolynomialDecayOptions options;
};

// values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i],
// values.back() after the last boundary.
struct KERAS_API PiecewiseConstantDecayOptions {
    std::vector<double> boundaries;
    std::vector<double> values;
    std::string name = "PiecewiseConstant";
};
// Keras's PiecewiseConstantDecay (rule at PiecewiseConstantDecayOptions).
class KERAS_API PiecewiseConstantDecay : public LearningRateSchedule {
public:
    // ValueError unless there is one value more than boundaries.
    explicit PiecewiseConstantDecay(PiecewiseConstantDecayOptions options);
    std::string class_name() const override { return "PiecewiseConstantDecay"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const PiecewiseConstantDecayOptions options;
};

// Cosine from initial_learning_rate down to alpha * initial_learning_rate over decay_steps. With a
// warmup_target, first a linear warm-up from initial_learning_rate to warmup_target over
// warmup_steps, then the cosine decay from warmup_target.
struct KERAS_API CosineDecayOptions {
    double initial_learning_rate = 0.0;
    double decay_steps = 0.0;
    double alpha = 0.0;
    std::string name = "CosineDecay";
    std::optional<double> warmup_target = std::nullopt;
    double warmup_steps = 0.0;
};
// Keras's CosineDecay with optional linear warm-up (see CosineDecayOptions).
class KERAS_API CosineDecay : public LearningRateSchedule {
public:
    // ValueError unless decay_steps > 0.
    explicit CosineDecay(CosineDecayOptions options);
    std::string class_name() const override { return "CosineDecay"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const CosineDecayOptions options;
};

// SGDR: cosine decays restarted after first_decay_steps, each period t_mul times longer than the one
// before and starting from m_mul times its rate.
struct KERAS_API CosineDecayRestartsOptions {
    double initial_learning_rate = 0.0;
    double first_decay_steps = 0.0;
    double t_mul = 2.0;
    double m_mul = 1.0;
    double alpha = 0.0;
    std::string name = "SGDRDecay";
};
// Keras's CosineDecayRestarts, SGDR (see CosineDecayRestartsOptions).
class KERAS_API CosineDecayRestarts : public LearningRateSchedule {
public:
    // ValueError unless first_decay_steps > 0.
    explicit CosineDecayRestarts(CosineDecayRestartsOptions options);
    std::string class_name() const override { return "CosineDecayRestarts"; }
    double operator()(double step) const override;
    nlohmann::json get_config() const override;
    const CosineDecayRestartsOptions options;
};

// Keras 3's serialized form: {"module": "keras.optimizers.schedules", "class_name", "config",
// "registered_name": null}.
KERAS_API nlohmann::json serialize(const LearningRateSchedule& schedule);
// Reads Keras 3's form and tf-keras / Keras 2's {"class_name", "config"}. ValueError naming the class
// when it is not one of the six above, or naming the field when a config field is missing or of the
// wrong type.
KERAS_API SchedulePtr deserialize(const nlohmann::json& config);

}  // namespace keras::optimizers::schedules
