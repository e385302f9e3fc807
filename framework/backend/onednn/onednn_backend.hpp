// The CPU backend: oneDNN primitives for the heavy work (matmul, eltwise, RNN cells), plain loops
// for the light work (embedding gather, optimizer updates). The definitions are split by topic:
// dense.cpp, eltwise.cpp, embedding.cpp, conv_pool.cpp, normalization.cpp, rnn.cpp (oneDNN RNN primitives), rnn_fallback.cpp
// (step-by-step loop for options the primitives lack), optimizer_updates.cpp.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

#include "onednn_compat.hpp"   // oneDNN itself, and what differs between its 2.x and 3.x

#include "keras/backend.hpp"
#include "lru_cache.hpp"
#include "thread_governor.hpp"

namespace keras::backend {

// Threads: one instance serves the whole process (backend::get), and models may train in several
// threads at once. Each thread executes on its own stream (stream()); the primitive caches are
// behind mutexes and hand out handles, so an entry evicted by one thread stays valid for another.
// oneDNN's own scratchpads (library mode) may not be shared by primitives used from several threads,
// so every primitive is made with user_scratchpad() and executed by run(), which lends it the
// calling thread's scratchpad.
class OneDnnBackend final : public Backend {
public:
    // Capacities of the primitive caches (least recently used entries go first). A Dense layer
    // uses 3 matmul shapes per batch size in training (forward, dx, dkernel), 1 in predict; an RNN
    // layer one entry per (shape, training), e.g. 4 for fit() with validation and a last partial batch;
    // an RNN entry also holds its scratchpads, which grow with the batch size, hence the small capacity.
    static constexpr size_t kMatmulCacheCapacity = 256;
    static constexpr size_t kRnnCacheCapacity = 16;

    OneDnnBackend();
    Device device() const override { return Device::cpu(); }
    std::string name() const override { return "oneDNN CPU"; }
    void begin_step(StepKind kind) override;
    void end_step(StepKind kind, int64_t samples) override;
    // The team size for the calling thread's own parallel loops (run_team): its step's thread count,
    // whoever's threads run them (0 when oneDNN is not on OpenMP).
    static int current_threads();
    // The OpenMP thread count the calling thread's primitives run with: current_threads(), or 1 with
    // our own threads (0 when oneDNN is not on OpenMP). Part of the primitive cache keys: oneDNN does
    // not promise that a primitive created for one count runs correctly with another.
    static int primitive_threads();

    dnnl::engine& engine() { return engine_; }
    // The calling thread's stream (created on its first call).
    dnnl::stream& stream();
    // Sets the calling thread's float mode (denormals flushed to zero) once per thread: every
    // thread computes as the first one does. backend::get calls it.
    static void prepare_calling_thread();

    // Attributes for every primitive made here: the scratchpad is ours (see run()).
    static dnnl::primitive_attr user_scratchpad();
    // Executes p on the calling thread's stream with that thread's scratchpad, and waits.
    void run(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args);
    // Copies `from` into `to`, converting between their layouts (a reorder primitive, run by run()).
    void reorder(const dnnl::memory& from, const dnnl::memory& to);

    // Entries, capacity and evictions of the primitive caches, for tests.
    CacheStats matmul_cache_stats();
    CacheStats rnn_cache_stats();

    Tensor matmul_bias(const Tensor& x, const Tensor& kernel, const Tensor& bias) override;
    void matmul_bias_backward(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                              Tensor& dkernel, Tensor* dbias) override;

    // bfloat16 (bf16.cpp): supported where oneDNN's ISA has AVX512_BF16 (or AMX) and
    // mixed_precision::set_bfloat16_disabled is not in force.
    std::string bfloat16_unsupported_reason() override;
    Tensor matmul_bias_bf16(const Tensor& x, const Tensor& kernel, const Tensor& bias) override;
    void matmul_bias_backward_bf16(const Tensor& x, const Tensor& kernel, const Tensor& dy, Tensor& dx,
                                   Tensor& dkernel, Tensor* dbias) override;
    Tensor embedding_bf16(const Tensor& ids, const Tensor& table, const std::string& layer_name) override;

    Tensor activation(Activation a, const Tensor& x) override;
    Tensor activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) override;

    Tensor embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) override;
    Tensor embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) override;

    RnnPath rnn_path(const RnnSpec& spec) override;
    RnnForward rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                           const Tensor& c0, bool training, const RnnDropoutMasks& masks = {},
                           const std::vector<int32_t>& lengths = {}) override;
    RnnGradients rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                              const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) override;

    Tensor gather_steps(const Tensor& x, const std::vector<int32_t>& idx, int64_t steps) override;
    Tensor scatter_add_steps(const Tensor& y, const std::vector<int32_t>& idx, int64_t steps) override;

    Tensor mean_over_steps(const Tensor& x) override;
    Tensor mean_over_steps_backward(const Tensor& dy, int64_t steps) override;

    Tensor multiply(const Tensor& a, const Tensor& b) override;
    Tensor add(const Tensor& a, const Tensor& b) override;
    void scale_(Tensor& x, float factor) override;
    double sum_squares(const Tensor& x) override;
    void clip_(Tensor& x, float lo, float hi) override;

    void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum, float lr, float momentum_factor,
                    bool nesterov) override;
    void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor& vhat, float lr,
                     float beta_1, float beta_2, float epsilon, int64_t step) override;
    void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum,
                        Tensor& average_grad, float lr, float rho, float momentum_factor,
                        float epsilon) override;
    void adagrad_update(Tensor& param, const Tensor& grad, Tensor& accumulator, float lr,
                        float epsilon) override;

    Tensor loss(const LossSpec& spec, const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                Tensor* grad) override;
    Tensor metric_sum(const MetricSpec& spec, const Tensor& y_true, const Tensor& y_pred,
                      const Tensor& mask) override;

    // conv_pool.cpp: oneDNN's convolution and pooling primitives.
    Tensor conv1d(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel) override;
    void conv1d_backward(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel, const Tensor& dy,
                         Tensor& dx, Tensor& dkernel) override;
    PoolForward pool1d(PoolKind kind, const Window1D& w, const Tensor& x, bool training) override;
    Tensor pool1d_backward(PoolKind kind, const Window1D& w, const Tensor& x, const PoolForward& fwd,
                           const Tensor& dy) override;

    // normalization.cpp: oneDNN's layer_normalization and batch_normalization primitives.
    NormForward layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                           bool training) override;
    void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                             const NormForward& fwd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                             Tensor& dbeta) override;

    NormForward batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon) override;
    void batch_norm_training_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                      const NormForward& fwd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                      Tensor& dbeta) override;

    Tensor unary(UnaryOp op, const Tensor& x) override;
    Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
    Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) override;
    Tensor softmax(const Tensor& x, int axis, bool log) override;
    Tensor matmul(const Tensor& a, const Tensor& b) override;
    Tensor transpose(const Tensor& x, const std::vector<int>& perm) override;
    Tensor concatenate(const std::vector<Tensor>& xs, int axis) override;
    Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const Shape& shape) override;
    Tensor slice_backward(const Tensor& dy, const Shape& full, const std::vector<int64_t>& start) override;
    Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) override;
    Tensor take(const Tensor& x, const Tensor& indices, int axis) override;
    Tensor take_backward(const Tensor& dy, const Tensor& indices, int axis, const Shape& x_shape) override;
    Tensor clip(const Tensor& x, float lo, float hi) override;

private:
    // The matmul primitive for a shape: built once, executed many times (a handle: copies share it).
    dnnl::matmul matmul_for(int64_t m, int64_t k, int64_t n, bool transpose_a, bool transpose_b, bool bias,
                            bool bf16 = false);
    // The RNN cache, created on first use (rnn.cpp).
    struct RnnCache;
    RnnCache& rnn_cache();

    dnnl::engine engine_;
    // matmul primitives by (m, k, n, transpose_a, transpose_b, bias, bf16, threads).
    using MatmulKey = std::tuple<int64_t, int64_t, int64_t, bool, bool, bool, bool, int>;
    std::mutex matmul_mutex_;
    LruCache<MatmulKey, dnnl::matmul> matmul_cache_{kMatmulCacheCapacity};
    // RNN primitives, scratchpads and workspaces by shape (rnn.cpp).
    std::once_flag rnn_cache_once_;
    std::shared_ptr<RnnCache> rnn_cache_;
};

// 64-byte aligned memory for a oneDNN scratchpad of `bytes` (rounded up to 64); out of memory is a
// runtime_error naming the size.
using ScratchpadBuffer = std::unique_ptr<void, decltype(&std::free)>;
ScratchpadBuffer scratchpad_buffer(size_t bytes);

// A CPU tensor's storage seen as oneDNN memory of descriptor md (no copy: oneDNN's API takes a
// non-const pointer even for inputs).
inline dnnl::memory wrap(const dnnl::engine& engine, const dnnl::memory::desc& md, const Tensor& t) {
    return dnnl::memory(md, engine, const_cast<void*>(t.raw()));
}

// Whether every tensor is float32 with no empty axis: what this backend hands to oneDNN's primitives
// (the others take the host loops or the defaults).
inline bool all_f32(std::initializer_list<const Tensor*> ts) {
    for (const Tensor* t : ts)
        if (t->dtype() != DType::float32 || t->numel() == 0) return false;
    return true;
}

// ---- bfloat16 conversions (bf16.cpp): round to nearest even, NaN stays NaN.
using Bf16Buffer = std::vector<uint16_t>;
void to_bf16(const float* src, uint16_t* dst, int64_t n);
Bf16Buffer to_bf16(const Tensor& x);   // a float32 CPU tensor's values as bfloat16
void from_bf16(const uint16_t* src, float* dst, int64_t n);
void round_to_bf16_(Tensor& x);   // each value rounded to the nearest bfloat16, in place

// Whether a float32 CPU tensor holds a NaN (eltwise.cpp). oneDNN 2.6 drops NaN in some primitives
// (relu, exp, clip, softmax, binary and reduction max / min): those ops check first and run the host
// loops, which keep it, when there is one.
bool has_nan(const Tensor& x);

// Step-by-step RNN used when a spec cannot run on a oneDNN primitive (rnn_fallback.cpp).
// masks: Keras's per-gate dropout masks (see RnnDropoutMasks), applied at every step; lengths as in
// Backend::rnn_forward (empty: every sample T steps).
RnnForward rnn_fallback_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                const Tensor& c0, const RnnDropoutMasks& masks = {},
                                const std::vector<int32_t>& lengths = {});
RnnGradients rnn_fallback_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                   const Tensor& d_sequences, const Tensor& dh, const Tensor& dc);
// The input checks are the contract's (check_rnn_inputs / check_rnn_lengths in keras/backend.hpp).

// ---- Our fused SimpleRNN for small hidden sizes (small_rnn.cpp), run instead of oneDNN's
// vanilla_rnn primitive when small_rnn_chosen() says so. Same semantics as the primitive's path
// (go_backwards, lengths, h0); dropout masks and relu over non-finite inputs take the step loop
// before either is considered.
inline constexpr int64_t kSmallRnnMaxUnits = 64;          // the kernel's limit (its state arrays)
// The automatic rule: units and input features up to these. bench/bench_small_rnn measured the
// kernel faster than oneDNN's float32 vanilla_rnn at every shape of its grid (units 8-64, features
// 16-2048, batch 32-256, 1 and 2 threads: 1.09x to 10.6x, docs/performance.md); past 2048 features
// it is unmeasured, so oneDNN keeps those.
inline constexpr int64_t kSmallRnnAutoMaxUnits = 64;
inline constexpr int64_t kSmallRnnAutoMaxFeatures = 2048;
// How an environment variable or a test chooses between one of our kernels and oneDNN's primitives.
// automatic: the kernel's measured rule; always / never: whenever the kernel supports the spec / not at all.
enum class KernelMode { automatic, always, never };
// $variable as a mode (auto, on / always / 1, off / never / 0; unset: auto); a ValueError naming the
// variable otherwise (rnn.cpp).
KernelMode kernel_mode_from_environment(const char* variable);
using SmallRnnMode = KernelMode;
// $KERASCPP_SMALL_RNN (auto, on / always / 1, off / never / 0; unset: auto) unless a mode was set
// with set_small_rnn_mode (tests, benchmarks); nullopt returns to the environment's.
SmallRnnMode small_rnn_mode();
void set_small_rnn_mode(std::optional<SmallRnnMode> mode);
// Tests: run the baseline-ISA build of our kernels (this one and gemm_rnn.cpp's gate loops) even
// where the CPU has AVX-512 (false: pick by CPU).
void set_small_rnn_baseline_isa(bool baseline);
bool small_rnn_uses_avx512();
// Whether the kernel can run the spec at all: SimpleRNN, tanh / relu / sigmoid, units <= 64.
bool small_rnn_supports(const RnnSpec& spec);
// Whether rnn_forward runs the kernel for this spec with `features` input features.
bool small_rnn_chosen(const RnnSpec& spec, int64_t features);
RnnForward small_rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                             bool training, const std::vector<int32_t>& lengths);
// fwd must come from small_rnn_forward with training (is_small_rnn_forward).
RnnGradients small_rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                const Tensor& d_sequences, const Tensor& dh);
bool is_small_rnn_forward(const RnnForward& fwd);

// ---- Our fused LSTM for inference at small batches (small_rnn.cpp), run instead of oneDNN's lstm
// primitive when small_lstm_chosen() says so: not training, and under the same switch as the
// small-RNN kernel ($KERASCPP_SMALL_RNN / set_small_rnn_mode). Same semantics as the primitive's
// path (go_backwards, lengths, h0 / c0); dropout masks take the step loop before.
// The automatic rule: batch and units up to these. Measured with bench_latency for LSTM(128), T = 200,
// 2 threads (docs/performance.md): the kernel 2.6 ms against oneDNN's 3.2–3.4 at batch 8, 5.2–5.4
// against 4.5 at batch 16. The units limit is provisional.
inline constexpr int64_t kSmallLstmAutoMaxBatch = 8;
inline constexpr int64_t kSmallLstmAutoMaxUnits = 256;
// Whether the kernel can run the spec: LSTM, tanh / sigmoid, units a multiple of 16, float32.
bool small_lstm_supports(const RnnSpec& spec);
bool small_lstm_chosen(const RnnSpec& spec, int64_t batch, bool training);
// The forward only (out.saved stays empty: no backward from it).
RnnForward small_lstm_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                              const Tensor& c0, const std::vector<int32_t>& lengths);
// Tests: how many forwards the kernel has run in this process (which path a call took).
int64_t small_lstm_runs();

// Our own parallel loops (the small-RNN / LSTM kernels, the optimizer updates): body(t, n) on a team
// of up to `threads` threads, t = 0 .. n - 1, n the team's actual size (possibly smaller): OpenMP's,
// in the runtime oneDNN loaded, or our own (thread_pool.hpp) when the step's setting says so
// (threads.cpp); every thread with the calling thread's floating-point mode (denormals flushed or
// not), so work split by t gives the same bits whichever thread runs it. threads <= 1, no OpenMP
// runtime, or a call from inside a team: body(0, 1) on the calling thread. The body must not throw.
void run_team(int threads, const std::function<void(int t, int n)>& body);
// run_team whose members each see one OpenMP thread: oneDNN primitives a member makes and runs
// inside body use its thread alone, so the members run their own products side by side (made for a
// count of 1: a primitive made for more threads must not run inside a parallel region).
void run_team_of_solo_members(int threads, const std::function<void(int t, int n)>& body);
// [0, n) in one contiguous range per member of a run_team team: body(begin, end), each begin a
// multiple of `align` (a range may be empty when n is small).
void run_ranges(int threads, int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& body);
// Tests, benchmarks: every step runs with this setting, whatever the governor and
// keras::config::set_intra_op_parallelism_threads say; nullopt returns to them.
void set_thread_setting(std::optional<ThreadSetting> setting);
// The threads a memory-bound pass over `bytes` pays for: one per 256 KB, up to the backend's count,
// at least one (below 256 KB a thread, starting a team costs more than it saves).
int threads_for_bytes(int64_t bytes);
// Its recurrence splits the units among threads (the backend's current count), at least this many
// units each (a multiple of 32): below that the per-step barrier costs more than a thread saves.
// Measured at batch 1, T = 200 (docs/performance.md): LSTM(64) split in two took 0.22–0.24 ms against
// 0.21 unsplit; LSTM(128) 0.49 against 0.63, LSTM(256) 1.22 against 2.1–2.3.
inline constexpr int64_t kSmallLstmMinUnitsPerThread = 64;
// Tests, benchmarks: this many threads for the recurrence whatever the rule and the governor say (at
// most one per 32 units; units not a multiple of 32 take one); nullopt returns to the rule.
void set_small_lstm_threads(std::optional<int> threads);

// ---- Our own LSTM / GRU (reset_after) of matrix products (gemm_rnn.cpp), run instead of oneDNN's
// lstm / lbr_gru primitives when gemm_rnn_chosen() says so. Same semantics as the primitive's path
// (go_backwards, lengths, h0 / c0); dropout masks take the step loop before.
// The automatic rule, from bench_gemm_rnn (forward + backward and inference forward against the
// primitives, batch 16-256, units 64-512, T = 100-200, 2 threads; docs/performance.md):
// - bfloat16: units up to kGemmRnnAutoMaxUnits (1.1-3.0x the primitive; at 512 units 0.7-1.0x),
//   and GRU in training at any size (lbr_gru's bfloat16 backward is slow: 1.2x at 512 units);
// - float32: LSTM in training, units up to kGemmRnnAutoMaxUnits (1.1-1.4x; about even at 512);
//   GRU in training up to kGemmRnnAutoMaxGruFloat32Units (1.1-2.5x at 64-128 units; 0.7-1.4x at
//   256 and 0.9-1.1x at 512, depending on the batch). float32 inference stays with the primitives
//   (0.7-1.1x past batch 16).
inline constexpr int64_t kGemmRnnAutoMaxUnits = 256;
inline constexpr int64_t kGemmRnnAutoMaxGruFloat32Units = 128;
// always: float32 specs then run float32 products.
using GemmRnnMode = KernelMode;
// $KERASCPP_GEMM_RNN (auto, on / always / 1, off / never / 0; unset: auto) unless a mode was set with
// set_gemm_rnn_mode (tests, benchmarks); nullopt returns to the environment's.
GemmRnnMode gemm_rnn_mode();
void set_gemm_rnn_mode(std::optional<GemmRnnMode> mode);
// LSTM, or GRU with reset_after, with Keras's default activations (tanh, sigmoid).
bool gemm_rnn_supports(const RnnSpec& spec);
// bf16: whether the call computes in bfloat16 (the spec's precision, where this CPU runs it).
bool gemm_rnn_chosen(const RnnSpec& spec, bool bf16, bool training);
RnnForward gemm_rnn_forward(OneDnnBackend& be, const RnnSpec& spec, const Tensor& x, const RnnWeights& w,
                            const Tensor& h0, const Tensor& c0, bool training, bool bf16,
                            const std::vector<int32_t>& lengths);
// fwd must come from gemm_rnn_forward with training (is_gemm_rnn_forward); it holds the weights the
// forward ran with.
RnnGradients gemm_rnn_backward(OneDnnBackend& be, const RnnSpec& spec, RnnForward& fwd, const Tensor& d_sequences,
                               const Tensor& dh, const Tensor& dc);
bool is_gemm_rnn_forward(const RnnForward& fwd);

// ---- Per-sample lengths on the CPU (rnn_lengths.cpp), shared by the primitive and the step loop.
// x (N, T, C) with each sample's first lengths[n] steps reversed (all T when lengths is empty);
// padding steps stay put. Its own inverse.
Tensor reverse_valid_steps(const Tensor& x, const std::vector<int32_t>& lengths);
// (N, H): row n = per_step[(len - 1) * step_stride + n * row_stride ...], or initial's row (zeros
// when undefined) for len == 0.
Tensor states_at_lengths(const float* per_step, int64_t step_stride, int64_t row_stride, const Tensor& initial,
                         const std::vector<int32_t>& lengths, int64_t H);
// (N, T, H): d_sequences (undefined = zeros) at t < len, zeros after, plus dh (undefined = none)
// at step len - 1.
Tensor sequences_gradient_at_lengths(const Tensor& d_sequences, const Tensor& dh, const std::vector<int32_t>& lengths,
                                     int64_t T, int64_t H);
// d_initial[n] += d_final[n] for the samples of length 0 (their final state IS the initial one).
void add_rows_of_empty_samples(Tensor& d_initial, const Tensor& d_final, const std::vector<int32_t>& lengths);

}  // namespace keras::backend
