// Chooses the CPU backend's threads for each training / inference step (how many, and whether
// OpenMP's or our own), from the measured step times.
//
// Why: oneDNN's OpenMP threads meet at a barrier many times per step (every RNN time step in its
// primitives). When another process competes for the cores, a thread that loses its time slice holds
// the whole team at the barrier for a scheduler tick, and a step becomes 10-100x slower; one thread
// has no barrier and keeps its speed. Where our own loops do most of the work, with few barriers, our
// own threads keep more still: OpenMP's spin for milliseconds while they wait, on the core their
// partner needs (thread_pool.hpp). On a free machine all of OpenMP's threads are fastest. Nothing
// outside the process says which case holds, so the governor measures: it runs the current setting,
// now and then tries the next one down (or up) for one step, and keeps whichever is faster per sample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace keras::backend {

// How a step runs: `threads` threads, and whose. OpenMP's (own_threads false): oneDNN's primitives and
// our loops share them. Our own (thread_pool.hpp): our loops run on them, each primitive on one thread;
// on a busy machine their short spin keeps more of the process's speed.
struct ThreadSetting {
    int threads = 1;
    bool own_threads = false;
    auto operator<=>(const ThreadSetting&) const = default;
};

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
    // A step this many times slower than the best recent one at the same setting probes down at once.
    // One busy process beside W2 on 2 cores made OpenMP's 2 threads 2.7x slower (3.0 missed it).
    static constexpr double kSpikeRatio = 2.5;

    // Whether the machine now has idle cores for this many threads of ours. Asked before an up-probe,
    // which is skipped (as if it had lost) when the answer is no: on a busy machine that probe costs
    // a slow step and cannot win.
    using RoomFor = std::function<bool(int threads)>;

    // Settings tried, fastest on a free machine first: for each count max_threads, max_threads / 2,
    // ..., 2 OpenMP's threads then our own; last 1 thread.
    explicit ThreadGovernor(int max_threads, RoomFor room_for = [](int) { return true; });

    // The setting for the coming step.
    ThreadSetting next() const;
    // The step just run, at next()'s setting: its seconds per sample.
    void record(double seconds_per_sample);

    int max_threads() const { return rungs_.front().threads; }
    ThreadSetting current() const { return rungs_[current_]; }

private:
    void start_probe(size_t rung);
    void finish_probe(double seconds_per_sample);
    double reference() const;   // median of the recent steps at the current count

    RoomFor room_for_;
    std::vector<ThreadSetting> rungs_;    // the settings, in the order above
    std::vector<bool> warm_;              // the count has run a step (its primitives exist)
    size_t current_ = 0;
    bool probing_ = false;
    size_t probe_ = 0;
    bool next_probe_up_ = false;          // alternates when both directions exist
    size_t down_skip_ = 0;                // rungs passed over by the next down-probe (after losses)
    bool sweeping_ = false;               // a spike's probes: each rung below in turn, one step each
    std::vector<double> recent_;          // the last steps at the current count
    // Steps since the last probe each way, counted apart: frequent down-probes must not keep
    // postponing a rarer up-probe.
    int64_t steps_since_down_ = 0;
    int64_t steps_since_up_ = 0;
    int64_t down_interval_ = kMinInterval;
    int64_t up_interval_ = kMinInterval;
};

}  // namespace keras::backend
