// The CPU backend's adaptive thread count (onednn/thread_governor.hpp), driven by made-up step times:
// it must keep all threads on a free machine, drop them within a few steps when they become many
// times slower (a busy machine), and come back when the machine is free again.
#include <doctest/doctest.h>

#include <functional>
#include <map>

#include "onednn/thread_governor.hpp"

using keras::backend::ThreadGovernor;

namespace {

// Runs `steps` steps; `cost(threads)` is a step's seconds per sample at that count. Returns how many
// steps ran at each count.
std::map<int, int> run(ThreadGovernor& g, int steps, const std::function<double(int)>& cost) {
    std::map<int, int> used;
    for (int i = 0; i < steps; ++i) {
        const int n = g.next();
        ++used[n];
        g.record(cost(n));
    }
    return used;
}

double quiet(int threads) { return threads == 2 ? 1.0 : 1.6; }   // 2 threads 1.6x faster
double busy(int threads) { return threads == 2 ? 30.0 : 1.0; }   // barriers lose time slices

}  // namespace

TEST_CASE("one thread allowed: the governor never changes anything") {
    ThreadGovernor g(1);
    const auto used = run(g, 100, busy);
    CHECK(used.size() == 1);
    CHECK(used.at(1) == 100);
}

TEST_CASE("the counts tried halve from the maximum down to 1") {
    ThreadGovernor g(8);
    CHECK(g.max_threads() == 8);
    CHECK(g.current() == 8);
    // With 1 thread always fastest, it steps down one rung per won probe until it reaches 1.
    run(g, 200, [](int n) { return n == 1 ? 1.0 : 10.0 * n; });
    CHECK(g.current() == 1);
}

TEST_CASE("a free machine keeps all threads; probes cost little") {
    ThreadGovernor g(2);
    const auto used = run(g, 2000, quiet);
    CHECK(g.current() == 2);
    // A few probes at 1 thread, spaced further apart each time they lose.
    CHECK(used.at(1) <= 12);
    CHECK(used.at(1) >= 2);
}

TEST_CASE("a busy machine: down to 1 thread within a few steps") {
    ThreadGovernor g(2);
    run(g, 20, quiet);
    CHECK(g.current() == 2);
    // The first slow step is a spike (3x the best recent one): the next step probes 1 thread.
    int steps = 0;
    while (g.current() == 2 && steps < 10) {
        g.record(busy(g.next()));
        ++steps;
    }
    CHECK(g.current() == 1);
    CHECK(steps <= 3);
}

TEST_CASE("staying busy: up-probes grow rarer, so the slow steps stay a small share") {
    ThreadGovernor g(2);
    run(g, 30, busy);
    const auto used = run(g, 3000, busy);
    CHECK(g.current() == 1);
    CHECK(used.at(2) <= 9);   // probes at 8, 16, ..., 2048 steps apart
}

TEST_CASE("the machine becomes free again: back to all threads") {
    ThreadGovernor g(2);
    run(g, 50, busy);
    REQUIRE(g.current() == 1);
    run(g, 100, quiet);   // the up-probe interval is at most 32 steps this early
    CHECK(g.current() == 2);
}

TEST_CASE("no room on the cores: no up-probe is run at all") {
    ThreadGovernor g(2, [](int) { return false; });
    run(g, 50, busy);
    REQUIRE(g.current() == 1);
    const auto used = run(g, 3000, busy);
    CHECK(used.count(2) == 0);
}

TEST_CASE("a count's first step (primitive creation) is not taken as its speed") {
    ThreadGovernor g(2);
    // Step 1 at 2 threads is very slow (creation), then 2 threads are fast: no switch to 1.
    int step = 0;
    run(g, 500, [&](int n) { return ++step == 1 ? 100.0 : quiet(n); });
    CHECK(g.current() == 2);
    // The first probe at 1 thread is slow only because it creates primitives: it runs again.
    ThreadGovernor h(2);
    std::map<int, int> seen;
    run(h, 500, [&](int n) { return ++seen[n] == 1 ? 100.0 : busy(n) ; });
    CHECK(h.current() == 1);
}
