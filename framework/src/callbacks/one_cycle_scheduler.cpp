// fastai's one-cycle policy as a callback (fastai/callback/schedule.py: fit_one_cycle, combined_cos,
// sched_cos), applied to the compiled optimizer before every training batch.
#include <cmath>
#include <limits>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"
#include "keras/optimizers.hpp"

namespace keras::callbacks {

namespace {

// fastai's sched_cos: a half cosine from start (pos 0) to end (pos 1).
double sched_cos(double start, double end, double pos) {
    return start + (1.0 + std::cos(M_PI * (1.0 - pos))) * (end - start) / 2.0;
}

// fastai's combined_cos(pct, start, middle, end) at pos: start -> middle over [0, pct), then
// middle -> end over [pct, 1].
double combined_cos(double pct, double start, double middle, double end, double pos) {
    if (pos < pct) return sched_cos(start, middle, pos / pct);
    return sched_cos(middle, end, (pos - pct) / (1.0 - pct));
}

// The optimizer's momentum that fastai's "mom" stands for, or null when it has none in use.
float* momentum_of(optimizers::Optimizer& optimizer) {
    if (auto* adam = dynamic_cast<optimizers::Adam*>(&optimizer)) return &adam->beta_1;
    // SGD and RMSprop without momentum keep no momentum slot: plain SGD stays plain.
    if (auto* sgd = dynamic_cast<optimizers::SGD*>(&optimizer)) return sgd->momentum > 0.0f ? &sgd->momentum : nullptr;
    if (auto* rms = dynamic_cast<optimizers::RMSprop*>(&optimizer)) return rms->momentum > 0.0f ? &rms->momentum : nullptr;
    return nullptr;
}

}  // namespace

OneCycleScheduler::OneCycleScheduler(double lr_max, OneCycleOptions options) : lr_max(lr_max), options(std::move(options)) {
    const OneCycleOptions& o = this->options;
    if (!(lr_max > 0.0)) value_error("OneCycleScheduler: lr_max must be > 0. Received: lr_max={}", lr_max);
    if (!(o.div > 0.0) || !(o.div_final > 0.0))
        value_error("OneCycleScheduler: div and div_final must be > 0. Received: div={}, div_final={}", o.div, o.div_final);
    if (!(o.pct_start >= 0.0 && o.pct_start <= 1.0))
        value_error("OneCycleScheduler: pct_start must be in [0, 1]. Received: pct_start={}", o.pct_start);
    if (!o.moms.empty() && o.moms.size() != 3)
        value_error("OneCycleScheduler: moms must hold 3 values (start, middle, end) or none. Received {} values",
                    o.moms.size());
}

double OneCycleScheduler::learning_rate_at(double pct) const {
    return combined_cos(options.pct_start, lr_max / options.div, lr_max, lr_max / options.div_final, pct);
}

double OneCycleScheduler::momentum_at(double pct) const {
    if (options.moms.empty()) return std::numeric_limits<double>::quiet_NaN();
    return combined_cos(options.pct_start, options.moms[0], options.moms[1], options.moms[2], pct);
}

void OneCycleScheduler::on_train_begin(Logs&) {
    optimizers::Optimizer& optimizer = model().optimizer();
    optimizer.check_learning_rate_settable();
    schedules_momentum_ = !options.moms.empty() && momentum_of(optimizer) != nullptr;
    lrs.clear();
    moms.clear();
}

void OneCycleScheduler::on_train_batch_begin(int64_t batch, Logs&) {
    // fastai's pct_train: the batches done so far over all the fit's batches.
    const double total = static_cast<double>(params().epochs) * static_cast<double>(params().steps);
    const double step = static_cast<double>(epoch_) * static_cast<double>(params().steps) + static_cast<double>(batch);
    const double pct = total > 0.0 ? step / total : 0.0;
    optimizers::Optimizer& optimizer = model().optimizer();
    lrs.push_back(learning_rate_at(pct));
    optimizer.learning_rate = static_cast<float>(lrs.back());
    if (schedules_momentum_) {
        moms.push_back(momentum_at(pct));
        *momentum_of(optimizer) = static_cast<float>(moms.back());
    }
}

void OneCycleScheduler::on_epoch_end(int, Logs& logs) {
    logs.set("learning_rate", model().optimizer().learning_rate);
    if (schedules_momentum_) logs.set("momentum", *momentum_of(model().optimizer()));
}

}  // namespace keras::callbacks
