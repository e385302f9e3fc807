// Keras 2's Progbar (keras/utils/generic_utils.py of Keras 2.15), with the same text, widths, time
// units and redraw interval. Keras redraws in place only when its `_dynamic_display` holds (stdout
// is a terminal, or a notebook); otherwise each update starts a new line. Lines every 0.05 s would
// flood a log file, so when not interactive the bar here prints only its final line.
#include "keras/progbar.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include <unistd.h>

#include <fmt/format.h>

namespace keras::utils {

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

namespace {
// The standard streams' own buffers (<iostream> sets them up before this file's statics): a stream
// given another buffer (rdbuf(...)) no longer writes to its file descriptor.
const std::streambuf* const kCoutBuffer = std::cout.rdbuf();
const std::streambuf* const kCerrBuffer = std::cerr.rdbuf();
const std::streambuf* const kClogBuffer = std::clog.rdbuf();
}  // namespace

bool is_terminal(const std::ostream* out) {
    if (out == &std::cout) return out->rdbuf() == kCoutBuffer && isatty(STDOUT_FILENO) == 1;
    if (out == &std::cerr) return out->rdbuf() == kCerrBuffer && isatty(STDERR_FILENO) == 1;
    if (out == &std::clog) return out->rdbuf() == kClogBuffer && isatty(STDERR_FILENO) == 1;
    return false;   // a file or string stream is never a terminal
}

Progbar::Progbar(int64_t target, ProgbarOptions options)
    : target_(std::max<int64_t>(target, 0)), options_(std::move(options)), out_(options_.out ? options_.out : &std::cout) {
    if (!options_.clock) options_.clock = steady_seconds;
    interactive_ = options_.interactive.value_or(is_terminal(out_));
    start_ = options_.clock();
}

void Progbar::record(const ProgbarValues& values) {
    for (const auto& entry : values) {
        const auto& [key, value] = entry;
        // The lambda reads entry, not the binding: clang 14 cannot capture a structured binding.
        auto it = std::find_if(values_.begin(), values_.end(), [&](const auto& kv) { return kv.first == entry.first; });
        if (it == values_.end()) values_.emplace_back(key, value);
        else it->second = value;
    }
}

void Progbar::update(int64_t current, const ProgbarValues& values) {
    if (options_.verbose != 1) return;
    record(values);
    const double now = options_.clock();
    if (!interactive_) {
        step_duration(current, now);   // keeps the first step out of the final per-step time
        return;
    }
    if (last_update_ && now - *last_update_ < kRedrawInterval) return;
    draw(current, /*finalize=*/false, now);
}

void Progbar::finish(int64_t seen, const ProgbarValues& values) {
    if (target_ <= 0) target_ = seen;   // unknown length: what was seen is the total
    record(values);
    const double now = options_.clock();
    if (options_.verbose == 1) draw(target_, /*finalize=*/true, now);
    else if (options_.verbose == 2) summary(target_, now);
}

void Progbar::abandon() {
    if (line_open_) *out_ << '\n' << std::flush;
    line_open_ = false;
}

double Progbar::step_duration(int64_t current, double now) {
    if (current == 0) return 0;
    const double per_step = (time_after_first_step_ && current > 1)
                                ? (now - *time_after_first_step_) / static_cast<double>(current - 1)
                                : (now - start_) / static_cast<double>(current);
    if (current == 1) time_after_first_step_ = now;
    return per_step;
}

// "  37/157 [======>.......................]", or "     37/Unknown" without a target.
std::string Progbar::bar(int64_t current) const {
    if (target_ <= 0) return fmt::format("{:>7}/Unknown", current);
    std::string s = fmt::format("{:>{}}/{} [", current, digits_of(target_), target_);
    const int filled = static_cast<int>(kBarWidth * (static_cast<double>(current) / static_cast<double>(target_)));
    if (filled > 0) {
        s.append(static_cast<size_t>(filled - 1), '=');
        s += current < target_ ? '>' : '=';
    }
    s.append(static_cast<size_t>(std::max(kBarWidth - filled, 0)), '.');
    return s + "]";
}

// verbose 1: redraw the line in place; the last one ends with a newline. Not interactive: only the
// last one is drawn, as a whole line.
void Progbar::draw(int64_t current, bool finalize, double now) {
    const size_t previous_width = total_width_;
    const std::string head = bar(current);
    const double per_step = step_duration(current, now);
    std::string info;
    if (target_ <= 0 || finalize)
        info = fmt::format(" - {:.0f}s", now - start_) + format_time(per_step, "step");
    else
        info = " - ETA: " + format_eta(per_step * static_cast<double>(target_ - current));
    for (const auto& [key, v] : values_) info += " - " + key + ":" + format_value(v, !(std::abs(v) > 1e-3));
    if (!interactive_) {
        *out_ << head << info << '\n' << std::flush;
        return;
    }
    total_width_ = head.size() + info.size();
    if (previous_width > total_width_) info.append(previous_width - total_width_, ' ');
    if (finalize) info += '\n';
    *out_ << '\r' << head << info << std::flush;
    line_open_ = !finalize;
    last_update_ = now;
}

// verbose 2: one line at the end, "157/157 - 3s - loss: 0.6931 - 3s/epoch - 19ms/step".
void Progbar::summary(int64_t current, double now) {
    std::string line = fmt::format("{:>{}}/{} - {:.0f}s", current, digits_of(target_), target_, now - start_);
    // Keras 2.15 tests `avg > 1e-3` here, without abs(): negative values print in '%.4e'.
    for (const auto& [key, v] : values_) line += " - " + key + ":" + format_value(v, !(v > 1e-3));
    const double epoch_time = now - start_;
    line += " -" + format_time(epoch_time, "epoch");
    line += " -" + format_time(epoch_time / static_cast<double>(std::max<int64_t>(target_, 1)), "step");
    *out_ << line << '\n' << std::flush;
    last_update_ = now;
}

}  // namespace keras::utils
