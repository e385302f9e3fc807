// Keras's mixed precision: dtype policies.
//
//     keras::mixed_precision::set_global_policy("mixed_bfloat16");   // layers made after this
//     model.add(layers::Dense(1, {.activation = "sigmoid", .dtype = "float32"}));   // outputs in float32
//
// A policy names a variable dtype (what the weights and the optimizer's state are kept in) and a
// compute dtype (what the layer's kernels compute in). "mixed_bfloat16" keeps float32 variables and
// computes in bfloat16. kerascpp's tensors stay float32 in memory: bfloat16 lives inside the fused
// kernels (Dense's matmuls, Embedding's output, the SimpleRNN / LSTM / GRU primitives), which round
// their inputs, weights and outputs to bfloat16 (see docs/mixed_precision.md). Where the device
// cannot compute in bfloat16 (a CPU without AVX512_BF16 or AMX, the GPU for now) the layers compute
// in float32 and Model::summary() says so.
#pragma once

#include "keras/export.hpp"

#include <string>

namespace keras::mixed_precision {

// Keras 3's DTypePolicy. Names: "float32", "mixed_bfloat16" and "mixed_float16"; any other is a
// ValueError that lists these. No backend has float16 kernels yet: "mixed_float16" layers compute in
// float32 (summary() says so), and compile() still wraps the optimizer in a LossScaleOptimizer as
// Keras does, so programs written for it run unchanged.
class KERAS_API DTypePolicy {
public:
    DTypePolicy(const std::string& name = "float32");   // NOLINT: a name converts, as in Keras
    DTypePolicy(const char* name) : DTypePolicy(std::string(name)) {}   // NOLINT
    const std::string& name() const { return name_; }   // Keras's policy.name
    const std::string& compute_dtype() const { return compute_dtype_; }   // "float32", "bfloat16" or "float16"
    const std::string& variable_dtype() const { return variable_dtype_; }   // always "float32"
    bool mixed_bfloat16() const { return compute_dtype_ == "bfloat16"; }   // Whether it asks for bfloat16 compute.
    bool mixed_float16() const { return compute_dtype_ == "float16"; }     // Whether it asks for float16 compute.
    bool operator==(const DTypePolicy& other) const { return name_ == other.name_; }

private:
    std::string name_, compute_dtype_, variable_dtype_;
};

// The policy of layers made from now on without a dtype of their own (Keras's set_global_policy).
KERAS_API void set_global_policy(const DTypePolicy& policy);
// The current global policy ("float32" until set).
KERAS_API DTypePolicy global_policy();

// For tests and comparisons: true makes the CPU report no bfloat16 support, so mixed_bfloat16 layers
// compute in float32 as on a CPU without AVX512_BF16 / AMX (summary() says so). false: the CPU decides.
KERAS_API void set_bfloat16_disabled(bool disabled);
KERAS_API bool bfloat16_disabled();   // Whether set_bfloat16_disabled(true) is in force.

}  // namespace keras::mixed_precision
