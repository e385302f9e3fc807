// Threads of our own for the CPU backend's parallel loops on a busy machine (threads.cpp's
// own-threads mode).
//
// Why: oneDNN's OpenMP runtime here (libgomp) lets a waiting thread spin for about 3 ms before it
// sleeps, and a program cannot change that once the runtime has started (GOMP_SPINCOUNT is read from
// the environment at load time). When other processes compete for the cores, a thread of ours that
// waits for its descheduled partner spins away the core that partner needs: on two cores shared with
// two busy processes, a third of the process's CPU time went to libgomp's spin loops. These threads
// spin for at most kSpinWait, then sleep in the kernel.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keras::backend {

class ThreadPool {
public:
    // How long a waiting thread spins before it sleeps: a busy team's next loop starts within
    // microseconds, and a partner that has lost its core will not be back for milliseconds.
    static constexpr std::chrono::microseconds kSpinWait{100};

    // `workers` threads beside the calling threads; each runs `start` once, before its first team.
    ThreadPool(int workers, std::function<void()> start);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Members per team at most: the workers and the calling thread.
    int size() const { return static_cast<int>(threads_.size()) + 1; }
    // body(t, n) for t = 0 .. n - 1 at once, n = min(team, size()): member 0 on the calling thread,
    // the others on workers; returns when all have. The body must not throw. Returns false, running
    // nothing, when another thread's team holds the pool, or in a fork()ed child (whose workers
    // were not copied).
    bool run(int team, const std::function<void(int t, int n)>& body);
    // Whether the calling thread is running a member of a team now (a pool's or its caller).
    static bool in_team();

private:
    struct Job {
        const std::function<void(int, int)>* body = nullptr;
        int team = 0;
    };
    void work(int index, const std::function<void()>& start);

    std::mutex run_mutex_;               // held by the thread whose team runs
    std::mutex job_mutex_;               // job_ and stop_, read by the workers with generation_
    Job job_;
    bool stop_ = false;
    std::atomic<uint32_t> generation_{0};   // one more per team (and at shutdown)
    std::atomic<int> pending_{0};           // workers of the current team still running
    std::vector<std::thread> threads_;
    const int owner_;   // the process that made the threads: a fork()ed child has none of them
};

}  // namespace keras::backend
