// The CPU backend's adaptive thread setting (onednn/thread_governor.hpp), driven by made-up step
// times: it must keep all of OpenMP's threads on a free machine, move within a few steps to whichever
// of our own threads and 1 thread is fastest when the machine is busy, and come back when it is free.
#include <doctest/doctest.h>

#include <functional>
#include <map>

#include "onednn/thread_governor.hpp"

using keras::backend::ThreadGovernor;
using keras::backend::ThreadSetting;

namespace {

constexpr ThreadSetting kOpenMp2{2, false}, kOwn2{2, true}, kOne{1, false};

// Runs `steps` steps; `cost(setting)` is a step's seconds per sample with that setting. Returns how
// many steps ran with each.
std::map<ThreadSetting, int> run(ThreadGovernor& g, int steps, const std::function<double(ThreadSetting)>& cost) {
    std::map<ThreadSetting, int> used;
    for (int i = 0; i < steps; ++i) {
        const ThreadSetting s = g.next();
        ++used[s];
        g.record(cost(s));
    }
    return used;
}

// Steps run until the governor's setting is `wanted` (at most 20; 21 when it never is).
int steps_until(ThreadGovernor& g, ThreadSetting wanted, const std::function<double(ThreadSetting)>& cost) {
    int steps = 0;
    for (; g.current() != wanted && steps <= 20; ++steps) g.record(cost(g.next()));
    return steps;
}

// A free machine: 2 of OpenMP's threads 1.6x faster than 1, our own a little slower than OpenMP's.
double quiet(ThreadSetting s) { return s == kOne ? 1.6 : s.own_threads ? 1.15 : 1.0; }
// A busy machine, a step of many barriers (W1): both kinds of 2 threads lose time slices at each.
double busy(ThreadSetting s) { return s == kOne ? 1.0 : 30.0; }
// A busy machine, a step of few long loops (W2): OpenMP's spinning costs, our own threads win.
double busy_spinning(ThreadSetting s) { return s == kOne ? 2.8 : s.own_threads ? 2.1 : 3.5; }

}  // namespace

TEST_CASE("one thread allowed: the governor never changes anything") {
    ThreadGovernor g(1);
    const auto used = run(g, 100, busy);
    CHECK(used.size() == 1);
    CHECK(used.at(kOne) == 100);
}

TEST_CASE("the settings tried: each count halving from the maximum, OpenMP's threads then our own, then 1") {
    ThreadGovernor g(8);
    CHECK(g.max_threads() == 8);
    CHECK(g.current() == ThreadSetting{8, false});
    // With 1 thread always fastest, it steps down through every setting, or past some after lost
    // probes, until it reaches 1; each one it uses is a setting of the ladder.
    const auto used = run(g, 400, [](ThreadSetting s) { return s == kOne ? 1.0 : 10.0 * s.threads + s.own_threads; });
    CHECK(g.current() == kOne);
    for (const auto& [s, steps] : used) {
        CAPTURE(s.threads);
        CHECK((s.threads == 8 || s.threads == 4 || s.threads == 2 || s == kOne));
    }
    CHECK(used.count(ThreadSetting{4, true}) == 1);   // OpenMP's 4 wins; our own 4 are probed
}

TEST_CASE("a free machine keeps OpenMP's threads; probes cost little") {
    ThreadGovernor g(2);
    const auto used = run(g, 2000, quiet);
    CHECK(g.current() == kOpenMp2);
    // A few probes of the settings below, spaced further apart each time they lose.
    CHECK(used.at(kOwn2) + used.at(kOne) <= 14);
    CHECK(used.at(kOne) >= 2);
}

TEST_CASE("a busy machine, barriers in every step: down to 1 thread within a few steps") {
    ThreadGovernor g(2);
    run(g, 20, quiet);
    CHECK(g.current() == kOpenMp2);
    // The first slow step is a spike (2.5x the best recent one or more): the next steps probe our own
    // threads (a first step there is not counted, so twice), then 1 thread.
    CHECK(steps_until(g, kOne, busy) <= 5);
}

TEST_CASE("a busy machine, few long loops per step: our own threads, and they stay") {
    ThreadGovernor g(2);
    run(g, 20, quiet);
    CHECK(steps_until(g, kOwn2, busy_spinning) <= 4);
    run(g, 1000, busy_spinning);
    CHECK(g.current() == kOwn2);
    // ... and back to OpenMP's when the machine is free again (after up to 2048 steps: the lost
    // up-probes spaced themselves out).
    run(g, 3000, quiet);
    CHECK(g.current() == kOpenMp2);
}

TEST_CASE("staying busy: up-probes grow rarer, so the slow steps stay a small share") {
    ThreadGovernor g(2);
    run(g, 30, busy);
    const auto used = run(g, 3000, busy);
    CHECK(g.current() == kOne);
    CHECK(used.count(kOpenMp2) == 0);   // from 1 thread the up-probe is our own threads
    CHECK(used.at(kOwn2) <= 10);        // probes at 8, 16, ..., 2048 steps apart
}

TEST_CASE("the machine becomes free again: back to OpenMP's threads") {
    ThreadGovernor g(2);
    run(g, 50, busy);
    REQUIRE(g.current() == kOne);
    run(g, 200, quiet);   // up through our own threads; the up-probe interval is at most 32 steps this early
    CHECK(g.current() == kOpenMp2);
}

TEST_CASE("no room on the cores: no up-probe is run at all") {
    ThreadGovernor g(2, [](int) { return false; });
    run(g, 50, busy);
    REQUIRE(g.current() == kOne);
    const auto used = run(g, 3000, busy);
    CHECK(used.count(kOwn2) == 0);
    CHECK(used.count(kOpenMp2) == 0);
}

TEST_CASE("a setting's first step (primitive creation) is not taken as its speed") {
    ThreadGovernor g(2);
    // Step 1 with OpenMP's threads is very slow (creation), then they are fast: no switch.
    int step = 0;
    run(g, 500, [&](ThreadSetting s) { return ++step == 1 ? 100.0 : quiet(s); });
    CHECK(g.current() == kOpenMp2);
    // The first probe of each setting is slow only because it creates primitives: it runs again.
    ThreadGovernor h(2);
    std::map<ThreadSetting, int> seen;
    run(h, 500, [&](ThreadSetting s) { return ++seen[s] == 1 ? 100.0 : busy(s); });
    CHECK(h.current() == kOne);
}
