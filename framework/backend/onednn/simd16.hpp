// 16-float vectors (GCC's vector extension) and the branch-free exp / tanh / sigmoid our own
// recurrent kernels (small_rnn.cpp, gemm_rnn.cpp) vectorise with. Every helper is always_inline, so
// it takes the ISA of the function it is inlined into: the kernels compile their loops twice, for
// AVX-512 (a [[gnu::target]] function) and for the baseline ISA, and pick one at run time.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace keras::backend::simd16 {

constexpr int64_t kLanes = 16;  // floats in an AVX-512 register

// ---- 16-float vectors (GCC's vector extension): one AVX-512 register in the AVX-512 build, four
// SSE registers in the baseline one. The vector helpers below are inlined into their callers (never
// called across an ABI boundary), so GCC's note that passing 64-byte vectors changes the ABI without
// AVX-512 does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t i16 __attribute__((vector_size(64), aligned(4)));

[[gnu::always_inline]] inline v16 load(const float* p) {
    v16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
[[gnu::always_inline]] inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
// Lane 0 shuffled into every lane: one broadcast instruction (GCC builds `x - v16{}` or a braced
// list of x lane by lane). GCC and clang name the shuffle differently (clang builds the fuzzers).
[[gnu::always_inline]] inline v16 splat(float x) {
#if defined(__clang__)
    return __builtin_shufflevector(v16{x}, v16{x}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
#else
    return __builtin_shuffle(v16{x}, i16{});
#endif
}
// The first n (<= 16) floats at p, zeros after.
[[gnu::always_inline]] inline v16 load_part(const float* p, int64_t n) {
    if (n == kLanes) return load(p);
    alignas(64) float tmp[kLanes] = {};
    for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
    return load(tmp);
}
[[gnu::always_inline]] inline void store_part(float* p, v16 v, int64_t n) {
    if (n == kLanes) return store(p, v);
    alignas(64) float tmp[kLanes];
    store(tmp, v);
    for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

// e^x for x in [-87, 88] (clamped): 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p Taylor of
// degree 7 (error < 1e-8 relative). Rounding by the 1.5 * 2^23 trick needs no rint instruction.
[[gnu::always_inline]] inline v16 vexp(v16 x) {
    x = x < -87.0f ? splat(-87.0f) : x;
    x = x > 88.0f ? splat(88.0f) : x;
    const float magic = 12582912.0f;
    const v16 n = (x * 1.44269504088896341f + magic) - magic;
    const v16 r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    v16 q = splat(1.0f / 5040.0f);
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    q = q * r + 1.0f;
    q = q * r + 1.0f;
    const i16 bits = (__builtin_convertvector(n, i16) + 127) << 23;
    return q * std::bit_cast<v16>(bits);
}

// 1 / x. kFast: AVX-512's 14-bit reciprocal refined by one Newton step (a few ulp from the
// division, at a fraction of its cost), for x finite and nonzero; only a function compiled for
// AVX-512 may ask for it. Otherwise, and under clang (the fuzzing build), the division.
template <bool kFast = false>
[[gnu::always_inline]] inline v16 reciprocal(v16 x) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    if constexpr (kFast) {
        // Inline assembly: GCC checks the zmm operands in the AVX-512 function this is inlined into;
        // an intrinsic would need this helper itself compiled for AVX-512. Clang checks them here.
        v16 r;
        asm("vrcp14ps %1, %0" : "=v"(r) : "v"(x));
        return r * (2.0f - x * r);
    }
#endif
    return 1.0f / x;
}

// tanh: odd Taylor series below |x| = 0.25 (where 1 - 2 / (e^2x + 1) would cancel), that formula
// above; |x| > 9 is 1 in float. NaN stays NaN.
template <bool kFast = false>
[[gnu::always_inline]] inline v16 vtanh(v16 x) {
    v16 a = x < 0.0f ? -x : x;
    a = a > 9.0f ? splat(9.0f) : a;
    const v16 a2 = a * a;
    v16 q = splat(62.0f / 2835.0f);
    q = q * a2 - 17.0f / 315.0f;
    q = q * a2 + 2.0f / 15.0f;
    q = q * a2 - 1.0f / 3.0f;
    q = q * a2 * a + a;
    const v16 big = 1.0f - 2.0f * reciprocal<kFast>(vexp(2.0f * a) + 1.0f);   // e^2a <= e^18: finite
    const v16 t = a < 0.25f ? q : big;
    const v16 signed_t = x < 0.0f ? -t : t;
    return x != x ? x : signed_t;
}

template <bool kFast = false>
[[gnu::always_inline]] inline v16 vsigmoid(v16 x) {
    const v16 y = reciprocal<kFast>(1.0f + vexp(-x));   // vexp clamps: 1 + e^-x <= 1 + e^87, finite
    return x != x ? x : y;
}

}  // namespace keras::backend::simd16
