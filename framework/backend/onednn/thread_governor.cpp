#include "thread_governor.hpp"

#include <algorithm>
#include <utility>

namespace keras::backend {

namespace {
constexpr size_t kRecentSteps = 5;
}

ThreadGovernor::ThreadGovernor(int max_threads, RoomFor room_for) : room_for_(std::move(room_for)) {
    for (int n = std::max(max_threads, 1); n > 1; n /= 2) rungs_.push_back(n);
    rungs_.push_back(1);
    warm_.assign(rungs_.size(), false);
}

int ThreadGovernor::next() const { return rungs_[probing_ ? probe_ : current_]; }

double ThreadGovernor::reference() const {
    std::vector<double> sorted = recent_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
}

void ThreadGovernor::start_probe(size_t rung) {
    probing_ = true;
    probe_ = rung;
    steps_since_probe_ = 0;
}

void ThreadGovernor::finish_probe(double seconds_per_sample) {
    probing_ = false;
    const bool up = probe_ < current_;
    if (seconds_per_sample < kWinRatio * reference()) {
        current_ = probe_;
        recent_.assign(1, seconds_per_sample);
        down_interval_ = up_interval_ = kMinInterval;
        return;
    }
    int64_t& interval = up ? up_interval_ : down_interval_;
    interval = std::min(interval * 2, up ? kMaxUpInterval : kMaxDownInterval);
}

void ThreadGovernor::record(double seconds_per_sample) {
    if (rungs_.size() == 1) return;
    const size_t rung = probing_ ? probe_ : current_;
    // A count's first step also creates its primitives: not a measure of its speed. A probe at a
    // new count therefore runs twice.
    if (!warm_[rung]) {
        warm_[rung] = true;
        return;
    }
    if (probing_) {
        finish_probe(seconds_per_sample);
        return;
    }
    const bool spike = !recent_.empty() &&
                       seconds_per_sample > kSpikeRatio * *std::min_element(recent_.begin(), recent_.end());
    recent_.push_back(seconds_per_sample);
    if (recent_.size() > kRecentSteps) recent_.erase(recent_.begin());
    ++steps_since_probe_;

    const bool can_go_down = current_ + 1 < rungs_.size();
    const bool can_go_up = current_ > 0;
    if (spike && can_go_down && recent_.size() >= 3) {
        // The machine changed (another program started): older steps no longer say what this count
        // costs, so the probe is judged against the slow step alone.
        recent_.assign(1, seconds_per_sample);
        return start_probe(current_ + 1);
    }
    const bool down_due = can_go_down && steps_since_probe_ >= down_interval_;
    const bool up_due = can_go_up && steps_since_probe_ >= up_interval_;
    if (up_due && (next_probe_up_ || !down_due)) {
        next_probe_up_ = false;
        if (room_for_(rungs_[current_ - 1])) return start_probe(current_ - 1);
        steps_since_probe_ = 0;
        up_interval_ = std::min(up_interval_ * 2, kMaxUpInterval);
    } else if (down_due) {
        next_probe_up_ = true;
        start_probe(current_ + 1);
    }
}

}  // namespace keras::backend
