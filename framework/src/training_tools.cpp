// fastai's training tools on a Model: lr_find (Learner.lr_find with LRFinder and its suggestion
// rules), fit_one_cycle and fine_tune (fastai/callback/schedule.py), computed in double.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>

#include "keras/errors.hpp"
#include "keras/model.hpp"
#include "keras/random.hpp"

#include "data_adapter.hpp"

namespace keras {

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

// fastai's valley: the longest decreasing run (a longest decreasing subsequence, found the way
// fastai's loop finds it), and the point 1/3 + 1/6 of the way along it. fastai's start is one before
// the run (max_end - length), and a negative index counts from the end as in Python: kept as is.
size_t valley_index(const std::vector<double>& losses) {
    const auto n = static_cast<int64_t>(losses.size());
    std::vector<int64_t> lds(losses.size(), 1);
    int64_t max_start = 0, max_end = 0;
    for (int64_t i = 1; i < n; ++i)
        for (int64_t j = 0; j < i; ++j) {
            if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    const double sections = static_cast<double>(max_end - max_start) / 3.0;
    const int64_t idx = max_start + static_cast<int64_t>(sections) + static_cast<int64_t>(sections / 2.0);
    return static_cast<size_t>(idx < 0 ? idx + n : idx);
}

// fastai's steep: where (loss[i+1] - loss[i]) / (log lr[i+1] - log lr[i]) is least (the first such i).
size_t steepest_index(const std::vector<double>& lrs, const std::vector<double>& losses) {
    size_t best = 0;
    double best_grad = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i + 1 < losses.size(); ++i) {
        const double grad = (losses[i + 1] - losses[i]) / (std::log(lrs[i + 1]) - std::log(lrs[i]));
        if (grad < best_grad) {
            best_grad = grad;
            best = i;
        }
    }
    return best;
}

// The optimizer's state lr_find changes: its step count, rate, each weight's slots (copies) and a
// LossScaleOptimizer's scale (a diverging sweep halves it at every step).
struct OptimizerSnapshot {
    int64_t iterations;
    float learning_rate;
    std::vector<std::pair<VariablePtr, std::vector<Tensor>>> slots;
    float dynamic_scale = 1.0f;
    int64_t step_counter = 0;
};

OptimizerSnapshot snapshot(const optimizers::Optimizer& optimizer, const std::vector<VariablePtr>& weights) {
    OptimizerSnapshot s{optimizer.iterations, optimizer.learning_rate, {}};
    if (const auto* lso = dynamic_cast<const optimizers::LossScaleOptimizer*>(&optimizer)) {
        s.dynamic_scale = lso->dynamic_scale;
        s.step_counter = lso->step_counter;
    }
    for (const VariablePtr& v : weights) {
        std::vector<Tensor> copies;
        for (const Tensor& slot : optimizer.slots(*v)) copies.push_back(slot.clone());
        s.slots.emplace_back(v, std::move(copies));
    }
    return s;
}

void restore(optimizers::Optimizer& optimizer, const OptimizerSnapshot& s) {
    optimizer.iterations = s.iterations;
    optimizer.learning_rate = s.learning_rate;
    if (auto* lso = dynamic_cast<optimizers::LossScaleOptimizer*>(&optimizer)) {
        lso->dynamic_scale = s.dynamic_scale;
        lso->step_counter = s.step_counter;
    }
    for (const auto& [v, slots] : s.slots) {
        if (slots.empty()) optimizer.remove_slots(*v);   // slots the sweep created
        else optimizer.set_slots(v, slots);
    }
    optimizer.sync_learning_rate();
}

void check_lr_find_options(const LRFindOptions& o) {
    if (!(o.start_lr > 0.0) || !(o.end_lr > 0.0) || !std::isfinite(o.start_lr) || !std::isfinite(o.end_lr))
        value_error("lr_find: start_lr and end_lr must be positive and finite. Received: start_lr={}, end_lr={}",
                    o.start_lr, o.end_lr);
    if (o.num_it < 1) value_error("lr_find: num_it must be >= 1. Received: num_it={}", o.num_it);
    data_adapter::check_batch_size(o.batch_size);
}

}  // namespace

void suggest_learning_rates(LRFinderResult& result, int num_it) {
    if (result.lrs.size() != result.losses.size())
        value_error("suggest_learning_rates: {} learning rates for {} losses", result.lrs.size(), result.losses.size());
    // fastai's lrs[num_it//10:-5], cut at the first NaN.
    const size_t begin = static_cast<size_t>(std::max(num_it, 0) / 10);
    size_t end = result.losses.size() >= 5 ? result.losses.size() - 5 : 0;
    for (size_t i = begin; i < end; ++i)
        if (std::isnan(result.losses[i])) end = i;
    if (end <= begin) {
        result.valley = result.steepest = result.minimum = nan_value;
        return;
    }
    const std::vector<double> lrs(result.lrs.begin() + static_cast<std::ptrdiff_t>(begin),
                                  result.lrs.begin() + static_cast<std::ptrdiff_t>(end));
    const std::vector<double> losses(result.losses.begin() + static_cast<std::ptrdiff_t>(begin),
                                     result.losses.begin() + static_cast<std::ptrdiff_t>(end));
    result.valley = lrs[valley_index(losses)];
    result.steepest = losses.size() >= 2 ? lrs[steepest_index(lrs, losses)] : nan_value;
    result.minimum = lrs[static_cast<size_t>(std::min_element(losses.begin(), losses.end()) - losses.begin())] / 10.0;
}

LRFinderResult Model::lr_find(const Tensor& x, const Tensor& y, const LRFindOptions& options) {
    check_lr_find_options(options);
    if (fitting_->exchange(true))
        runtime_error("Model \"{}\": lr_find() called while fit() or lr_find() runs for this model", name());
    struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = false; }
    } done{*fitting_};
    prepare_data({x}, {y}, "lr_find");
    optimizers::Optimizer& opt = optimizer();
    opt.check_learning_rate_settable();
    const std::vector<VariablePtr> all = weights();
    const std::vector<Tensor> saved_weights = get_weights();
    const OptimizerSnapshot saved_optimizer = snapshot(opt, all);

    const int num_it = std::max(options.num_it, 6);   // fastai's LRFinder minimum
    data_adapter::EpochIterator batches({x}, {y}, options.batch_size, options.shuffle);
    constexpr double beta = 0.98;   // fastai's AvgSmoothLoss
    double average = 0.0, best = std::numeric_limits<double>::infinity();
    LRFinderResult result;
    for (int i = 0; i < num_it; ++i) {
        const int64_t step = i % batches.num_batches();
        if (step == 0) {
            random::seed_for_epoch(i / static_cast<int>(batches.num_batches()));
            batches.start_epoch();
        }
        const double lr = options.start_lr * std::pow(options.end_lr / options.start_lr, static_cast<double>(i) / num_it);
        opt.learning_rate = static_cast<float>(lr);
        reset_metrics();
        const double loss = train_step(batches.batch(step)).at("loss");
        average = beta * average + (1.0 - beta) * loss;
        const double smooth = average / (1.0 - std::pow(beta, i + 1));
        result.lrs.push_back(lr);
        result.losses.push_back(smooth);
        best = std::min(best, smooth);
        // fastai stops past 4x the best; a NaN or infinite loss is past any bound too.
        if (options.stop_div && (smooth > 4.0 * best || !std::isfinite(smooth))) break;
    }

    set_weights(saved_weights);
    restore(opt, saved_optimizer);
    for (const VariablePtr& v : all) v->grad = Tensor();
    reset_metrics();
    for (const LayerPtr& layer : layers())
        if (layer->stateful()) layer->reset_states();
    suggest_learning_rates(result, options.num_it);
    return result;
}

callbacks::History Model::fit_one_cycle(const Tensor& x, const Tensor& y, int epochs, double lr_max,
                                        const FitOptions& fit, const callbacks::OneCycleOptions& cycle) {
    if (fit.epochs != FitOptions{}.epochs && fit.epochs != epochs)
        value_error("fit_one_cycle: give the number of epochs as its argument ({}), not in FitOptions (epochs={})",
                    epochs, fit.epochs);
    FitOptions options = fit;
    options.epochs = epochs;
    options.callbacks.insert(options.callbacks.begin(), std::make_shared<callbacks::OneCycleScheduler>(lr_max, cycle));
    return this->fit(x, y, options);
}

namespace {

// The index in `layers` of the head's first layer.
size_t head_start(const std::vector<LayerPtr>& layers, const FineTuneOptions& o) {
    const auto n = static_cast<int64_t>(layers.size());
    if (!o.head_name.empty()) {
        for (size_t i = 0; i < layers.size(); ++i)
            if (layers[i]->name() == o.head_name) return i;
        value_error("fine_tune: no layer named \"{}\" (head_name)", o.head_name);
    }
    const int64_t index = o.head_layer < 0 ? n + o.head_layer : o.head_layer;
    if (index < 0 || index >= n)
        value_error("fine_tune: head_layer={} is outside the model's {} layers", o.head_layer, n);
    return static_cast<size_t>(index);
}

}  // namespace

callbacks::History Model::fine_tune(const Tensor& x, const Tensor& y, int epochs, const FineTuneOptions& options,
                                    const FitOptions& fit) {
    if (options.freeze_epochs < 0 || epochs < 0)
        value_error("fine_tune: epochs and freeze_epochs must be >= 0. Received: epochs={}, freeze_epochs={}", epochs,
                    options.freeze_epochs);
    if (!(options.base_lr > 0.0) || !(options.lr_mult > 0.0))
        value_error("fine_tune: base_lr and lr_mult must be > 0. Received: base_lr={}, lr_mult={}", options.base_lr,
                    options.lr_mult);
    prepare_data({x}, {y}, "fine_tune");   // builds the model, so the body's weights exist
    const std::vector<LayerPtr> all = layers();
    const size_t head = head_start(all, options);
    // The body: layers before the head that are trainable now (frozen ones stay frozen).
    std::vector<LayerPtr> body;
    for (size_t i = 0; i < head; ++i)
        if (all[i]->trainable) body.push_back(all[i]);
    struct Unfreeze {   // also when a fit throws
        const std::vector<LayerPtr>& layers;
        ~Unfreeze() {
            for (const LayerPtr& l : layers) {
                l->trainable = true;
                for (const VariablePtr& w : l->weights()) w->learning_rate_multiplier = 1.0f;
            }
        }
    } unfreeze{body};

    for (const LayerPtr& l : body) l->trainable = false;
    if (options.freeze_epochs > 0)
        fit_one_cycle(x, y, options.freeze_epochs, options.base_lr, fit, {.pct_start = 0.99});
    for (const LayerPtr& l : body) {
        l->trainable = true;
        for (const VariablePtr& w : l->weights()) w->learning_rate_multiplier = static_cast<float>(1.0 / options.lr_mult);
    }
    return fit_one_cycle(x, y, epochs, options.base_lr / 2.0, fit, {.div = options.div, .pct_start = options.pct_start});
}

}  // namespace keras
