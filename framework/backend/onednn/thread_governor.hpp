// Chooses how many OpenMP threads the CPU backend uses for each training / inference step, from the
// measured step times.
//
// Why: oneDNN's OpenMP threads meet at a barrier many times per step (every RNN time step). When
// another process competes for the cores, a thread that loses its time slice holds the whole team at
// the barrier for a scheduler tick, and a step becomes 10-100x slower; one thread has no barrier and
// keeps its speed. On a free machine all cores are faster. Nothing outside the process says which
// case holds, so the governor measures: it runs the current count, now and then tries the next count
// down (or up) for one step, and keeps whichever is faster per sample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace keras::backend {

class ThreadGovernor {
public:
    // A probe is run after this many measured steps at the current count, doubling (up to the
    // maximum) each time the probe loses, and back to the minimum after a switch. An up-probe on a
    // busy machine costs a slow step, so its spacing grows further than a down-probe's.
    static constexpr int64_t kMinInterval = 8;
    static constexpr int64_t kMaxDownInterval = 256;
    static constexpr int64_t kMaxUpInterval = 2048;
    // A probe wins when it is this much faster per sample than the current count's recent median.
    static constexpr double kWinRatio = 0.85;
    // A step this many times slower than the best recent one at the same count probes down at once.
    static constexpr double kSpikeRatio = 3.0;

    // Whether the machine now has idle cores for this many threads of ours. Asked before an up-probe,
    // which is skipped (as if it had lost) when the answer is no: on a busy machine that probe costs
    // a slow step and cannot win.
    using RoomFor = std::function<bool(int threads)>;

    // Counts tried: max_threads, max_threads / 2, ..., 1.
    explicit ThreadGovernor(int max_threads, RoomFor room_for = [](int) { return true; });

    // The thread count for the coming step.
    int next() const;
    // The step just run, at next()'s count: its seconds per sample.
    void record(double seconds_per_sample);

    int max_threads() const { return rungs_.front(); }
    int current() const { return rungs_[current_]; }

private:
    void start_probe(size_t rung);
    void finish_probe(double seconds_per_sample);
    double reference() const;   // median of the recent steps at the current count

    RoomFor room_for_;
    std::vector<int> rungs_;              // thread counts, largest first
    std::vector<bool> warm_;              // the count has run a step (its primitives exist)
    size_t current_ = 0;
    bool probing_ = false;
    size_t probe_ = 0;
    bool next_probe_up_ = false;          // alternates when both directions exist
    std::vector<double> recent_;          // the last steps at the current count
    int64_t steps_since_probe_ = 0;
    int64_t down_interval_ = kMinInterval;
    int64_t up_interval_ = kMinInterval;
};

}  // namespace keras::backend
