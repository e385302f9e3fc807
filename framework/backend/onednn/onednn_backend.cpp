#include "onednn_backend.hpp"

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
}  // namespace

OneDnnBackend::OneDnnBackend() : engine_((flush_denormals(), dnnl::engine::kind::cpu), 0), stream_(engine_) {}

}  // namespace keras::backend
