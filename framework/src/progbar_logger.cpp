// ProgbarLogger: the ProgbarLogger callback of Keras 2.15, drawing with keras::utils::Progbar
// (Keras 2's Progbar: same text, widths, time units and redraw interval).
#include <chrono>
#include <iostream>
#include <memory>

#include "keras/callbacks.hpp"
#include "keras/progbar.hpp"

namespace keras::callbacks {

namespace {
double steady_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// The logs as the bar's values, in the logs' order; none for predict (its logs hold predictions).
utils::ProgbarValues values_of(const Logs* logs) {
    utils::ProgbarValues values;
    if (logs)
        for (const auto& [key, value] : logs->items()) values.emplace_back(key, value);
    return values;
}
}  // namespace

// One bar: an epoch, an evaluate() or a predict().
struct ProgbarLogger::State {
    utils::Progbar bar;
};

ProgbarLogger::ProgbarLogger(std::ostream* out) : clock(steady_seconds), out_(out ? out : &std::cout) {}

void ProgbarLogger::start_bar() {
    state_ = std::make_shared<State>(State{utils::Progbar(params().steps, {.verbose = params().verbose, .out = out_, .clock = clock, .interactive = interactive})});
    seen_ = 0;
}

void ProgbarLogger::batch_update(int64_t batch, const Logs* logs) {
    if (!state_) start_bar();
    seen_ = batch + 1;
    state_->bar.update(seen_, values_of(logs));
}

void ProgbarLogger::finish_bar(const Logs* logs) {
    if (!state_) start_bar();
    state_->bar.finish(seen_, values_of(logs));
}

void ProgbarLogger::on_train_begin(Logs&) { in_fit_ = true; }
void ProgbarLogger::on_train_end(Logs&) { in_fit_ = false; }

void ProgbarLogger::on_epoch_begin(int epoch, Logs&) {
    start_bar();
    // Keras prints no "Epoch 1/1" header for a single epoch.
    if (params().verbose != 0 && params().epochs > 1) *out_ << "Epoch " << epoch + 1 << "/" << params().epochs << '\n';
}
void ProgbarLogger::on_train_batch_end(int64_t batch, Logs& logs) { batch_update(batch, &logs); }
void ProgbarLogger::on_epoch_end(int, Logs& logs) { finish_bar(&logs); }

void ProgbarLogger::on_test_begin(Logs&) {
    if (!in_fit_) start_bar();
}
void ProgbarLogger::on_test_batch_end(int64_t batch, Logs& logs) {
    if (!in_fit_) batch_update(batch, &logs);
}
void ProgbarLogger::on_test_end(Logs& logs) {
    if (!in_fit_) finish_bar(&logs);
}

// predict() shows the bar without values: the batch logs would hold predictions, not metrics.
void ProgbarLogger::on_predict_begin(Logs&) { start_bar(); }
void ProgbarLogger::on_predict_batch_end(int64_t batch, Logs&) { batch_update(batch, nullptr); }
void ProgbarLogger::on_predict_end(Logs&) { finish_bar(nullptr); }

}  // namespace keras::callbacks
