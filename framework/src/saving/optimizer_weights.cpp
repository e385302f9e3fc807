#include "saving/optimizer_weights.hpp"

#include <algorithm>

#include "keras/errors.hpp"
#include "saving/model_file.hpp"
#include "saving/weight_paths.hpp"

namespace keras::saving {

namespace {

struct TrainableEntry {
    VariablePtr variable;
    std::string key;   // Keras 3's variable path with '/' -> '_' ("sequential_lstm_lstm_cell_kernel")
};

std::vector<TrainableEntry> trainable_entries(const Model& model) {
    std::vector<TrainableEntry> out;
    for (const auto& layer : model.layers())
        for (const auto& w : layer->trainable_weights()) {
            std::string key = keras3_weight_path(model, *layer, *w);
            std::replace(key.begin(), key.end(), '/', '_');
            out.push_back({w, key});
        }
    return out;
}

// Keras 3 creates Adam's momentum and velocity together (interleaved per variable), every other slot
// on its own (all variables, then the next slot).
std::vector<std::vector<size_t>> slot_groups(const optimizers::Optimizer& optimizer) {
    const size_t n = optimizer.slot_specs().size();
    std::vector<std::vector<size_t>> groups;
    size_t first = 0;
    if (optimizer.name() == "Adam" && n >= 2) {
        groups.push_back({0, 1});
        first = 2;
    }
    for (size_t i = first; i < n; ++i) groups.push_back({i});
    return groups;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::string kLossScalePrefix = "loss_scale_optimizer/";

// A LossScaleOptimizer's own variables, as Keras 3 writes them before its inner optimizer's: its
// unused iteration and learning_rate (0), step_counter, dynamic_scale.
void write_loss_scale_state(const H5Group& group, const optimizers::LossScaleOptimizer& lso,
                            std::vector<std::string>& names) {
    const float unused_rate = 0.0f;
    names.push_back(kLossScalePrefix + "iteration");
    group.write_scalar_int64(names.back(), 0);
    names.push_back(kLossScalePrefix + "learning_rate");
    group.write_dataset(names.back(), {}, &unused_rate);
    names.push_back(kLossScalePrefix + "step_counter");
    group.write_scalar_int64(names.back(), lso.step_counter);
    names.push_back(kLossScalePrefix + "dynamic_scale");
    group.write_dataset(names.back(), {}, &lso.dynamic_scale);
}

}  // namespace

void write_optimizer_weights(const H5Group& root, const Model& model) {
    const optimizers::Optimizer& optimizer = model.optimizer();
    const auto* lso = dynamic_cast<const optimizers::LossScaleOptimizer*>(&optimizer);
    const optimizers::Optimizer& formula = lso ? *lso->inner_optimizer() : optimizer;
    const std::string prefix = formula.get_config()["name"].get<std::string>() + "/";
    // Keras nests the slots of a wrapped optimizer under the wrapper's name.
    const std::string slot_prefix = (lso ? kLossScalePrefix : "") + prefix;
    H5Group group = root.create_group("optimizer_weights");
    std::vector<std::string> names;
    if (lso) write_loss_scale_state(group, *lso, names);
    names.push_back(prefix + "iteration");
    group.write_scalar_int64(names.back(), optimizer.iterations);
    // Keras keeps no learning-rate variable when the rate follows a schedule.
    if (!optimizer.learning_rate_schedule()) {
        names.push_back(prefix + "learning_rate");
        group.write_dataset(names.back(), {}, &optimizer.learning_rate);
    }

    const auto entries = trainable_entries(model);
    const auto specs = optimizer.slot_specs();
    bool any_slots = false;
    for (const auto& e : entries) any_slots = any_slots || !optimizer.slots(*e.variable).empty();
    // Keras writes only iteration and learning_rate for an optimizer that has not been built yet.
    if (optimizer.iterations > 0 || any_slots) {
        for (const auto& group_slots : slot_groups(formula))
            for (const auto& e : entries)
                for (size_t s : group_slots) {
                    const auto slots = optimizer.slots(*e.variable);
                    // A variable that has not been updated yet holds the slot's initial value, as in Keras.
                    const Tensor value = slots.empty()
                        ? Tensor::full(e.variable->value.shape(), specs[s].initial_value)
                        : slots[s].to(Device::cpu());
                    names.push_back(slot_prefix + e.key + "_" + specs[s].name);
                    group.write_dataset(names.back(), value.shape(), value.data<float>());
                }
    }
    group.write_string_array_attr("weight_names", names);
}

namespace {

// tf.keras 2's legacy optimizers (TF 2.0 to 2.10, tf_keras.optimizers.legacy) name a slot last:
// "Adam/dense/kernel/m:0", "RMSprop/dense/kernel/rms:0", "SGD/dense/kernel/momentum:0". Their slot
// names, as the Keras 3 slots they are.
std::optional<size_t> legacy_slot_of(const std::string& name, const std::vector<optimizers::SlotSpec>& specs) {
    static const std::vector<std::pair<std::string, std::string>> legacy = {
        {"m", "momentum"}, {"v", "velocity"}, {"vhat", "velocity_hat"}, {"rms", "velocity"},
        {"momentum", "momentum"}, {"mg", "average_gradient"}, {"accumulator", "accumulator"}};
    const size_t slash = name.rfind('/');
    if (slash == std::string::npos) return std::nullopt;
    std::string last = name.substr(slash + 1);
    if (ends_with(last, ":0")) last.resize(last.size() - 2);
    for (const auto& [old_name, slot] : legacy) {
        if (last != old_name) continue;
        for (size_t s = 0; s < specs.size(); ++s)
            if (specs[s].name == slot) return s;
    }
    return std::nullopt;
}

// The slot a dataset name holds: Keras 3 "<opt>/<var>_<slot>", Keras 2.x "<Opt>/<m|v|vhat|slot>/<var>:0".
std::optional<size_t> slot_of(const std::string& name, const std::vector<optimizers::SlotSpec>& specs) {
    std::optional<size_t> best;
    size_t best_len = 0;
    for (size_t s = 0; s < specs.size(); ++s) {
        std::string keras2 = specs[s].name == "momentum" ? "m" : specs[s].name == "velocity" ? "v"
                           : specs[s].name == "velocity_hat" ? "vhat" : specs[s].name;
        const bool k3 = ends_with(name, "_" + specs[s].name);
        const bool k2 = name.find("/" + keras2 + "/") != std::string::npos ||
                        name.find("/" + specs[s].name + "/") != std::string::npos;
        // The longest matching slot name wins ("velocity_hat" over "velocity").
        if ((k3 || k2) && specs[s].name.size() >= best_len) {
            best = s;
            best_len = specs[s].name.size();
        }
    }
    if (best) return best;
    return legacy_slot_of(name, specs);
}

bool is_iteration(const std::string& name) {
    // tf.keras 2's legacy optimizers write "Adam/iter:0"
    for (const char* s : {"iteration", "iteration:0", "iterations", "iterations:0", "iter", "iter:0"})
        if (name == s || ends_with(name, std::string("/") + s)) return true;
    return false;
}

// Keras 2.2 names its slots by position only ("training/Adam/Variable:0", "training/Adam/Variable_1:0",
// ...): its optimizer.weights are [iterations] + ms + vs + vhats for Adam (vhats of shape (1,) without
// amsgrad), [iterations] + moments for SGD, the accumulators for RMSprop (keras/optimizers.py, 2.2.4).
bool is_keras22_slot(const std::string& name) {
    return name.find("/Variable:0") != std::string::npos || name.find("/Variable_") != std::string::npos;
}

// Splits Keras 2.2's slots into groups of one per trainable weight, in slot_specs() order; a group past
// the optimizer's slots is dropped only when it is Adam's placeholder vhats (every one of shape (1,)).
void assign_keras22_slots(const H5Group& group, const std::vector<std::string>& names,
                          const std::vector<optimizers::SlotSpec>& specs, size_t trainable,
                          std::vector<std::vector<std::string>>& per_slot) {
    if (trainable == 0 || names.size() % trainable != 0)
        value_error("{} holds {} Keras 2.2 optimizer slots ('{}', ...), not a multiple of the model's {} trainable "
                    "weights.", group.where(), names.size(), names[0], trainable);
    for (size_t g = 0; g * trainable < names.size(); ++g) {
        const std::vector<std::string> slots(names.begin() + g * trainable, names.begin() + (g + 1) * trainable);
        if (g < specs.size()) {
            per_slot[g].insert(per_slot[g].end(), slots.begin(), slots.end());
            continue;
        }
        for (const auto& name : slots)
            group.read_dataset(name, [&](const Shape& declared) {
                if (declared != Shape{1})
                    value_error("Optimizer weight {} is one slot more than the optimizer's {} (its shape is {}).",
                                group.where(name), specs.size(), shape_str(declared));
            });
    }
}

// A dataset holding one number (`what`, for the error).
float read_scalar(const H5Group& group, const std::string& name, const char* what) {
    return group.read_dataset(name, [&](const Shape& declared) {
        if (num_elements(declared) != 1)
            value_error("Optimizer weight {} should hold one number ({}), its shape is {}.", group.where(name), what,
                        shape_str(declared));
    }).values[0];
}

bool is_learning_rate(const std::string& name) {
    return name == "learning_rate" || ends_with(name, "/learning_rate") || ends_with(name, "/learning_rate:0");
}

}  // namespace

OptimizerState read_optimizer_weights(const H5Group& root, const optimizers::Optimizer& optimizer,
                                      const std::vector<VariablePtr>& trainable) {
    OptimizerState state;
    if (!root.has_group("optimizer_weights")) return state;
    const H5Group group = root.group("optimizer_weights");
    const auto names = group.string_array_attr("weight_names");
    const auto specs = optimizer.slot_specs();
    std::vector<std::vector<std::string>> per_slot(specs.size());
    std::vector<std::string> keras22;
    for (const auto& name : names) {
        // A LossScaleOptimizer's own variables; its iteration and learning_rate are unused (0).
        if (name == kLossScalePrefix + "step_counter") {
            state.step_counter = group.read_scalar_int64(name);
            continue;
        }
        if (name == kLossScalePrefix + "dynamic_scale") {
            state.dynamic_scale = read_scalar(group, name, "the loss scale");
            continue;
        }
        if (name == kLossScalePrefix + "iteration" || name == kLossScalePrefix + "learning_rate") continue;
        if (is_iteration(name)) {
            state.iterations = group.read_scalar_int64(name);
            continue;
        }
        if (is_learning_rate(name)) {
            state.learning_rate = read_scalar(group, name, "the learning rate");
            continue;
        }
        const auto slot = slot_of(name, specs);
        if (!slot && is_keras22_slot(name)) {
            keras22.push_back(name);
            continue;
        }
        if (!slot)
            value_error("Optimizer weight '{}' in {} does not belong to {} with this configuration (its slots: {}).",
                        name, group.where(), optimizer.name(), specs.size());
        per_slot[*slot].push_back(name);
    }
    if (!keras22.empty()) assign_keras22_slots(group, keras22, specs, trainable.size(), per_slot);
    state.present = true;
    size_t total = 0;
    for (const auto& list : per_slot) total += list.size();
    if (total == 0) return state;   // saved before the first update: no slots yet
    state.slots.assign(trainable.size(), {});
    for (size_t s = 0; s < specs.size(); ++s) {
        if (per_slot[s].size() != trainable.size())
            value_error("{} holds {} '{}' optimizer weights, but the model has {} trainable weights.", group.where(),
                        per_slot[s].size(), specs[s].name, trainable.size());
        for (size_t v = 0; v < trainable.size(); ++v) {
            const H5Array array = group.read_dataset(per_slot[s][v], [&](const Shape& declared) {
                if (declared != trainable[v]->value.shape())
                    value_error("Optimizer weight {} has shape {}, but the model's weight '{}' it belongs to has shape "
                                "{}.", group.where(per_slot[s][v]), shape_str(declared), trainable[v]->name,
                                shape_str(trainable[v]->value.shape()));
            });
            state.slots[v].push_back(Tensor(array.values, array.shape));
        }
    }
    return state;
}

void apply_optimizer_state(const OptimizerState& state, optimizers::Optimizer& optimizer,
                           const std::vector<VariablePtr>& trainable) {
    if (!state.present) return;
    optimizer.iterations = state.iterations;
    // A scheduled rate is the schedule's, whatever the file says.
    if (state.learning_rate) optimizer.learning_rate = *state.learning_rate;
    optimizer.sync_learning_rate();
    // Loss-scale state applies to a LossScaleOptimizer; another optimizer has no use for it.
    if (auto* lso = dynamic_cast<optimizers::LossScaleOptimizer*>(&optimizer)) {
        if (state.step_counter) lso->step_counter = *state.step_counter;
        if (state.dynamic_scale) lso->dynamic_scale = *state.dynamic_scale;
    }
    for (size_t v = 0; v < state.slots.size() && v < trainable.size(); ++v)
        if (!state.slots[v].empty()) optimizer.set_slots(trainable[v], state.slots[v]);
}

}  // namespace keras::saving
