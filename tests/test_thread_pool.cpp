// Our own threads (onednn/thread_pool.hpp), which run the CPU backend's parallel loops when the thread
// governor picks them on a busy machine: every member of a team runs once and at once, teams run one
// after another from one or several calling threads, a loop inside a member runs inline, and training
// with them gives the same bits as with OpenMP's threads or one thread. Registered a second time in
// tests/meson.build with OMP_NUM_THREADS=2, where the backend's own threads exist (with 1 there are
// none, and the training cases compare one-thread runs).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "keras/keras.hpp"
#include "onednn/onednn_backend.hpp"
#include "onednn/thread_pool.hpp"
#include "thread_bits_model.hpp"

using namespace keras;
using keras::backend::ThreadPool;
using keras::backend::ThreadSetting;

TEST_CASE("thread pool: each member of a team runs once, all at the same time, on threads of their own") {
    std::atomic<int> started{0};
    ThreadPool pool(3, [&] { ++started; });
    CHECK(pool.size() == 4);
    for (int team : {1, 2, 4}) {
        CAPTURE(team);
        std::mutex mutex;
        std::vector<int> runs(team, 0);
        std::set<std::thread::id> threads;
        std::atomic<int> arrived{0};
        const bool ran = pool.run(team, [&](int t, int n) {
            CHECK(n == team);
            // Every member waits here for all the others: a member run after another would hang.
            ++arrived;
            while (arrived.load() < n) std::this_thread::yield();
            std::lock_guard lock(mutex);
            ++runs[t];
            threads.insert(std::this_thread::get_id());
        });
        CHECK(ran);
        CHECK(runs == std::vector<int>(team, 1));
        CHECK(threads.size() == static_cast<size_t>(team));
        CHECK(threads.count(std::this_thread::get_id()) == 1);   // member 0 is the caller
    }
    CHECK(started.load() == 3);   // each worker's start ran once
    // A team larger than the pool is cut to its size.
    std::atomic<int> members{0};
    pool.run(9, [&](int, int n) {
        CHECK(n == 4);
        ++members;
    });
    CHECK(members.load() == 4);
}

TEST_CASE("thread pool: many teams in a row, and teams after the workers have gone to sleep") {
    ThreadPool pool(2, [] {});
    std::vector<int64_t> sums(3, 0);
    for (int i = 0; i < 20000; ++i) pool.run(3, [&](int t, int) { sums[t] += i; });
    const int64_t expected = int64_t{20000} * 19999 / 2;
    CHECK(sums == std::vector<int64_t>(3, expected));
    // Longer than the spin: the workers wait in the kernel, and a new team must wake them.
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(ThreadPool::kSpinWait * 20);
        std::atomic<int> members{0};
        pool.run(3, [&](int, int) { ++members; });
        CHECK(members.load() == 3);
    }
}

TEST_CASE("thread pool: a second caller while a team runs gets false; loops inside a member run inline") {
    ThreadPool pool(1, [] {});
    std::atomic<bool> inside{false}, release{false};
    std::thread first([&] {
        pool.run(2, [&](int t, int) {
            if (t != 0) return;
            inside = true;
            while (!release) std::this_thread::yield();
        });
    });
    while (!inside) std::this_thread::yield();
    bool ran_body = false;
    CHECK_FALSE(pool.run(2, [&](int, int) { ran_body = true; }));
    CHECK_FALSE(ran_body);
    release = true;
    first.join();
    // Inside a member, the backend's run_team runs its body alone on that thread.
    pool.run(2, [&](int, int) {
        CHECK(ThreadPool::in_team());
        int calls = 0;
        backend::run_team(2, [&](int t, int n) {
            CHECK(t == 0);
            CHECK(n == 1);
            ++calls;
        });
        CHECK(calls == 1);
    });
    CHECK_FALSE(ThreadPool::in_team());
}

TEST_CASE("thread pool: a fork()ed child, which has none of the workers, gets false instead of hanging") {
    ThreadPool pool(1, [] {});
    pool.run(2, [](int, int) {});   // the workers exist and have run
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const bool ran = pool.run(2, [](int, int) {});
        _exit(ran ? 1 : 0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

// The governor may switch between OpenMP's threads, our own and one thread between steps: the weights
// of a seed must not depend on which ran (as with the thread count, tests/test_threads.cpp).
namespace {
std::vector<float> train_with(ThreadSetting setting, const char* cell) {
    backend::set_thread_setting(setting);
    const std::vector<float> w = test_helpers::train_thread_bits_model(cell);
    backend::set_thread_setting(std::nullopt);
    return w;
}
}  // namespace

TEST_CASE("thread pool: our own threads train the same weights as OpenMP's and as one thread, bit for bit") {
    for (const char* cell : {"simple_rnn", "lstm", "gru"}) {
        CAPTURE(cell);
        const std::vector<float> own = train_with({2, true}, cell);
        CHECK(own == train_with({2, false}, cell));
        CHECK(own == train_with({1, false}, cell));
    }
}
