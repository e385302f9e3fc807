// The CPU backend's threads per step: how many, and whose (see thread_governor.hpp for why it adapts).
// With OpenMP's threads, primitives and our own loops (run_team) share them. With our own
// (thread_pool.hpp, picked on a busy machine), our loops run on them and each primitive on the
// calling thread alone, so that no OpenMP thread is left spinning.
//
// oneDNN here runs on OpenMP, which has no thread-count API of oneDNN's own: primitives use the
// calling thread's omp_get_max_threads(). The OpenMP entry points are looked up at run time, in the
// OpenMP runtime oneDNN itself loaded, so kerascpp neither links a runtime of its own (clang's
// libomp beside oneDNN's libgomp would be a second, unrelated runtime) nor needs -fopenmp.
// A oneDNN built on another runtime (TBB, as PyPI's onednn-devel is; sequential; threadpool) takes
// no notice of OpenMP's count, even where some other library loaded an OpenMP runtime: there the
// steps run on oneDNN's own threads, unmanaged (current_threads() is 0).
#include <dlfcn.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "keras/config.hpp"
#include "onednn_backend.hpp"
#include "thread_governor.hpp"
#include "thread_pool.hpp"

namespace keras::backend {

namespace {

struct OpenMp {
    void (*set_num_threads)(int) = nullptr;
    int (*get_max_threads)() = nullptr;
    int default_threads = 1;   // the process's count before we changed any: $OMP_NUM_THREADS or the cores
    bool present() const { return set_num_threads && get_max_threads; }
};

const OpenMp& openmp() {
    static const OpenMp o = [] {
        OpenMp r;
        if (dnnl_version()->cpu_runtime != DNNL_RUNTIME_OMP) return r;
        r.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
        r.get_max_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
        if (r.present()) r.default_threads = r.get_max_threads();
        return r;
    }();
    return o;
}

// Whether `threads` more runnable threads fit on the cores now: /proc/loadavg's fourth field counts
// the runnable threads of the whole machine at this instant, the caller (running) included.
bool room_for(int threads) {
    std::ifstream f("/proc/loadavg");
    double l1 = 0, l5 = 0, l15 = 0;
    char slash = 0;
    long running = 0, total = 0;
    if (!(f >> l1 >> l5 >> l15 >> running >> slash >> total)) return true;
    const long cores = std::max(1u, std::thread::hardware_concurrency());
    return running - 1 + threads <= cores;
}

struct StepClock {
    std::optional<ThreadGovernor> governor;
    std::chrono::steady_clock::time_point start;
    ThreadSetting setting;
};

// Per thread: OpenMP's thread count is a per-thread setting, and two models training in two
// threads each measure their own steps.
StepClock& clock_for(StepKind kind) {
    thread_local std::array<StepClock, 3> clocks;
    return clocks[static_cast<size_t>(kind)];
}

// libgomp's entry point for `#pragma omp parallel` (LLVM's libomp provides it too), with the team's
// thread number and size, looked up like the calls above.
struct OmpRegion {
    void (*parallel)(void (*)(void*), void*, unsigned, unsigned) = nullptr;
    int (*thread_num)() = nullptr;
    int (*num_threads)() = nullptr;
    bool present() const { return parallel && thread_num && num_threads; }
};

const OmpRegion& omp_region() {
    static const OmpRegion r = [] {
        OmpRegion o;
        if (!openmp().present()) return o;
        o.parallel = reinterpret_cast<void (*)(void (*)(void*), void*, unsigned, unsigned)>(
            dlsym(RTLD_DEFAULT, "GOMP_parallel"));
        o.thread_num = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
        o.num_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
        return o;
    }();
    return r;
}

unsigned float_mode() {
#if defined(__x86_64__) || defined(__i386__)
    return _mm_getcsr();
#else
    return 0;
#endif
}

void set_float_mode(unsigned mode) {
#if defined(__x86_64__) || defined(__i386__)
    if (_mm_getcsr() != mode) _mm_setcsr(mode);
#else
    (void)mode;
#endif
}

struct Team {
    const std::function<void(int, int)>* body;
    unsigned float_mode;   // the calling thread's MXCSR (denormals flushed: prepare_calling_thread)
};

void team_member(void* data) {
    const OmpRegion& omp = omp_region();
    const Team& team = *static_cast<const Team*>(data);
    const unsigned own_mode = float_mode();
    set_float_mode(team.float_mode);
    (*team.body)(omp.thread_num(), omp.num_threads());
    set_float_mode(own_mode);   // the thread is OpenMP's: leave it as it was
}

// The backend's own threads (thread_pool.hpp), made on the first step that asks for them: as many as
// OpenMP's default count, the calling thread included.
ThreadPool& own_threads() {
    static ThreadPool pool(std::max(openmp().default_threads, 1) - 1, [] {
        if (openmp().present()) openmp().set_num_threads(1);   // primitives run inside: one thread each
    });
    return pool;
}

// The calling thread's team size for our loops in own-threads mode (0: OpenMP's threads run them).
thread_local int own_team_threads = 0;
std::optional<ThreadSetting> forced_setting;   // set_thread_setting

}  // namespace

void run_team(int threads, const std::function<void(int t, int n)>& body) {
    const OmpRegion& omp = omp_region();
    if (threads <= 1 || !omp.present() || ThreadPool::in_team()) {
        body(0, 1);
        return;
    }
    if (own_team_threads > 0) {
        const unsigned mode = float_mode();
        const bool ran = own_threads().run(threads, [&](int t, int n) {
            set_float_mode(mode);
            body(t, n);
        });
        if (!ran) body(0, 1);   // another thread's team holds our threads: this one runs alone
        return;
    }
    Team team{&body, float_mode()};
    omp.parallel(team_member, &team, static_cast<unsigned>(threads), 0);
}

void run_team_of_solo_members(int threads, const std::function<void(int t, int n)>& body) {
    run_team(threads, [&](int t, int n) {
        if (n == 1) return body(t, n);   // the caller's own thread (or a team of one): its count stands
        const OpenMp& omp = openmp();
        const int before = omp.get_max_threads();
        omp.set_num_threads(1);
        body(t, n);
        omp.set_num_threads(before);
    });
}

int threads_for_bytes(int64_t bytes) {
    constexpr int64_t kMinBytesPerThread = int64_t{256} << 10;
    const int64_t most = std::max(1, OneDnnBackend::current_threads());
    return static_cast<int>(std::clamp<int64_t>(bytes / kMinBytesPerThread, 1, most));
}

void run_ranges(int threads, int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& body) {
    run_team(threads, [&](int t, int team) {
        const int64_t begin = n * t / team / align * align;
        const int64_t end = t + 1 == team ? n : n * (t + 1) / team / align * align;
        body(begin, end);
    });
}

int OneDnnBackend::current_threads() {
    if (own_team_threads > 0) return own_team_threads;
    return openmp().present() ? openmp().get_max_threads() : 0;
}

int OneDnnBackend::primitive_threads() { return openmp().present() ? openmp().get_max_threads() : 0; }

void OneDnnBackend::begin_step(StepKind kind) {
    const OpenMp& omp = openmp();
    if (!omp.present()) return;
    StepClock& clock = clock_for(kind);
    const int fixed = config::get_intra_op_parallelism_threads();
    if (forced_setting) {
        clock.setting = *forced_setting;
    } else if (fixed > 0) {
        clock.setting = {fixed, false};
    } else {
        if (!clock.governor) clock.governor.emplace(omp.default_threads, room_for);
        clock.setting = clock.governor->next();
    }
    const bool own = clock.setting.own_threads && clock.setting.threads > 1;
    own_team_threads = own ? clock.setting.threads : 0;
    const int primitive_threads = own ? 1 : clock.setting.threads;
    if (omp.get_max_threads() != primitive_threads) omp.set_num_threads(primitive_threads);
    clock.start = std::chrono::steady_clock::now();
}

void OneDnnBackend::end_step(StepKind kind, int64_t samples) {
    StepClock& clock = clock_for(kind);
    // Fixed or forced settings, and steps of a setting changed since begin_step
    // (set_intra_op_parallelism_threads called from a callback) teach the governor nothing.
    if (!clock.governor || samples <= 0 || forced_setting || config::get_intra_op_parallelism_threads() > 0 ||
        clock.setting != clock.governor->next())
        return;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - clock.start;
    clock.governor->record(elapsed.count() / static_cast<double>(samples));
}

void set_thread_setting(std::optional<ThreadSetting> setting) { forced_setting = setting; }

}  // namespace keras::backend
