#include "saving/keras3_weights.hpp"

#include <algorithm>
#include <cctype>
#include <iostream>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "saving/weight_paths.hpp"

namespace keras::saving {

namespace {

void write_tensor(const H5Group& group, const std::string& path, const Tensor& t) {
    const Tensor value = t.to(Device::cpu()).astype(DType::float32);
    group.write_dataset(path, value.shape(), static_cast<const float*>(value.raw()));
}

// The group at a '/'-separated path, created with any missing parents.
H5Group ensure_group(const H5Group& root, const std::string& path) {
    const size_t slash = path.find('/');
    const std::string head = path.substr(0, slash);
    H5Group child = root.has_group(head) ? root.group(head) : root.create_group(head);
    return slash == std::string::npos ? std::move(child) : ensure_group(child, path.substr(slash + 1));
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

const optimizers::LossScaleOptimizer* loss_scale_of(const optimizers::Optimizer& opt) {
    return dynamic_cast<const optimizers::LossScaleOptimizer*>(&opt);
}
// The optimizer whose formula, names and slot order the state follows: a LossScaleOptimizer's inner one.
const optimizers::Optimizer& formula_of(const optimizers::Optimizer& opt) {
    const auto* lso = loss_scale_of(opt);
    return lso ? *lso->inner_optimizer() : opt;
}
// A LossScaleOptimizer's variables before its inner optimizer's: its own iteration and learning rate
// (unused, 0), step_counter, dynamic_scale.
constexpr size_t kLossScaleVars = 4;

// What optimizer variable i is, when the first `own` are a LossScaleOptimizer's.
const char* scalar_name(size_t i, size_t own) {
    static const char* const loss_scale[kLossScaleVars] = {"unused iterations", "unused learning rate", "step_counter",
                                                           "dynamic_scale"};
    if (i < own) return loss_scale[i];
    return i == own ? "iterations" : "learning rate";
}

// The order of the slot variables after iterations (and learning_rate), as (variable, slot) pairs.
// Keras 3's Adam creates momentum and velocity together, variable by variable, then velocity_hat
// for every variable; the other optimizers create one slot for every variable, then the next slot.
std::vector<std::pair<size_t, size_t>> slot_order(const optimizers::Optimizer& opt, size_t variables) {
    const size_t slots = opt.slot_specs().size();
    const size_t interleaved = formula_of(opt).name() == "Adam" ? std::min<size_t>(slots, 2) : 1;
    std::vector<std::pair<size_t, size_t>> order;
    for (size_t v = 0; v < variables; ++v)
        for (size_t s = 0; s < interleaved; ++s) order.emplace_back(v, s);
    for (size_t s = interleaved; s < slots; ++s)
        for (size_t v = 0; v < variables; ++v) order.emplace_back(v, s);
    return order;
}

// Keras stores the iteration count and the learning rate as scalar variables; we write them as
// float32 scalars (exact for counts below 2^24) and read either type.
// A LossScaleOptimizer's file holds its variables in optimizer/vars (its own, then the inner
// optimizer's) and the inner optimizer's again in optimizer/inner_optimizer/vars, as Keras 3 writes.
void write_optimizer(const H5File& file, const Model& model) {
    optimizers::Optimizer& opt = model.optimizer();
    const H5Group group = file.create_group("optimizer");
    std::vector<Tensor> values;
    const auto scalar = [](float v) { return Tensor(std::vector<float>{v}, Shape{}); };
    if (const auto* lso = loss_scale_of(opt))
        values = {scalar(0.0f), scalar(0.0f), scalar(static_cast<float>(lso->step_counter)), scalar(lso->dynamic_scale)};
    const size_t inner_first = values.size();
    values.push_back(scalar(static_cast<float>(opt.iterations)));
    // Keras keeps no learning-rate variable when the rate follows a schedule.
    if (!opt.learning_rate_schedule()) values.push_back(scalar(opt.learning_rate));
    const auto trainable = model.trainable_weights();
    std::vector<std::vector<Tensor>> slots;
    for (const auto& v : trainable) {
        slots.push_back(opt.slots(*v));
        // A variable not yet updated has its slots' initial values (Keras builds them up front).
        if (slots.back().empty())
            for (const auto& spec : opt.slot_specs())
                slots.back().push_back(Tensor::full(v->value.shape(), spec.initial_value));
    }
    for (const auto& [v, s] : slot_order(opt, trainable.size())) values.push_back(slots[v][s]);
    const auto write_vars = [](const H5Group& vars, const std::string& name, const std::vector<Tensor>& list, size_t first) {
        vars.write_string_attr("name", name);
        for (size_t i = first; i < list.size(); ++i) write_tensor(vars, std::to_string(i - first), list[i]);
    };
    write_vars(group.create_group("vars"), opt.get_config().value("name", lower(opt.name())), values, 0);
    if (inner_first > 0) {
        const optimizers::Optimizer& inner = formula_of(opt);
        write_vars(group.create_group("inner_optimizer").create_group("vars"),
                   inner.get_config().value("name", lower(inner.name())), values, inner_first);
    }
}

size_t count_vars(const H5Group& vars) {
    size_t count = 0;
    while (vars.has_dataset(std::to_string(count))) ++count;
    return count;
}

// The tensors of one vars group, "0", "1", ... (exactly `expected` of them). check(i, shape) sees each
// declared shape before its data is read, and throws when it is not the expected one.
using VarCheck = std::function<void(size_t i, const Shape& declared)>;
std::vector<Tensor> read_vars(const H5Group& vars, size_t expected, const std::string& owner, const VarCheck& check) {
    const size_t count = count_vars(vars);
    if (count != expected)
        value_error("Cannot load weights from {}: {} expected {} variables, but received {} variables during loading",
                    vars.where(), owner, expected, count);
    std::vector<Tensor> out;
    for (size_t i = 0; i < count; ++i) {
        H5Array a = vars.read_dataset(std::to_string(i), [&](const Shape& declared) { check(i, declared); });
        out.emplace_back(a.values, Shape(a.shape.begin(), a.shape.end()));
    }
    return out;
}

void check_shape(const Shape& declared, const Variable& target, const std::string& owner, const H5Group& vars,
                 size_t i) {
    if (declared != target.value.shape())
        value_error("Cannot load weights from {}: {} weight {} ('{}') expects shape {}, but the file has shape {}",
                    vars.where(std::to_string(i)), owner, i, target.name, shape_str(target.value.shape()),
                    shape_str(declared));
}

}  // namespace

void write_keras3_weights(const H5File& file, const Model& model) {
    file.create_group("layers");
    for (const auto& vars : keras3_vars(model)) {
        const H5Group group = ensure_group(file, vars.path);
        group.write_string_attr("name", vars.name);
        for (size_t i = 0; i < vars.variables.size(); ++i) write_tensor(group, std::to_string(i), vars.variables[i]->value);
    }
    file.create_group("vars").write_string_attr("name", model.name());
    if (model.compiled()) write_optimizer(file, model);
}

void read_keras3_weights(const H5File& file, Model& model) {
    if (!model.built())
        value_error("Cannot load weights into model \"{}\": it is not built yet. Build it first (add an Input, or "
                    "call build())", model.name());
    std::vector<std::pair<VariablePtr, Tensor>> assignments;
    for (const auto& expected : keras3_vars(model)) {
        const auto& weights = expected.variables;
        if (weights.empty()) continue;
        const std::string owner = fmt::format("Layer '{}'", expected.layer);
        if (!file.has_group(expected.path))
            value_error("Cannot load weights from '{}': {} has {} weights, but the file has no group '{}'", file.file(),
                        owner, weights.size(), expected.path);
        const H5Group vars = file.group(expected.path);
        auto values = read_vars(vars, weights.size(), owner,
                                [&](size_t i, const Shape& declared) { check_shape(declared, *weights[i], owner, vars, i); });
        for (size_t i = 0; i < values.size(); ++i) assignments.emplace_back(weights[i], std::move(values[i]));
    }
    // The optimizer's state, when both the file and the model have one.
    std::vector<std::pair<VariablePtr, std::vector<Tensor>>> slots;
    std::vector<Tensor> scalars;
    if (model.compiled() && file.has_group("optimizer") && file.group("optimizer").has_group("vars")) {
        optimizers::Optimizer& opt = model.optimizer();
        const H5Group vars = file.group("optimizer").group("vars");
        const auto trainable = model.trainable_weights();
        const size_t per_variable = opt.slot_specs().size();
        // A LossScaleOptimizer's own variables, iterations, then the learning rate unless it follows a
        // schedule, then the slots.
        const size_t own = loss_scale_of(opt) ? kLossScaleVars : 0;
        const size_t scalar_count = own + (opt.learning_rate_schedule() ? 1 : 2);
        const size_t expected = scalar_count + trainable.size() * per_variable, saved = count_vars(vars);
        if (saved != expected) {
            // A different optimizer (or options) than the saved one: like Keras 3, keep the weights
            // and skip the optimizer's state with a warning.
            std::cerr << fmt::format("WARNING: Skipping variable loading for optimizer '{}', because it has {} "
                                     "variables whereas the saved optimizer has {} variables ({}).\n",
                                     opt.name(), expected, saved, file.file());
            for (auto& [weight, value] : assignments) weight->value.copy_from(value);
            return;
        }
        const std::string owner = "Optimizer '" + opt.name() + "'";
        const auto order = slot_order(opt, trainable.size());
        auto values = read_vars(vars, expected, owner, [&](size_t i, const Shape& declared) {
            if (i >= scalar_count)
                return check_shape(declared, *trainable[order[i - scalar_count].first], owner + " slot of", vars, i);
            if (num_elements(declared) != 1)
                value_error("Cannot load weights from {}: the optimizer's {} must be a scalar, got shape {}",
                            vars.where(std::to_string(i)), scalar_name(i, own), shape_str(declared));
        });
        scalars.assign(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(scalar_count));
        for (const auto& v : trainable) slots.emplace_back(v, std::vector<Tensor>(per_variable));
        for (size_t index = scalar_count; index < values.size(); ++index) {
            const auto [v, s] = order[index - scalar_count];
            slots[v].second[s] = values[index];
        }
    }
    for (auto& [weight, value] : assignments) weight->value.copy_from(value);
    if (!scalars.empty()) {
        optimizers::Optimizer& opt = model.optimizer();
        auto* lso = dynamic_cast<optimizers::LossScaleOptimizer*>(&opt);
        const size_t own = lso ? kLossScaleVars : 0;
        if (lso) {
            lso->step_counter = static_cast<int64_t>(scalars[2].item(0));
            lso->dynamic_scale = static_cast<float>(scalars[3].item(0));
        }
        opt.iterations = static_cast<int64_t>(scalars[own].item(0));
        if (scalars.size() > own + 1) opt.learning_rate = static_cast<float>(scalars[own + 1].item(0));
        opt.sync_learning_rate();
        for (auto& [v, values] : slots) opt.set_slots(v, values);
    }
}

}  // namespace keras::saving
