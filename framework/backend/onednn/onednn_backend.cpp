#include "onednn_backend.hpp"

#include <cstdlib>
#include <memory>

#include "keras/errors.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace keras::backend {

namespace {
// Flush denormals to zero (FTZ + DAZ), as TensorFlow does: gradients backpropagated through long
// sequences decay into the denormal range, where x86 float arithmetic is ~100x slower. Set on the
// calling thread before oneDNN starts its OpenMP threads, which inherit it.
void flush_denormals() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
// oneDNN's CPU engine. A oneDNN built for SYCL (PyPI's onednn-devel) creates it only where a SYCL
// CPU device is installed: elsewhere say which oneDNN that is and what to use instead.
dnnl::engine cpu_engine() {
    try {
        return dnnl::engine(dnnl::engine::kind::cpu, 0);
    } catch (const dnnl::error& e) {
        const dnnl_version_t* v = dnnl_version();
        runtime_error("oneDNN {}.{}.{} could not create a CPU engine ({}){}: build kerascpp against a oneDNN "
                      "for the CPU (Debian's libdnnl-dev, or scripts/build_onednn3.sh; docs/install.md)",
                      v->major, v->minor, v->patch, e.what(),
                      v->cpu_runtime == DNNL_RUNTIME_SYCL ? "; it is a SYCL build and finds no SYCL CPU device" : "");
    }
}
}  // namespace

OneDnnBackend::OneDnnBackend() : engine_((prepare_calling_thread(), cpu_engine())) {}

void OneDnnBackend::prepare_calling_thread() {
    thread_local const bool prepared = (flush_denormals(), true);
    (void)prepared;
}

// thread_local in a member function: one per thread, not per object, which is right because the
// process has one OneDnnBackend (backend::get's).
dnnl::stream& OneDnnBackend::stream() {
    thread_local dnnl::stream s(engine_);
    return s;
}

dnnl::primitive_attr OneDnnBackend::user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

ScratchpadBuffer scratchpad_buffer(size_t bytes) {
    ScratchpadBuffer buffer(std::aligned_alloc(64, (bytes + 63) / 64 * 64), &std::free);
    if (!buffer) runtime_error("out of memory: oneDNN asks for a {}-byte scratchpad", bytes);
    return buffer;
}

void OneDnnBackend::run(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args) {
    const dnnl::memory::desc md = dnnl_compat::scratchpad_desc(p);
    const size_t bytes = md.get_size();
    if (bytes > 0) {
        // One buffer per thread, grown to the largest request: primitives of one thread run one at a time.
        thread_local ScratchpadBuffer buffer(nullptr, &std::free);
        thread_local size_t capacity = 0;
        if (bytes > capacity) {   // on an allocation error both stay as they were
            buffer = scratchpad_buffer(bytes);
            capacity = bytes;
        }
        args.insert_or_assign(DNNL_ARG_SCRATCHPAD, dnnl::memory(md, engine_, buffer.get()));
    }
    p.execute(stream(), args);
    stream().wait();
}

void OneDnnBackend::reorder(const dnnl::memory& from, const dnnl::memory& to) {
    run(dnnl::reorder(dnnl::reorder::primitive_desc(from, to, user_scratchpad())),
        {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

CacheStats OneDnnBackend::matmul_cache_stats() {
    std::lock_guard lock(matmul_mutex_);
    return stats_of(matmul_cache_);
}

}  // namespace keras::backend
