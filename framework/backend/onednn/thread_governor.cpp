#include "thread_governor.hpp"

#include <algorithm>
#include <utility>

namespace keras::backend {

namespace {
constexpr size_t kRecentSteps = 5;
}

ThreadGovernor::ThreadGovernor(int max_threads, RoomFor room_for) : room_for_(std::move(room_for)) {
    for (int n = std::max(max_threads, 1); n > 1; n /= 2) {
        rungs_.push_back({n, false});
        rungs_.push_back({n, true});
    }
    rungs_.push_back({1, false});
    warm_.assign(rungs_.size(), false);
}

ThreadSetting ThreadGovernor::next() const { return rungs_[probing_ ? probe_ : current_]; }

double ThreadGovernor::reference() const {
    std::vector<double> sorted = recent_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
}

void ThreadGovernor::start_probe(size_t rung) {
    probing_ = true;
    probe_ = rung;
    (rung < current_ ? steps_since_up_ : steps_since_down_) = 0;
}

void ThreadGovernor::finish_probe(double seconds_per_sample) {
    probing_ = false;
    const bool up = probe_ < current_;
    // Up from our own threads to OpenMP's as many, the faster setting on a free machine: not slower
    // is enough (the probe ran only because the cores had room).
    const bool to_openmp = up && rungs_[probe_].threads == rungs_[current_].threads;
    if (seconds_per_sample < (to_openmp ? 1.0 : kWinRatio) * reference()) {
        current_ = probe_;
        recent_.assign(1, seconds_per_sample);
        down_interval_ = up_interval_ = kMinInterval;
        steps_since_down_ = steps_since_up_ = 0;
        down_skip_ = 0;
        sweeping_ = false;
        return;
    }
    // The rungs are not ordered by speed on every machine (own threads can lose to both their
    // neighbours), so a lost down-probe sends the next one a rung further, wrapping around; after a
    // spike, at once.
    if (!up) {
        const bool more_below = probe_ + 1 < rungs_.size();
        down_skip_ = more_below ? probe_ - current_ : 0;
        if (sweeping_ && more_below) return start_probe(probe_ + 1);
    }
    sweeping_ = false;
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
    ++steps_since_down_;
    ++steps_since_up_;

    const bool can_go_down = current_ + 1 < rungs_.size();
    const bool can_go_up = current_ > 0;
    if (spike && can_go_down && recent_.size() >= 3) {
        // The machine changed (another program started): older steps no longer say what this count
        // costs, so the probe is judged against the slow step alone.
        recent_.assign(1, seconds_per_sample);
        sweeping_ = true;
        return start_probe(current_ + 1);
    }
    const bool down_due = can_go_down && steps_since_down_ >= down_interval_;
    const bool up_due = can_go_up && steps_since_up_ >= up_interval_;
    if (up_due && (next_probe_up_ || !down_due)) {
        next_probe_up_ = false;
        if (room_for_(rungs_[current_ - 1].threads)) return start_probe(current_ - 1);
        steps_since_up_ = 0;
        up_interval_ = std::min(up_interval_ * 2, kMaxUpInterval);
    } else if (down_due) {
        next_probe_up_ = true;
        start_probe(current_ + 1 + down_skip_);
    }
}

}  // namespace keras::backend
