#include "thread_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <exception>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace keras::backend {

namespace {

thread_local bool running_member = false;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Returns once `value` differs from `old`: spinning for up to kSpinWait, then asleep (a futex).
template <class T>
void wait_while_equal(const std::atomic<T>& value, T old) {
    const auto until = std::chrono::steady_clock::now() + ThreadPool::kSpinWait;
    for (int i = 1; value.load(std::memory_order_acquire) == old; ++i) {
        if (i % 64 == 0 && std::chrono::steady_clock::now() > until) {
            while (value.load(std::memory_order_acquire) == old) value.wait(old, std::memory_order_acquire);
            return;
        }
        cpu_relax();
    }
}

}  // namespace

ThreadPool::ThreadPool(int workers, std::function<void()> start) : owner_(getpid()) {
    for (int i = 1; i <= workers; ++i) threads_.emplace_back([this, i, start] { work(i, start); });
}

ThreadPool::~ThreadPool() {
    if (getpid() != owner_) {   // a fork()ed child: the workers are the parent's, not to be joined here
        for (std::thread& t : threads_) t.detach();
        return;
    }
    {
        std::lock_guard lock(job_mutex_);
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    generation_.notify_all();
    for (std::thread& t : threads_) t.join();
}

bool ThreadPool::in_team() { return running_member; }

bool ThreadPool::run(int team, const std::function<void(int, int)>& body) {
    if (getpid() != owner_) return false;
    std::unique_lock busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    team = std::clamp(team, 1, size());
    pending_.store(team - 1, std::memory_order_relaxed);
    {
        std::lock_guard lock(job_mutex_);
        job_ = Job{&body, team};
        generation_.fetch_add(1, std::memory_order_release);
    }
    generation_.notify_all();
    running_member = true;
    std::exception_ptr error;
    try {
        body(0, team);
    } catch (...) {   // not allowed, but the workers must not outlive `body` even then
        error = std::current_exception();
    }
    running_member = false;
    for (int left = pending_.load(std::memory_order_acquire); left != 0; left = pending_.load(std::memory_order_acquire))
        wait_while_equal(pending_, left);
    if (error) std::rethrow_exception(error);
    return true;
}

void ThreadPool::work(int index, const std::function<void()>& start) {
    start();
    running_member = true;   // a worker only ever runs members: its own loops run inline
    uint32_t seen = 0;
    for (;;) {
        wait_while_equal(generation_, seen);
        Job job;
        {
            std::lock_guard lock(job_mutex_);
            if (stop_) return;
            seen = generation_.load(std::memory_order_relaxed);
            job = job_;
        }
        // A team smaller than the pool leaves this worker out. The team cannot change under a
        // member: the next one is published only after all of this one's members have finished.
        if (index >= job.team) continue;
        (*job.body)(index, job.team);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
}

}  // namespace keras::backend
