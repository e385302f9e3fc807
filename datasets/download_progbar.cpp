#include "download_progbar.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

namespace keras::utils {

namespace {
constexpr int kBarWidth = 30;
constexpr double kRedrawInterval = 0.05;

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string format_time(double seconds) {
    if (seconds >= 1 || seconds == 0) return fmt::format(" {:.0f}s/step", seconds);
    if (seconds >= 1e-3) return fmt::format(" {:.0f}ms/step", seconds * 1e3);
    return fmt::format(" {:.0f}us/step", seconds * 1e6);
}

std::string format_eta(double eta) {
    const auto s = static_cast<int64_t>(std::floor(eta));
    if (eta > 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s % 3600) / 60, s % 60);
    if (eta > 60) return fmt::format("{}:{:02d}", s / 60, s % 60);
    return fmt::format("{}s", s);
}
}  // namespace

DownloadProgbar::DownloadProgbar(std::optional<int64_t> target, std::ostream& out)
    : target_(target), out_(out), start_(now_seconds()) {}

void DownloadProgbar::update(int64_t current) {
    const double now = now_seconds();
    if (last_update_ && now - *last_update_ < kRedrawInterval) return;
    draw(current, false, now);
}

void DownloadProgbar::finish(int64_t current) { draw(current, true, now_seconds()); }

void DownloadProgbar::abandon() {
    if (line_open_) out_ << '\n' << std::flush;
    line_open_ = false;
}

// Keras leaves the first step out of the per-step time.
double DownloadProgbar::step_duration(int64_t current, double now) {
    if (current == 0) return 0;
    const double per_step = (time_after_first_step_ && current > 1)
                                ? (now - *time_after_first_step_) / static_cast<double>(current - 1)
                                : (now - start_) / static_cast<double>(current);
    if (current == 1) time_after_first_step_ = now;
    return per_step;
}

std::string DownloadProgbar::bar(int64_t current) const {
    if (!target_) return fmt::format("{:>7}/Unknown", current);
    const int64_t target = *target_;
    const int digits = static_cast<int>(std::to_string(std::max<int64_t>(target, 1)).size());
    std::string s = fmt::format("{:>{}}/{} [", current, digits, target);
    const int filled = static_cast<int>(kBarWidth * (static_cast<double>(current) / static_cast<double>(std::max<int64_t>(target, 1))));
    if (filled > 0) {
        s.append(static_cast<size_t>(filled - 1), '=');
        s += current < target ? '>' : '=';
    }
    s.append(static_cast<size_t>(std::max(kBarWidth - filled, 0)), '.');
    return s + "]";
}

void DownloadProgbar::draw(int64_t current, bool finalize, double now) {
    const std::string head = bar(current);
    const double per_step = step_duration(current, now);
    std::string info;
    if (!target_ || finalize) info = fmt::format(" - {:.0f}s", now - start_) + format_time(per_step);
    else info = " - ETA: " + format_eta(per_step * static_cast<double>(*target_ - current));
    const size_t previous_width = total_width_;
    total_width_ = head.size() + info.size();
    if (previous_width > total_width_) info.append(previous_width - total_width_, ' ');
    out_ << '\r' << head << info;
    if (finalize) out_ << '\n';
    out_ << std::flush;
    line_open_ = !finalize;
    last_update_ = now;
}

}  // namespace keras::utils
