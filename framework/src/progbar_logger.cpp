// ProgbarLogger: Keras 2's progress bar (keras/utils/generic_utils.py Progbar and the ProgbarLogger
// callback of Keras 2.15), with the same text, widths, time units and redraw interval.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "keras/callbacks.hpp"

namespace keras::callbacks {

namespace {

constexpr int kBarWidth = 30;
constexpr double kRedrawInterval = 0.05;   // seconds between two redraws of the live bar

double steady_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// " 19ms/step": whole seconds at >= 1 s (and for exactly 0), else ms, else us, as Keras.
std::string format_time(double seconds, const char* unit) {
    if (seconds >= 1 || seconds == 0) return fmt::format(" {:.0f}s/{}", seconds, unit);
    if (seconds >= 1e-3) return fmt::format(" {:.0f}ms/{}", seconds * 1e3, unit);
    return fmt::format(" {:.0f}us/{}", seconds * 1e6, unit);
}

// "1:02:03", "1:02" or "5s". Thresholds compare the real value; the fields are whole seconds,
// which is what Python's '%d' of eta // 3600, (eta % 3600) // 60 and eta % 60 gives.
std::string format_eta(double eta) {
    const auto s = static_cast<int64_t>(std::floor(eta));
    if (eta > 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s % 3600) / 60, s % 60);
    if (eta > 60) return fmt::format("{}:{:02d}", s / 60, s % 60);
    return fmt::format("{}s", s);
}

// Keras shows 4 decimals, or '%.4e' for values it considers tiny (0 included).
std::string format_value(double v, bool tiny) {
    return tiny ? fmt::format(" {:.4e}", v) : fmt::format(" {:.4f}", v);
}

int digits_of(int64_t n) { return static_cast<int>(std::to_string(std::max<int64_t>(n, 1)).size()); }

}  // namespace

struct ProgbarLogger::State {
    int64_t target = 0;   // batches in this bar; 0 = unknown until the end
    int verbose = 1;
    double start = 0;
    std::optional<double> last_update;            // no redraw yet: the first one always draws
    std::optional<double> time_after_first_step;  // the first step is left out of the per-step time
    size_t total_width = 0;                        // width of the last line drawn, to blank leftovers
    std::vector<std::pair<std::string, double>> values;   // in first-seen order

    void record(const Logs* logs) {
        if (!logs) return;
        for (const auto& [key, value] : logs->items()) {
            auto it = std::find_if(values.begin(), values.end(), [&](const auto& kv) { return kv.first == key; });
            if (it == values.end()) values.emplace_back(key, value);
            else it->second = value;
        }
    }

    double step_duration(int64_t current, double now) {
        if (current == 0) return 0;
        double per_step = (time_after_first_step && current > 1)
                              ? (now - *time_after_first_step) / static_cast<double>(current - 1)
                              : (now - start) / static_cast<double>(current);
        if (current == 1) time_after_first_step = now;
        return per_step;
    }

    // "  37/157 [======>.......................]", or "     37/Unknown" without a target.
    std::string bar(int64_t current) const {
        if (target <= 0) return fmt::format("{:>7}/Unknown", current);
        std::string s = fmt::format("{:>{}}/{} [", current, digits_of(target), target);
        const int filled = static_cast<int>(kBarWidth * (static_cast<double>(current) / static_cast<double>(target)));
        if (filled > 0) {
            s.append(static_cast<size_t>(filled - 1), '=');
            s += current < target ? '>' : '=';
        }
        s.append(static_cast<size_t>(std::max(kBarWidth - filled, 0)), '.');
        return s + "]";
    }

    // verbose 1: redraw the line in place; the last one ends with a newline.
    void draw(int64_t current, bool finalize, double now, std::ostream& out) {
        if (!finalize && last_update && now - *last_update < kRedrawInterval) return;
        const size_t previous_width = total_width;
        const std::string head = bar(current);
        const double per_step = step_duration(current, now);
        std::string info;
        if (target <= 0 || finalize)
            info = fmt::format(" - {:.0f}s", now - start) + format_time(per_step, "step");
        else
            info = " - ETA: " + format_eta(per_step * static_cast<double>(target - current));
        for (const auto& [key, v] : values) info += " - " + key + ":" + format_value(v, !(std::abs(v) > 1e-3));
        total_width = head.size() + info.size();
        if (previous_width > total_width) info.append(previous_width - total_width, ' ');
        if (finalize) info += '\n';
        out << '\r' << head << info << std::flush;
        last_update = now;
    }

    // verbose 2: one line at the end, "157/157 - 3s - loss: 0.6931 - 3s/epoch - 19ms/step".
    void summary(int64_t current, double now, std::ostream& out) {
        std::string line = fmt::format("{:>{}}/{} - {:.0f}s", current, digits_of(target), target, now - start);
        // Keras 2.15 tests `avg > 1e-3` here, without abs(): negative values print in '%.4e'.
        for (const auto& [key, v] : values) line += " - " + key + ":" + format_value(v, !(v > 1e-3));
        const double epoch_time = now - start;
        line += " -" + format_time(epoch_time, "epoch");
        line += " -" + format_time(epoch_time / static_cast<double>(std::max<int64_t>(target, 1)), "step");
        out << line << '\n' << std::flush;
        last_update = now;
    }
};

ProgbarLogger::ProgbarLogger(std::ostream* out) : clock(steady_seconds), out_(out ? out : &std::cout) {}

void ProgbarLogger::start_bar() {
    state_ = std::make_shared<State>();
    state_->target = std::max<int64_t>(params().steps, 0);
    state_->verbose = params().verbose;
    state_->start = clock();
    seen_ = 0;
}

void ProgbarLogger::batch_update(int64_t batch, const Logs* logs) {
    if (!state_) start_bar();
    seen_ = batch + 1;
    if (state_->verbose != 1) return;
    state_->record(logs);
    state_->draw(seen_, /*finalize=*/false, clock(), *out_);
}

void ProgbarLogger::finish_bar(const Logs* logs) {
    if (!state_) start_bar();
    State& s = *state_;
    if (s.target <= 0) s.target = seen_;   // unknown length: what was seen is the total
    s.record(logs);
    const double now = clock();
    if (s.verbose == 1) s.draw(s.target, /*finalize=*/true, now, *out_);
    else if (s.verbose == 2) s.summary(s.target, now, *out_);
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
