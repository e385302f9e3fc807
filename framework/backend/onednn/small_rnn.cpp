// Our own fused SimpleRNN for small hidden sizes (issue 13 item 2), used instead of oneDNN's
// vanilla_rnn primitive when small_rnn_chosen() says so.
//
// Why: with H = 16 a time step is a few hundred FLOPs per sample; oneDNN's primitive pays a GEMM
// call and an OpenMP barrier per step, so W1 (SimpleRNN(16), T = 130) was bound by that overhead
// and 2 threads were slower than 1. Here each thread takes whole blocks of samples and runs the
// entire recurrence for them in one go: the block's states (kBlock x H floats) stay in registers /
// L1, there is one parallel region per call and no barrier per step.
//
// Layout and semantics are those of rnn.cpp: Keras's kernel (C, H), recurrent_kernel (H, H) and
// bias (H) read as they are; go_backwards reverses each sample's real steps first (and dx back);
// lengths as in rnn_lengths.cpp (all T steps run, states read at len - 1, gradients past len zero).
//
// Determinism: a sample's forward arithmetic does not depend on which thread runs it, and the
// weight gradients are summed per fixed block of kBlock samples, then over the blocks in order, so
// any thread count gives the same bits.
//
// Vectorisation: the loops work on 16-float vectors along H (or C) and are compiled twice, for
// AVX-512 (with FMA) and for the baseline ISA, picked at run time (__builtin_cpu_supports). tanh and
// the sigmoid use the branch-free exp below (libm's tanhf does not vectorise). The two builds round
// differently (FMA), both within the RNN tolerances; one machine always runs the same one.
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"
#include "simd16.hpp"

namespace keras::backend {

namespace {

using namespace simd16;

constexpr int64_t kBlock = 8;   // samples per block: the unit of work and of gradient partial sums

[[gnu::always_inline]] inline v16 activate(Activation a, v16 x) {
    switch (a) {
        case Activation::tanh: return vtanh(x);
        case Activation::sigmoid: return vsigmoid(x);
        default: return (x > 0.0f || x != x) ? x : v16{};   // relu, NaN kept as Keras does
    }
}

// f'(x) from y = f(x): all three activations allow it, so the forward keeps only its outputs.
[[gnu::always_inline]] inline v16 act_grad_from_output(Activation a, v16 y) {
    switch (a) {
        case Activation::tanh: return 1.0f - y * y;
        case Activation::sigmoid: return y * (1.0f - y);
        default: return y > 0.0f ? splat(1.0f) : v16{};
    }
}

// ---- The problem, as the per-block loops see it. Arrays are row-major.
struct Problem {
    int64_t N, T, C, H, Hp, Cp;   // Hp: H padded to a multiple of 16; Cp: C likewise
    Activation act;
    const float* x;        // (N, T, C), processing order
    const float* K;        // (C, Hp)
    const float* U;        // (H, Hp)
    const float* bias;     // (Hp)
    const float* Kt;       // (H, Cp): K transposed (backward)
    const float* Ut;       // (H, Hp): U transposed (backward)
    const float* h0;       // (N, H) or null: zeros
    float* seq;            // (N, T, H): the outputs (written by the forward, read by the backward)
    // Backward only.
    const float* dseq;     // (N, T, H) or null
    const float* dh;       // (N, H) or null: gradient on the state after step T - 1
    float* dx;             // (N, T, C)
    float* dh0;            // (N, H)
    float* partials;       // per block: dK (C, Hp), dU (H, Hp), db (Hp)
    int64_t partial_size() const { return (C + H + 1) * Hp; }
    // The state before step s of sample n; null for h0 when none was given (zeros).
    const float* h_before(int64_t n, int64_t s) const {
        return s > 0 ? seq + (n * T + s - 1) * H : (h0 ? h0 + n * H : nullptr);
    }
};

// acc[b] += sum over rows r < R of src[b][r] * M[r] (M's rows Hp apart): the input and recurrent
// products, every sample of the block an independent accumulator.
template <int kW, bool kFull>
[[gnu::always_inline]] inline void add_products(v16 (*acc)[kW], const float* const* src, int64_t B, const float* M,
                                                int64_t R, int64_t Hp) {
    if (kFull) B = kBlock;
    for (int64_t r = 0; r < R; ++r) {
        v16 m[kW];
        for (int w = 0; w < kW; ++w) m[w] = load(M + r * Hp + w * kLanes);
        for (int64_t b = 0; b < B; ++b) {
            const v16 v = splat(src[b][r]);
            for (int w = 0; w < kW; ++w) acc[b][w] += v * m[w];
        }
    }
}

// out[r] += sum over b of src[b][r] * dp[b] for rows r < R (Hp apart): the weight gradients' outer
// products, four rows at a time so that four accumulation chains run side by side.
template <int kW, bool kFull>
[[gnu::always_inline]] inline void add_outer_products(float* out, const float* const* src, int64_t B,
                                                      const v16 (*dp)[kW], int64_t R, int64_t Hp) {
    if (kFull) B = kBlock;
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) {
        v16 o[4][kW];
        for (int i = 0; i < 4; ++i)
            for (int w = 0; w < kW; ++w) o[i][w] = load(out + (r + i) * Hp + w * kLanes);
        for (int64_t b = 0; b < B; ++b)
            for (int i = 0; i < 4; ++i) {
                const v16 v = splat(src[b][r + i]);
                for (int w = 0; w < kW; ++w) o[i][w] += v * dp[b][w];
            }
        for (int i = 0; i < 4; ++i)
            for (int w = 0; w < kW; ++w) store(out + (r + i) * Hp + w * kLanes, o[i][w]);
    }
    for (; r < R; ++r)
        for (int w = 0; w < kW; ++w) {
            v16 o = load(out + r * Hp + w * kLanes);
            for (int64_t b = 0; b < B; ++b) o += splat(src[b][r]) * dp[b][w];
            store(out + r * Hp + w * kLanes, o);
        }
}

// Forward of samples [n0, n0 + B): every step, the block's states in registers.
template <int kW, bool kFull>
[[gnu::always_inline]] inline void forward_block(const Problem& p, int64_t n0, int64_t B) {
    if (kFull) B = kBlock;
    const int64_t H = p.H, C = p.C, T = p.T;
    const float* xs[kBlock];
    const float* hs[kBlock];
    for (int64_t s = 0; s < T; ++s) {
        v16 acc[kBlock][kW];
        for (int64_t b = 0; b < B; ++b)
            for (int w = 0; w < kW; ++w) acc[b][w] = load(p.bias + w * kLanes);
        for (int64_t b = 0; b < B; ++b) {
            xs[b] = p.x + ((n0 + b) * T + s) * C;
            hs[b] = p.h_before(n0 + b, s);
        }
        add_products<kW, kFull>(acc, xs, B, p.K, C, p.Hp);
        if (hs[0]) add_products<kW, kFull>(acc, hs, B, p.U, H, p.Hp);
        for (int64_t b = 0; b < B; ++b)
            for (int w = 0; w < kW; ++w)
                store_part(p.seq + ((n0 + b) * T + s) * H + w * kLanes, activate(p.act, acc[b][w]),
                           std::min<int64_t>(kLanes, H - w * kLanes));
    }
}

// Backpropagation through time of samples [n0, n0 + B) into the block's partial sums `part`.
template <int kW, bool kFull>
[[gnu::always_inline]] inline void backward_block(const Problem& p, int64_t n0, int64_t B, float* part) {
    if (kFull) B = kBlock;
    const int64_t H = p.H, C = p.C, T = p.T, Hp = p.Hp;
    std::fill_n(part, p.partial_size(), 0.0f);
    float* dK = part;
    float* dU = part + C * Hp;
    float* db = dU + H * Hp;
    v16 dnext[kBlock][kW];                         // gradient on the state entering the step
    v16 dp[kBlock][kW];                            // gradient on the pre-activation
    alignas(64) float dpf[kBlock][kW * kLanes];    // the same, as floats (broadcast from)
    const float* xs[kBlock];
    const float* hs[kBlock];
    for (int64_t b = 0; b < B; ++b)
        for (int w = 0; w < kW; ++w)
            dnext[b][w] = p.dh ? load_part(p.dh + (n0 + b) * H + w * kLanes, std::min<int64_t>(kLanes, H - w * kLanes))
                               : v16{};
    for (int64_t s = T - 1; s >= 0; --s) {
        for (int64_t b = 0; b < B; ++b) {
            const int64_t row = ((n0 + b) * T + s) * H;
            xs[b] = p.x + ((n0 + b) * T + s) * C;
            hs[b] = p.h_before(n0 + b, s);
            for (int w = 0; w < kW; ++w) {
                const int64_t lanes = std::min<int64_t>(kLanes, H - w * kLanes);
                v16 d = dnext[b][w];
                if (p.dseq) d += load_part(p.dseq + row + w * kLanes, lanes);
                dp[b][w] = d * act_grad_from_output(p.act, load_part(p.seq + row + w * kLanes, lanes));
                store(dpf[b] + w * kLanes, dp[b][w]);
            }
        }
        // dx_t = dp K^T, 16 features at a time (K^T's rows padded to Cp).
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
            v16 acc[kBlock] = {};
            for (int64_t j = 0; j < H; ++j) {
                const v16 kt = load(p.Kt + j * p.Cp + c0);
                for (int64_t b = 0; b < B; ++b) acc[b] += splat(dpf[b][j]) * kt;
            }
            for (int64_t b = 0; b < B; ++b)
                store_part(p.dx + ((n0 + b) * T + s) * C + c0, acc[b], std::min<int64_t>(kLanes, C - c0));
        }
        // The block's weight gradients: dK += x_t^T dp, dU += h_{t-1}^T dp, db += dp.
        add_outer_products<kW, kFull>(dK, xs, B, dp, C, Hp);
        if (hs[0]) add_outer_products<kW, kFull>(dU, hs, B, dp, H, Hp);
        for (int w = 0; w < kW; ++w) {
            v16 sum = load(db + w * kLanes);
            for (int64_t b = 0; b < B; ++b) sum += dp[b][w];
            store(db + w * kLanes, sum);
        }
        // The gradient on h_{t-1}: dp U^T, along the rows of U^T.
        for (int64_t b = 0; b < B; ++b)
            for (int w = 0; w < kW; ++w) dnext[b][w] = v16{};
        for (int64_t j = 0; j < H; ++j) {
            v16 ut[kW];
            for (int w = 0; w < kW; ++w) ut[w] = load(p.Ut + j * Hp + w * kLanes);
            for (int64_t b = 0; b < B; ++b) {
                const v16 d = splat(dpf[b][j]);
                for (int w = 0; w < kW; ++w) dnext[b][w] += d * ut[w];
            }
        }
    }
    for (int64_t b = 0; b < B; ++b)
        for (int w = 0; w < kW; ++w)
            store_part(p.dh0 + (n0 + b) * H + w * kLanes, dnext[b][w], std::min<int64_t>(kLanes, H - w * kLanes));
}

// One block, forward or backward: a full block's size is known at compile time, so its
// accumulators live in registers.
template <int kW>
[[gnu::always_inline]] inline void run_block_for(const Problem& p, bool backward, int64_t block) {
    const int64_t n0 = block * kBlock, B = std::min(kBlock, p.N - n0);
    float* part = backward ? p.partials + block * p.partial_size() : nullptr;
    if (B == kBlock) {
        if (backward) backward_block<kW, true>(p, n0, B, part);
        else forward_block<kW, true>(p, n0, B);
    } else {
        if (backward) backward_block<kW, false>(p, n0, B, part);
        else forward_block<kW, false>(p, n0, B);
    }
}

[[gnu::always_inline]] inline void run_blocks(const Problem& p, bool backward, int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
        switch (p.Hp / kLanes) {
            case 1: run_block_for<1>(p, backward, block); break;
            case 2: run_block_for<2>(p, backward, block); break;
            case 3: run_block_for<3>(p, backward, block); break;
            default: run_block_for<4>(p, backward, block); break;
        }
    }
}

[[gnu::target("avx512f,avx512vl,avx512dq,avx2,fma")]] void run_blocks_avx512(const Problem& p, bool backward,
                                                                           int64_t first, int64_t last) {
    run_blocks(p, backward, first, last);
}

void run_blocks_portable(const Problem& p, bool backward, int64_t first, int64_t last) {
    run_blocks(p, backward, first, last);
}

std::atomic<bool> baseline_only{false};   // set_small_rnn_baseline_isa (tests)

bool use_avx512() {
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    return has && !baseline_only;
}

// The blocks split across the threads once (run_ranges), each thread taking a contiguous range.
void run_all_blocks(const Problem& p, bool backward) {
    const int64_t blocks = (p.N + kBlock - 1) / kBlock;
    const int64_t threads = std::min<int64_t>(OneDnnBackend::current_threads(), blocks);
    run_ranges(static_cast<int>(threads), blocks, 1, [&](int64_t first, int64_t last) {
        if (use_avx512()) run_blocks_avx512(p, backward, first, last);
        else run_blocks_portable(p, backward, first, last);
    });
}

int64_t padded_size(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// a (rows, cols) transposed into (cols, ld), the columns past rows zero.
std::vector<float> transposed(const float* a, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> t(static_cast<size_t>(cols * ld), 0.0f);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) t[c * ld + r] = a[r * cols + c];
    return t;
}

// a (rows, cols) with its rows ld apart, the columns past cols zero.
std::vector<float> padded(const float* a, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> out(static_cast<size_t>(rows * ld), 0.0f);
    for (int64_t r = 0; r < rows; ++r) std::copy(a + r * cols, a + (r + 1) * cols, out.begin() + r * ld);
    return out;
}

// The (rows, cols) tensor of a padded (rows, ld) array.
Tensor unpadded(const float* a, int64_t rows, int64_t cols, int64_t ld) {
    Tensor out({rows, cols}, DType::float32);
    for (int64_t r = 0; r < rows; ++r) std::copy(a + r * ld, a + r * ld + cols, out.data<float>() + r * cols);
    return out;
}

// What the backward pass needs from the forward (kept in RnnForward::saved).
struct SmallRnnSaved {
    Tensor x;                        // processing order (reversed for go_backwards)
    Tensor h0;                       // undefined: zeros
    std::vector<int32_t> lengths;    // empty: all T
};
using SmallRnnSavedPtr = std::shared_ptr<SmallRnnSaved>;

// ---- The choice of path.
std::optional<SmallRnnMode>& forced_mode() {
    static std::optional<SmallRnnMode> mode;
    return mode;
}

}  // namespace

void set_small_rnn_mode(std::optional<SmallRnnMode> mode) { forced_mode() = mode; }

void set_small_rnn_baseline_isa(bool baseline) { baseline_only = baseline; }

bool small_rnn_uses_avx512() { return use_avx512(); }

SmallRnnMode small_rnn_mode() {
    return forced_mode() ? *forced_mode() : kernel_mode_from_environment("KERASCPP_SMALL_RNN");
}

bool small_rnn_supports(const RnnSpec& spec) {
    const Activation a = spec.activation;
    // Under mixed_bfloat16 too, in float32: at these sizes the step is overhead, not arithmetic, and
    // oneDNN's bfloat16 vanilla_rnn ran W1 at 0.6x its float32 speed (docs/mixed_precision.md).
    return spec.cell == RnnCell::simple_rnn && spec.units >= 1 &&
           spec.units <= kSmallRnnMaxUnits &&
           (a == Activation::tanh || a == Activation::relu || a == Activation::sigmoid);
}

bool small_rnn_chosen(const RnnSpec& spec, int64_t features) {
    if (!small_rnn_supports(spec)) return false;
    switch (small_rnn_mode()) {
        case SmallRnnMode::always: return true;
        case SmallRnnMode::never: return false;
        case SmallRnnMode::automatic: break;
    }
    return spec.units <= kSmallRnnAutoMaxUnits && features <= kSmallRnnAutoMaxFeatures;
}

bool is_small_rnn_forward(const RnnForward& fwd) { return std::any_cast<SmallRnnSavedPtr>(&fwd.saved) != nullptr; }

RnnForward small_rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                             bool training, const std::vector<int32_t>& lengths) {
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units, Hp = padded_size(H);
    auto saved = std::make_shared<SmallRnnSaved>();
    saved->x = spec.go_backwards ? reverse_valid_steps(x, lengths) : x;
    saved->h0 = h0;
    saved->lengths = lengths;
    // The weights with their rows padded to Hp (a few KB: copied per call).
    const std::vector<float> K = padded(w.kernel.data<float>(), C, H, Hp);
    const std::vector<float> U = padded(w.recurrent_kernel.data<float>(), H, H, Hp);
    const std::vector<float> bias = spec.use_bias ? padded(w.bias.data<float>(), 1, H, Hp) : std::vector<float>(Hp, 0.0f);

    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32);
    Problem p{};
    p.N = N, p.T = T, p.C = C, p.H = H, p.Hp = Hp, p.act = spec.activation;
    p.x = saved->x.data<float>();
    p.K = K.data();
    p.U = U.data();
    p.bias = bias.data();
    p.h0 = h0.defined() ? h0.data<float>() : nullptr;
    p.seq = out.sequences.data<float>();
    run_all_blocks(p, false);

    // The final state: after step T - 1, or each sample's len - 1.
    if (!lengths.empty()) {
        out.h = states_at_lengths(p.seq, H, T * H, h0, lengths, H);
    } else {
        out.h = Tensor({N, H}, DType::float32);
        for (int64_t n = 0; n < N; ++n)
            std::memcpy(out.h.data<float>() + n * H, p.seq + (n * T + T - 1) * H, sizeof(float) * H);
    }
    if (training) out.saved = saved;
    return out;
}

RnnGradients small_rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                const Tensor& d_sequences, const Tensor& dh) {
    const SmallRnnSaved& saved = **std::any_cast<SmallRnnSavedPtr>(&fwd.saved);
    const int64_t N = saved.x.dim(0), T = saved.x.dim(1), C = saved.x.dim(2), H = spec.units;
    auto check_shape = [&](const Tensor& t, const Shape& shape, const char* what) {
        if (t.defined() && t.shape() != shape)
            value_error("Layer \"{}\": the gradient of {} must have shape {}, got {}", spec.layer_name, what,
                        shape_str(shape), shape_str(t.shape()));
    };
    check_shape(d_sequences, {N, T, H}, "the sequences");
    check_shape(dh, {N, H}, "the final state h");
    // With lengths, dh enters through the sequences' gradient at len - 1 (rnn_lengths.cpp).
    const bool packed = !saved.lengths.empty();
    const Tensor d_seq = packed ? sequences_gradient_at_lengths(d_sequences, dh, saved.lengths, T, H) : d_sequences;

    const int64_t Hp = padded_size(H), Cp = padded_size(C);
    const std::vector<float> Kt = transposed(w.kernel.data<float>(), C, H, Cp);
    const std::vector<float> Ut = transposed(w.recurrent_kernel.data<float>(), H, H, Hp);
    const int64_t blocks = (N + kBlock - 1) / kBlock;

    RnnGradients g;
    g.dx = Tensor({N, T, C}, DType::float32);
    g.dh0 = Tensor({N, H}, DType::float32);
    Problem p{};
    p.N = N, p.T = T, p.C = C, p.H = H, p.Hp = Hp, p.Cp = Cp, p.act = spec.activation;
    p.x = saved.x.data<float>();
    p.Kt = Kt.data();
    p.Ut = Ut.data();
    p.h0 = saved.h0.defined() ? saved.h0.data<float>() : nullptr;
    p.seq = fwd.sequences.data<float>();
    p.dseq = d_seq.defined() ? d_seq.data<float>() : nullptr;
    p.dh = packed || !dh.defined() ? nullptr : dh.data<float>();
    p.dx = g.dx.data<float>();
    p.dh0 = g.dh0.data<float>();
    std::vector<float> partials(static_cast<size_t>(blocks * p.partial_size()));
    p.partials = partials.data();
    run_all_blocks(p, true);

    // The blocks' partial sums, added in block order (the same bits for any thread count), then
    // the padding columns dropped.
    std::vector<float> total(static_cast<size_t>(p.partial_size()), 0.0f);
    for (int64_t block = 0; block < blocks; ++block) {
        const float* part = partials.data() + block * p.partial_size();
        for (int64_t i = 0; i < p.partial_size(); ++i) total[i] += part[i];
    }
    g.dweights.kernel = unpadded(total.data(), C, H, Hp);
    g.dweights.recurrent_kernel = unpadded(total.data() + C * Hp, H, H, Hp);
    if (spec.use_bias) g.dweights.bias = unpadded(total.data() + (C + H) * Hp, 1, H, Hp).reshape({H});
    if (spec.go_backwards) g.dx = reverse_valid_steps(g.dx, saved.lengths);
    if (packed) add_rows_of_empty_samples(g.dh0, dh, saved.lengths);
    return g;
}


// ---------------------------------------------------------------------------------------------
// Our fused LSTM for inference at small batches (issue 13 item 5), used instead of oneDNN's lstm
// primitive when small_lstm_chosen() says so.
//
// Why: at batch 1 oneDNN's lstm forward alone took about 1.08 ms for LSTM(128) (docs/performance.md),
// mostly per-step overhead: a GEMM call and a barrier per step for a 128 x 512 matrix-vector
// product. Here the input projection of every step is one SGEMM (x (N*T, C) times the kernel), then
// the recurrence runs with the recurrent kernel (H x 4H floats, 256 KB at H = 128) read from cache at
// every step, up to kLstmBlock samples sharing each load of it. Keras's layout is read as it is:
// gates i, f, c, o in the kernel's and the recurrent kernel's columns, in that order.
//
// Threads: reading the recurrent kernel from L2 bounds a step, so with several threads each takes a
// share of the units (its columns of all four gates, and their cells), keeping its part of the
// kernel in its own core's cache; after each step the threads meet at a spin barrier, since every
// unit's next gates read the whole h. A unit's arithmetic is the same whichever thread runs it, so
// any thread count gives the same bits. Inference only: training keeps oneDNN's primitive.
namespace {

constexpr int kLstmBlock = 4;        // samples sharing each recurrent-kernel load
constexpr int64_t kLstmShareUnits = 32;   // the smallest share of units a thread takes

// The threads of one call meet here after every step. Spinning (not the OpenMP runtime's barrier,
// which may sleep in the kernel under OMP_WAIT_POLICY=passive) since a step lasts a few
// microseconds; after a while it yields, so a thread whose partner lost its core gives it back.
class SpinBarrier {
public:
    explicit SpinBarrier(int threads) : threads_(threads) {}
    void wait() {
        const int generation = generation_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
            return;
        }
        for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
            if (spins < 4000) pause();
            else sched_yield();
        }
    }

private:
    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
    }
    const int threads_;
    std::atomic<int> arrived_{0}, generation_{0};
};

struct LstmProblem {
    int64_t N, T, H;
    const float* xw;     // (N, T, 4H): x times the kernel, plus the bias
    const float* U;      // (H, 4H)
    const float* h0;     // (N, H) or null: zeros
    const float* c0;     // (N, H) or null: zeros
    const int32_t* lengths;   // N of them, or null: all T
    float* seq;          // (N, T, H): h after every step
    float* c;            // (N, H): the running cell state (without lengths: the final one)
    float* c_final;      // (N, H): with lengths, c after each sample's step len - 1
    float* gates;        // (kLstmBlock, 4H): scratch (threads write disjoint columns)
};

// One thread's share: units [k0, k1), a multiple of 16 wide, their gate columns (the first float of
// each 16-float column of [gH + k0, gH + k1) for the gates g = i, f, c, o), and the barrier it meets
// the others at after each step (null when it runs alone).
struct LstmShare {
    int64_t k0, k1;
    SpinBarrier* barrier;
    std::vector<int64_t> columns{};
};

// Samples [n0, n0 + kB), all T steps, for the share's units. kCols 16-float columns per accumulator
// row, taken from the share's column list: enough independent FMA chains to hide their latency (8 for
// one sample), few enough to stay in registers; kCols divides the list's length.
template <int kB, int kCols>
[[gnu::always_inline]] inline void lstm_block(const LstmProblem& p, int64_t n0, const LstmShare& share) {
    const int64_t H = p.H, G = 4 * H, T = p.T, k0 = share.k0, width = share.k1 - share.k0;
    const int64_t* columns = share.columns.data();
    const int64_t column_count = static_cast<int64_t>(share.columns.size());
    for (int b = 0; b < kB; ++b) {   // c starts as c0 (or zeros); so does the final c of length 0
        float* c = p.c + (n0 + b) * H + k0;
        if (p.c0) std::copy_n(p.c0 + (n0 + b) * H + k0, width, c);
        else std::fill_n(c, width, 0.0f);
        if (p.lengths) std::copy_n(c, width, p.c_final + (n0 + b) * H + k0);
    }
    for (int64_t s = 0; s < T; ++s) {
        const float* hs[kB];
        for (int b = 0; b < kB; ++b) {
            const int64_t n = n0 + b;
            hs[b] = s > 0 ? p.seq + (n * T + s - 1) * H : (p.h0 ? p.h0 + n * H : nullptr);
        }
        // gates = xw_t + h_{t-1} U, kCols columns at a time.
        for (int64_t first = 0; first < column_count; first += kCols) {
            const int64_t* j = columns + first;
            v16 acc[kB][kCols];
            for (int b = 0; b < kB; ++b)
                for (int w = 0; w < kCols; ++w) acc[b][w] = load(p.xw + ((n0 + b) * T + s) * G + j[w]);
            if (hs[0])
                for (int64_t r = 0; r < H; ++r) {
                    v16 u[kCols];
                    for (int w = 0; w < kCols; ++w) u[w] = load(p.U + r * G + j[w]);
                    for (int b = 0; b < kB; ++b) {
                        const v16 v = splat(hs[b][r]);
                        for (int w = 0; w < kCols; ++w) acc[b][w] += v * u[w];
                    }
                }
            for (int b = 0; b < kB; ++b)
                for (int w = 0; w < kCols; ++w) store(p.gates + b * G + j[w], acc[b][w]);
        }
        // The cell: c = f c + i g, h = o tanh(c).
        for (int b = 0; b < kB; ++b) {
            const float* z = p.gates + b * G;
            float* c = p.c + (n0 + b) * H;
            float* h = p.seq + ((n0 + b) * T + s) * H;
            for (int64_t k = k0; k < share.k1; k += kLanes) {
                const v16 i = vsigmoid(load(z + k)), f = vsigmoid(load(z + H + k));
                const v16 g = vtanh(load(z + 2 * H + k)), o = vsigmoid(load(z + 3 * H + k));
                const v16 c_new = f * load(c + k) + i * g;
                store(c + k, c_new);
                store(h + k, o * vtanh(c_new));
            }
            // With lengths, the final c is the one after step len - 1 (all T steps still run).
            if (p.lengths && s == p.lengths[n0 + b] - 1) std::copy_n(c + k0, width, p.c_final + (n0 + b) * H + k0);
        }
        if (share.barrier) share.barrier->wait();   // this step's h complete before the next reads it
    }
}

template <int kB>
[[gnu::always_inline]] inline void lstm_block_sized(const LstmProblem& p, int64_t n0, const LstmShare& share) {
    // 4 (k1 - k0) / 16 columns: a multiple of 4, of 8 when the share is a multiple of 32 units wide
    if (kB == 1 && share.columns.size() % 8 == 0) lstm_block<kB, 8>(p, n0, share);
    else lstm_block<kB, 4>(p, n0, share);
}

// Every thread walks the same blocks and steps (so all meet at each barrier), for its own units.
[[gnu::always_inline]] inline void lstm_all(const LstmProblem& p, const LstmShare& share) {
    int64_t n = 0;
    for (; n + kLstmBlock <= p.N; n += kLstmBlock) lstm_block_sized<kLstmBlock>(p, n, share);
    for (; n < p.N; ++n) lstm_block_sized<1>(p, n, share);
}

std::atomic<int64_t> lstm_runs{0};

[[gnu::target("avx512f,avx512vl,avx512dq,avx2,fma")]] void lstm_all_avx512(const LstmProblem& p, const LstmShare& share) {
    lstm_all(p, share);
}
void lstm_all_portable(const LstmProblem& p, const LstmShare& share) { lstm_all(p, share); }

// Thread t of n takes units [t H / n, (t + 1) H / n), rounded to whole shares of kLstmShareUnits
// (n > 1 only where H is a multiple of them); one thread takes all H.
void lstm_share(const LstmProblem& p, SpinBarrier* barrier, int t, int n) {
    const int64_t H = p.H, shares = H / kLstmShareUnits;
    LstmShare share = n == 1 ? LstmShare{0, H, nullptr}
                             : LstmShare{shares * t / n * kLstmShareUnits, shares * (t + 1) / n * kLstmShareUnits, barrier};
    for (int64_t gate = 0; gate < 4; ++gate)
        for (int64_t k = share.k0; k < share.k1; k += kLanes) share.columns.push_back(gate * H + k);
    if (use_avx512()) lstm_all_avx512(p, share);
    else lstm_all_portable(p, share);
}

std::atomic<int> lstm_threads_set{0};   // set_small_lstm_threads; 0: the rule

// The recurrence on the threads the backend's governor allows, at most one per kLstmShareUnits
// units (and only as many as the step pays for: see kSmallLstmMinUnitsPerThread).
void run_lstm(const LstmProblem& p) {
    int threads = 1;
    if (p.H % kLstmShareUnits == 0) {
        const int64_t wanted = lstm_threads_set > 0 ? std::min<int64_t>(lstm_threads_set, p.H / kLstmShareUnits)
                                                    : std::min<int64_t>(p.H / kSmallLstmMinUnitsPerThread,
                                                                        OneDnnBackend::current_threads());
        threads = static_cast<int>(std::max<int64_t>(wanted, 1));
    }
    SpinBarrier barrier(threads);
    run_team(threads, [&](int t, int n) {
        if (n == threads) lstm_share(p, &barrier, t, n);
        else if (t == 0) lstm_share(p, nullptr, 0, 1);   // a smaller team than asked for: one runs it all
    });
}

}  // namespace

int64_t small_lstm_runs() { return lstm_runs; }

void set_small_lstm_threads(std::optional<int> threads) { lstm_threads_set = threads.value_or(0); }

bool small_lstm_supports(const RnnSpec& spec) {
    return spec.cell == RnnCell::lstm && spec.units >= 1 && spec.units % kLanes == 0 &&
           spec.activation == Activation::tanh && spec.recurrent_activation == Activation::sigmoid &&
           spec.precision == Precision::float32;
}

bool small_lstm_chosen(const RnnSpec& spec, int64_t batch, bool training) {
    if (training || !small_lstm_supports(spec)) return false;
    switch (small_rnn_mode()) {
        case SmallRnnMode::always: return true;
        case SmallRnnMode::never: return false;
        case SmallRnnMode::automatic: break;
    }
    return batch <= kSmallLstmAutoMaxBatch && spec.units <= kSmallLstmAutoMaxUnits;
}

RnnForward small_lstm_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                              const Tensor& c0, const std::vector<int32_t>& lengths) {
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units, G = 4 * H;
    const Tensor xs = spec.go_backwards ? reverse_valid_steps(x, lengths) : x;
    // Every step's input projection at once: xw = x K (+ bias), one SGEMM of (N*T, C) by (C, 4H).
    std::vector<float> xw(static_cast<size_t>(N * T * G));
    if (spec.use_bias)
        for (int64_t row = 0; row < N * T; ++row) std::copy_n(w.bias.data<float>(), G, xw.data() + row * G);
    if (N * T > 0 && C > 0) {
        const dnnl_status_t status = dnnl_sgemm('N', 'N', N * T, G, C, 1.0f, xs.data<float>(), C,
                                                w.kernel.data<float>(), G, spec.use_bias ? 1.0f : 0.0f, xw.data(), G);
        if (status != dnnl_success) runtime_error("Layer \"{}\": oneDNN's sgemm failed ({})", spec.layer_name,
                                                  static_cast<int>(status));
    }
    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32);
    out.c = Tensor({N, H}, DType::float32);
    std::vector<float> gates(static_cast<size_t>(kLstmBlock * G));
    std::vector<float> running_c(lengths.empty() ? 0 : static_cast<size_t>(N * H));
    LstmProblem p{};
    p.N = N, p.T = T, p.H = H;
    p.xw = xw.data();
    p.U = w.recurrent_kernel.data<float>();
    p.h0 = h0.defined() ? h0.data<float>() : nullptr;
    p.c0 = c0.defined() ? c0.data<float>() : nullptr;
    p.lengths = lengths.empty() ? nullptr : lengths.data();
    p.seq = out.sequences.data<float>();
    p.c = lengths.empty() ? out.c.data<float>() : running_c.data();
    p.c_final = out.c.data<float>();
    p.gates = gates.data();
    run_lstm(p);
    ++lstm_runs;

    if (!lengths.empty()) {
        out.h = states_at_lengths(p.seq, H, T * H, h0, lengths, H);
    } else {
        out.h = Tensor({N, H}, DType::float32);
        for (int64_t n = 0; n < N; ++n) std::copy_n(p.seq + (n * T + T - 1) * H, H, out.h.data<float>() + n * H);
    }
    return out;
}

}  // namespace keras::backend
