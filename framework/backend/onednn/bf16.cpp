// bfloat16 on the CPU (mixed_bfloat16): whether this CPU can, the float32 <-> bfloat16 conversions at
// the primitives' boundaries, and Embedding's bfloat16 output. Tensors stay float32 in memory; the
// kernels that compute in bfloat16 (dense.cpp, rnn.cpp) convert their operands on the way in and
// their outputs on the way out (docs/mixed_precision.md).
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "keras/mixed_precision.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

namespace {
// oneDNN's ISA levels are bit sets that contain the lower ones: AMX contains AVX512_BF16.
bool isa_has_bf16(dnnl::cpu_isa isa) {
    const auto bits = static_cast<unsigned>(isa), bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (bits & bf16) == bf16;
}

uint16_t bf16_of(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);   // quiet NaN
    // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
    return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
}  // namespace

std::string OneDnnBackend::bfloat16_unsupported_reason() {
    if (mixed_precision::bfloat16_disabled()) return "bfloat16 is disabled by mixed_precision::set_bfloat16_disabled";
    // The effective ISA: the CPU's, lowered by DNNL_MAX_CPU_ISA when set. Fixed once oneDNN has run.
    static const bool supported = isa_has_bf16(dnnl::get_effective_cpu_isa());
    if (!supported) return "this CPU lacks AVX512_BF16 and AMX (oneDNN's effective ISA)";
    return {};
}

void to_bf16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_of(src[i]);
}

Bf16Buffer to_bf16(const Tensor& x) {
    Bf16Buffer out(static_cast<size_t>(x.numel()));
    to_bf16(x.data<float>(), out.data(), x.numel());
    return out;
}

void from_bf16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
}

void round_to_bf16_(Tensor& x) {
    float* p = x.data<float>();
    const int64_t n = x.numel();   // numel() recomputes the product of the shape: not per element
    for (int64_t i = 0; i < n; ++i) p[i] = std::bit_cast<float>(static_cast<uint32_t>(bf16_of(p[i])) << 16);
}

// Keras's Embedding under mixed_bfloat16 returns the rows cast to bfloat16; its gradient is the
// float32 scatter-add, as before.
Tensor OneDnnBackend::embedding_bf16(const Tensor& ids, const Tensor& table, const std::string& layer_name) {
    Tensor out = embedding(ids, table, layer_name);
    if (bfloat16_unsupported_reason().empty()) round_to_bf16_(out);
    return out;
}

}  // namespace keras::backend
