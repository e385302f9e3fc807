// Our own LSTM and GRU (reset_after) built from matrix products (issue 13 item 1), run instead of
// oneDNN's lstm / lbr_gru primitives when gemm_rnn_chosen() says so: mostly under mixed_bfloat16,
// and for float32 training (the rule in onednn_backend.hpp).
//
// Why: oneDNN 2.6's bfloat16 RNN primitives gained little over float32. On W3 (GRU(128)) the
// bfloat16 lbr_gru backward is a reference kernel, slower than the float32 one, so mixed_bfloat16
// trained no faster (docs/performance.md). Here a layer is matrix products that oneDNN's matmul
// runs on AMX or AVX512_BF16, plus our own vectorised loops for the gates:
// - forward: per step, x_t W + b and h_{t-1} U + b', then the gates;
// - backward: per step (last first), the gates' gradients dG_t, then dG_t U^T for the state before
//   it; after the loop, dW, dU and dx = dG W^T, each one product over all T N rows
//   (W, U: the stacked weights' blocks, see "The layout").
// Every buffer is time-major (row t * N + n), so a step's rows are one contiguous block. The batch
// is split across the threads once per sequence (run_recurrence): each runs every step of its rows,
// its own products included, with no barrier between steps.
//
// Precision (mixed_bfloat16): products take bfloat16 operands and accumulate in float32. The
// gates, LSTM's c and every gradient sum stay float32. h is rounded to bfloat16 once per step, so
// the layer's outputs are bfloat16 values, as the primitive's were. With float32 compute the same
// code runs float32 products.
//
// Semantics: those of rnn.cpp's primitive path. Keras's weights are read as they are: kernel
// (C, G H), recurrent_kernel (H, G H), bias (G H), or GRU's (2, G H) of input and recurrent biases.
// go_backwards and h0 / c0 are handled as there. lengths follow rnn_lengths.cpp: all T steps run,
// states are read at len - 1, and the final states' gradients enter there.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "host_memory.hpp"
#include "keras/errors.hpp"
#include "onednn_backend.hpp"
#include "simd16.hpp"

namespace keras::backend {

namespace {

using namespace simd16;
using dnnl::memory;
using dt = memory::data_type;

// ---- Buffers: uninitialised (every user writes before reading, or zeroes what it reads first), in
// the compute dtype (bfloat16 as uint16_t, or float32) or float32. They come from host_memory,
// which keeps large freed blocks for the next call of the same shape: fresh multi-megabyte
// allocations page-faulted for a quarter of a W3 step.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(size_t bytes) : ptr_(host_memory::allocate(bytes)), bytes_(bytes) {
        if (!ptr_) runtime_error("Out of memory allocating {} bytes for a GEMM-step RNN buffer", bytes);
    }
    Buffer(Buffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(other.bytes_) {}
    Buffer& operator=(Buffer&& other) noexcept {
        if (this != &other) {
            host_memory::deallocate(ptr_, bytes_);
            ptr_ = std::exchange(other.ptr_, nullptr), bytes_ = other.bytes_;
        }
        return *this;
    }
    ~Buffer() { host_memory::deallocate(ptr_, bytes_); }

    void* data() { return ptr_; }
    const void* data() const { return ptr_; }
    template <class E>
    E* as() { return static_cast<E*>(ptr_); }
    template <class E>
    const E* as() const { return static_cast<const E*>(ptr_); }

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// `elements` in the compute dtype (bf16: 2 bytes each, else 4), or float32.
Buffer take(int64_t elements, bool bf16) { return Buffer(static_cast<size_t>(elements) * (bf16 ? 2 : 4)); }
Buffer floats(int64_t elements) { return take(elements, false); }

typedef uint32_t u32v __attribute__((vector_size(64), aligned(4)));
typedef uint16_t u16v __attribute__((vector_size(32), aligned(2)));

// x rounded to bfloat16 as bf16.cpp's to_bf16 does (nearest even, NaN kept quiet): the bit patterns.
[[gnu::always_inline]] inline u32v bf16_bits(v16 x) {
    const u32v b = std::bit_cast<u32v>(x);
    const u32v rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
    const u32v quiet_nan = (b >> 16) | 0x40u;
    return x != x ? quiet_nan : rounded;
}
[[gnu::always_inline]] inline v16 bf16_value(u32v bits) { return std::bit_cast<v16>(bits << 16); }

// Loads / stores of n (<= 16) compute-dtype elements as float32 vectors.
template <bool kBf16>
[[gnu::always_inline]] inline v16 load_c(const void* p, int64_t i, int64_t n) {
    if constexpr (kBf16) {
        u16v h = {};
        if (n == kLanes) std::memcpy(&h, static_cast<const uint16_t*>(p) + i, sizeof h);
        else std::memcpy(&h, static_cast<const uint16_t*>(p) + i, sizeof(uint16_t) * n);
        return bf16_value(__builtin_convertvector(h, u32v));
    } else {
        return load_part(static_cast<const float*>(p) + i, n);
    }
}
// Stores x in the compute dtype and returns the value stored (x rounded to bfloat16 for bf16).
template <bool kBf16>
[[gnu::always_inline]] inline v16 store_c(void* p, int64_t i, v16 x, int64_t n) {
    if constexpr (kBf16) {
        const u32v bits = bf16_bits(x);
        const u16v h = __builtin_convertvector(bits, u16v);
        if (n == kLanes) std::memcpy(static_cast<uint16_t*>(p) + i, &h, sizeof h);
        else std::memcpy(static_cast<uint16_t*>(p) + i, &h, sizeof(uint16_t) * n);
        return bf16_value(bits);
    } else {
        store_part(static_cast<float*>(p) + i, x, n);
        return x;
    }
}

// ---- The products, built once per shape.
struct Gemm {
    dnnl::matmul prim;
    memory::desc a, b, c, bias;
    bool has_bias = false;
};

// c (M, N) [+]= a (M, K) b (K, N) [+ bias]: a and b given by their strides (a transposed operand is
// a stride swap), c float32 and packed. accumulate: c += instead of c =.
// b_strides empty: b in the layout the primitive prefers (format_tag::any, read back from it): a
// per-step product reuses its weights T times, and AMX kernels given plain weights would repack
// them at every call (measured: half of a step's product).
Gemm make_gemm(const dnnl::engine& engine, int64_t M, int64_t K, int64_t N, memory::dims a_strides,
               memory::dims b_strides, dt in, bool bias, bool accumulate) {
    Gemm g;
    g.a = memory::desc({M, K}, in, a_strides);
    g.b = b_strides.empty() ? memory::desc({K, N}, in, memory::format_tag::any) : memory::desc({K, N}, in, b_strides);
    g.c = memory::desc({M, N}, dt::f32, memory::dims{N, 1});
    g.bias = memory::desc({1, N}, dt::f32, memory::dims{N, 1});
    g.has_bias = bias;
    dnnl::primitive_attr attr = OneDnnBackend::user_scratchpad();
    if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
    }
    const auto pd = bias ? dnnl_compat::make_pd<dnnl::matmul>(engine, attr, g.a, g.b, g.bias, g.c)
                         : dnnl_compat::make_pd<dnnl::matmul>(engine, attr, g.a, g.b, g.c);
    g.b = pd.weights_desc();
    g.prim = dnnl::matmul(pd);
    return g;
}

// One product run many times: its memory objects and scratchpad are made once per forward or
// backward, and only their pointers change per call (a step's product takes microseconds, and
// making memory objects is not free).
class GemmRunner {
public:
    GemmRunner(OneDnnBackend& be, const Gemm& g) : be_(be), g_(g) {
        const dnnl::engine& e = be.engine();
        args_ = {{DNNL_ARG_SRC, memory(g.a, e, nullptr)},
                 {DNNL_ARG_WEIGHTS, memory(g.b, e, nullptr)},
                 {DNNL_ARG_DST, memory(g.c, e, nullptr)}};
        if (g.has_bias) args_.emplace(DNNL_ARG_BIAS, memory(g.bias, e, nullptr));
        const memory::desc pad = dnnl_compat::scratchpad_desc(g.prim);
        if (pad.get_size() > 0) {
            scratchpad_ = scratchpad_buffer(pad.get_size());
            args_.emplace(DNNL_ARG_SCRATCHPAD, memory(pad, e, scratchpad_.get()));
        }
    }
    void operator()(const void* a, const void* b, float* c, const float* bias = nullptr) {
        args_.at(DNNL_ARG_SRC).set_data_handle(const_cast<void*>(a));
        args_.at(DNNL_ARG_WEIGHTS).set_data_handle(const_cast<void*>(b));
        args_.at(DNNL_ARG_DST).set_data_handle(c);
        if (g_.has_bias) args_.at(DNNL_ARG_BIAS).set_data_handle(const_cast<float*>(bias));
        g_.prim.execute(be_.stream(), args_);
        be_.stream().wait();
    }

private:
    OneDnnBackend& be_;
    const Gemm& g_;
    std::unordered_map<int, memory> args_;
    ScratchpadBuffer scratchpad_{nullptr, &std::free};
};

// ---- The layout. Both cells work on rows of 4 H gate columns and one stacked weight B (C + H, 4 H),
// whose first C rows B_x multiply x and last H rows B_h multiply h:
// - LSTM: B = [W; U], columns i, f, c, o (Keras's order); every column has both sides.
// - GRU (reset_after): B = [[W_h W_z W_r 0]; [0 U_z U_r U_h]], columns x W_h, z, r, h U_h: the last
//   block keeps h U_h + b'_h apart, as r multiplies it. The x side is the first 3 H columns and the
//   h side the last 3 H, so each side's product is over a contiguous block and skips B's zeros
//   (one 4 H product over both sides did a third more arithmetic than the primitive).
// Forward, per step: x_t B_x + b and h_{t-1} B_h + b' over their sides' columns (LSTM's second one
// adds to the first, as both cover all 4 H). Backward, per step: dh_{t-1} = dG_t B_h^T over the h
// side's columns; after the loop, dW^T = dG^T x, dU^T = dG^T h and dx = dG B_x^T over all T N rows,
// each over its side's columns. Every product's operands are dense (x and h in buffers of their own,
// and one buffer per side for GRU's products and gradients): oneDNN 2.6's brgemm matmul, AMX
// included, takes no row stride, and its gemm:jit fallback made the bfloat16 steps 1.5x slower.
// (Measured and dropped: the x side of all steps in one product before the loop, whose 26 MB output
// made it memory-bound and the forward slower; splitting the threads by units instead of rows, a
// barrier per step.)
struct Sides {
    int64_t x_width;   // the x side: columns [0, x_width)
    int64_t h_first;   // the h side: columns [h_first, h_first + h_width)
    int64_t h_width;
};
Sides sides(bool lstm, int64_t H) { return lstm ? Sides{4 * H, 0, 4 * H} : Sides{3 * H, H, 3 * H}; }

// Our block of B holding Keras's gate q (of G) on the input side (recurrent false) or the recurrent
// side. LSTM: q. GRU: z and r are blocks 1 and 2 on both sides; hh is block 0 (x W_h) or 3 (h U_h).
int64_t our_block(bool lstm, bool recurrent, int64_t q) {
    if (lstm) return q;
    return q < 2 ? q + 1 : (recurrent ? 3 : 0);
}

struct PlanKey {
    int64_t N, T, C, H;
    bool lstm, bf16;
    int threads;   // OneDnnBackend::primitive_threads() when created
    auto operator<=>(const PlanKey&) const = default;
};

// The backward's products over all T N rows (made by the first backward of a shape: inference never
// needs them). X: the (T N, C) rows x_t; Hs: the rows h_{t-1}. With OpenMP's threads each product
// runs on all of them; with our own, gemm_rnn_backward shares them out among the team.
class Plan {
public:
    Plan(const dnnl::engine& engine, const PlanKey& k)
        : d_kernel(make_gemm(engine, sides(k.lstm, k.H).x_width, k.T * k.N, k.C, {1, sides(k.lstm, k.H).x_width},
                             {k.C, 1}, compute_dtype(k), false, false)),
          d_recurrent(make_gemm(engine, sides(k.lstm, k.H).h_width, k.T * k.N, k.H, {1, sides(k.lstm, k.H).h_width},
                                {k.H, 1}, compute_dtype(k), false, false)),
          engine_(engine), key_(k) {}

    const Gemm d_kernel;      // dW^T (x_width, C) = dG_x^T X
    const Gemm d_recurrent;   // dU^T (h_width, H) = dG_h^T Hs

    // dx rows (rows, C) = dG_x rows B_x^T: all T N rows, or a team member's steps; made on first use.
    const Gemm& d_input(int64_t rows) {
        std::lock_guard lock(mutex_);
        auto it = d_input_.find(rows);
        if (it == d_input_.end()) {
            const int64_t x_width = sides(key_.lstm, key_.H).x_width;
            it = d_input_.emplace(rows, make_gemm(engine_, rows, x_width, key_.C, {x_width, 1}, {}, compute_dtype(key_),
                                                  false, false)).first;
        }
        return it->second;
    }

private:
    static dt compute_dtype(const PlanKey& k) { return k.bf16 ? dt::bf16 : dt::f32; }
    dnnl::engine engine_;
    PlanKey key_;
    std::mutex mutex_;
    std::map<int64_t, Gemm> d_input_;   // by rows: node-based, so references stay valid
};

// The per-step products of one thread's rows (run_recurrence), made for that thread alone.
struct StepKey {
    int64_t rows, C, H;
    bool lstm, bf16;
    int threads;   // OneDnnBackend::primitive_threads() in the member: 1, or the caller's count in a team of one
    auto operator<=>(const StepKey&) const = default;
};

struct StepPlan {
    Gemm step_x;     // P_x (rows, x_width) = x_t (rows, C) B_x[:, x side] + b
    Gemm step;       // P_h (rows, h_width) = h_{t-1} (rows, H) B_h[:, h side] + b' (LSTM: P_x +=, no bias)
    Gemm step_back;  // dh (rows, H) += dG_h,t (rows, h_width) B_h[:, h side]^T
};

StepPlan make_step_plan(const dnnl::engine& engine, const StepKey& k) {
    const Sides s = sides(k.lstm, k.H);
    const dt in = k.bf16 ? dt::bf16 : dt::f32;
    return StepPlan{
        .step_x = make_gemm(engine, k.rows, k.C, s.x_width, {k.C, 1}, {}, in, true, false),
        .step = make_gemm(engine, k.rows, k.H, s.h_width, {k.H, 1}, {}, in, !k.lstm, k.lstm),
        .step_back = make_gemm(engine, k.rows, s.h_width, k.H, {s.h_width, 1}, {}, in, false, true),
    };
}

// make() returns the new std::shared_ptr<Value>.
template <class Key, class Value, class Make>
std::shared_ptr<Value> cached(const Key& key, Make&& make) {
    static std::mutex mutex;
    static LruCache<Key, std::shared_ptr<Value>> cache(OneDnnBackend::kRnnCacheCapacity);
    std::lock_guard lock(mutex);
    return cache.get_or_create(key, make);
}

std::shared_ptr<Plan> plan_for(OneDnnBackend& be, const PlanKey& key) {
    return cached<PlanKey, Plan>(key, [&] { return std::make_shared<Plan>(be.engine(), key); });
}
std::shared_ptr<StepPlan> step_plan_for(OneDnnBackend& be, const StepKey& key) {
    return cached<StepKey, StepPlan>(key, [&] { return std::make_shared<StepPlan>(make_step_plan(be.engine(), key)); });
}

// A matrix given by its descriptor `from` (plain, possibly strided) copied into g's weights layout.
Buffer weights_for(OneDnnBackend& be, const Gemm& g, const memory::desc& from, const void* data) {
    Buffer out(g.b.get_size());
    be.reorder(memory(from, be.engine(), const_cast<void*>(data)), memory(g.b, be.engine(), out.data()));
    return out;
}

// ---- What the forward keeps for the backward (RnnForward::saved).
struct GemmRnnSaved {
    PlanKey key;                    // the shapes and the cell (key.lstm)
    Buffer x;                       // (T N, C) compute dtype: row (t, n) = x_t
    Buffer hs;                      // ((T + 1) N, H) compute dtype: row (t, n) = h_{t-1} (row block T: h_{T-1})
    Buffer gates;                   // float32 (T N, 4 H): LSTM i, f, g, o; GRU hh, z, r, h U_h + b'_h
    Buffer c;                       // LSTM float32 ((T + 1) N, H): c0, then c after each step
    Buffer weights;                 // B (C + H, 4 H) in the compute dtype, as the forward ran with it
    std::vector<int32_t> lengths;   // empty: all T
    bool used = false;              // a forward serves one backward
};
using GemmRnnSavedPtr = std::shared_ptr<GemmRnnSaved>;

// ---- The element-wise work of one step, for rows [n0, n1) of the batch.
struct StepWork {
    bool lstm, bf16, backward;
    int64_t N, T, C, H, t;
    float* gates;          // the whole (T N, 4 H)
    void* x;               // forward: the whole (T N, C)
    const float* px;       // forward: this step's P_x (rows from first_row; LSTM: P_x + P_h)
    const float* ph;       // forward, GRU: this step's P_h
    int64_t first_row;
    float* c;              // LSTM: the whole ((T + 1) N, H)
    void* hs;              // the whole ((T + 1) N, H)
    float* sequences;      // forward: (N, T, H) float32 outputs
    // Backward.
    const float* d_layer;  // (N, T, H) or null
    float* dh;             // (N, H): in, the gradient on h_t from the later steps; out, its direct part on h_{t-1}
    float* dc;             // LSTM (N, H): in dc_t, out dc_{t-1}
    const float* dc_final; // LSTM with lengths: added at step len - 1; null otherwise
    const int32_t* lengths;
    void* dg_x;            // the whole (T N, x_width) gate gradients of the x side, compute dtype
    void* dg_h;            // and of the h side (T N, h_width): LSTM's is dg_x
    float* dbias;          // (N, 4 H) per-sample sums of the gate gradients

    float* gate_row(int64_t n) const { return gates + (t * N + n) * 4 * H; }
    const float* px_row(int64_t n) const { return px + (n - first_row) * (lstm ? 4 : 3) * H; }
    const float* ph_row(int64_t n) const { return ph + (n - first_row) * 3 * H; }
    // Element offset of h_{t-1} of sample n in hs (h_t: h_before(t + 1, n)).
    int64_t h_before(int64_t step, int64_t n) const { return (step * N + n) * H; }
};

// Stores what is read again only after the whole sequence (the gates for the backward, the layer's
// outputs). kFast (AVX-512, GCC): a non-temporal store, which skips reading the line into the
// caches first as a plain store of a line not in cache does; inline assembly for the reason
// reciprocal() gives in simd16.hpp. A partial or unaligned vector takes a plain store.
template <bool kFast>
[[gnu::always_inline]] inline void store_for_later(float* p, v16 v, int64_t m) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    if constexpr (kFast) {
        if (m == kLanes && reinterpret_cast<uintptr_t>(p) % 64 == 0) {
            asm volatile("vmovntps %1, %0" : "=m"(*reinterpret_cast<v16*>(p)) : "v"(v));
            return;
        }
    }
#endif
    store_part(p, v, m);
}

// Orders the non-temporal stores before what follows (other threads read them after the team).
inline void fence_stores() {
#if defined(__x86_64__)
    asm volatile("sfence" ::: "memory");
#endif
}

template <bool kBf16, bool kFast>
[[gnu::always_inline]] inline void lstm_forward_rows(const StepWork& w, int64_t n0, int64_t n1) {
    const int64_t H = w.H, NH = w.N * H;
    const float* c_prev = w.c + w.t * NH;
    float* c_out = w.c + (w.t + 1) * NH;
    for (int64_t n = n0; n < n1; ++n) {
        float* g = w.gate_row(n);
        const float* p = w.px_row(n);   // the pre-activations
        for (int64_t j = 0; j < H; j += kLanes) {
            const int64_t m = std::min(kLanes, H - j);
            const v16 i = vsigmoid<kFast>(load_part(p + j, m)), f = vsigmoid<kFast>(load_part(p + H + j, m));
            const v16 cc = vtanh<kFast>(load_part(p + 2 * H + j, m)), o = vsigmoid<kFast>(load_part(p + 3 * H + j, m));
            const v16 c = f * load_part(c_prev + n * H + j, m) + i * cc;
            const v16 h = store_c<kBf16>(w.hs, w.h_before(w.t + 1, n) + j, o * vtanh<kFast>(c), m);
            const v16 gates[4] = {i, f, cc, o};
            for (int q = 0; q < 4; ++q) store_for_later<kFast>(g + q * H + j, gates[q], m);
            store_part(c_out + n * H + j, c, m);   // read by the next step: a plain store
            store_for_later<kFast>(w.sequences + (n * w.T + w.t) * H + j, h, m);
        }
    }
}

template <bool kBf16, bool kFast>
[[gnu::always_inline]] inline void gru_forward_rows(const StepWork& w, int64_t n0, int64_t n1) {
    const int64_t H = w.H;
    for (int64_t n = n0; n < n1; ++n) {
        float* g = w.gate_row(n);
        const float* px = w.px_row(n);   // x W_h + b_h, x W_z + b_z, x W_r + b_r
        const float* ph = w.ph_row(n);   // h U_z + b'_z, h U_r + b'_r, h U_h + b'_h
        for (int64_t j = 0; j < H; j += kLanes) {
            const int64_t m = std::min(kLanes, H - j);
            const v16 z = vsigmoid<kFast>(load_part(px + H + j, m) + load_part(ph + j, m));
            const v16 r = vsigmoid<kFast>(load_part(px + 2 * H + j, m) + load_part(ph + H + j, m));
            const v16 uh = load_part(ph + 2 * H + j, m);
            const v16 hh = vtanh<kFast>(load_part(px + j, m) + r * uh);
            const v16 h_prev = load_c<kBf16>(w.hs, w.h_before(w.t, n) + j, m);
            const v16 h = store_c<kBf16>(w.hs, w.h_before(w.t + 1, n) + j, z * h_prev + (1.0f - z) * hh, m);
            const v16 gates[4] = {hh, z, r, uh};
            for (int q = 0; q < 4; ++q) store_for_later<kFast>(g + q * H + j, gates[q], m);
            store_for_later<kFast>(w.sequences + (n * w.T + w.t) * H + j, h, m);
        }
    }
}

// d: the gradient on h_t (the output's plus the later steps').
[[gnu::always_inline]] inline v16 output_gradient(const StepWork& w, int64_t n, int64_t j, int64_t m) {
    v16 d = load_part(w.dh + n * w.H + j, m);
    if (w.d_layer) d += load_part(w.d_layer + (n * w.T + w.t) * w.H + j, m);
    return d;
}

// The four blocks of a row's gate gradients: stored in the compute dtype into each side's buffer
// that has the block, summed for the bias.
template <bool kBf16>
[[gnu::always_inline]] inline void store_gate_gradients(const StepWork& w, int64_t n, int64_t j, int64_t m,
                                                        const v16 (&parts)[4]) {
    const int64_t H = w.H, row = w.t * w.N + n;
    float* db = w.dbias + n * 4 * H;
    if (w.lstm)
        for (int q = 0; q < 4; ++q) store_c<kBf16>(w.dg_x, row * 4 * H + q * H + j, parts[q], m);
    else   // GRU: x side blocks 0-2, h side blocks 1-3 (see "The layout")
        for (int q = 0; q < 4; ++q) {
            if (q < 3) store_c<kBf16>(w.dg_x, row * 3 * H + q * H + j, parts[q], m);
            if (q > 0) store_c<kBf16>(w.dg_h, row * 3 * H + (q - 1) * H + j, parts[q], m);
        }
    for (int q = 0; q < 4; ++q) store_part(db + q * H + j, load_part(db + q * H + j, m) + parts[q], m);
}

template <bool kBf16, bool kFast>
[[gnu::always_inline]] inline void lstm_backward_rows(const StepWork& w, int64_t n0, int64_t n1) {
    const int64_t H = w.H, NH = w.N * H;
    const float* c_prev = w.c + w.t * NH;
    const float* c_now = w.c + (w.t + 1) * NH;
    for (int64_t n = n0; n < n1; ++n) {
        const float* g = w.gate_row(n);
        const bool inject_c = w.dc_final && w.lengths[n] - 1 == w.t;
        for (int64_t j = 0; j < H; j += kLanes) {
            const int64_t m = std::min(kLanes, H - j);
            const v16 i = load_part(g + j, m), f = load_part(g + H + j, m);
            const v16 cc = load_part(g + 2 * H + j, m), o = load_part(g + 3 * H + j, m);
            const v16 d = output_gradient(w, n, j, m);
            const v16 tc = vtanh<kFast>(load_part(c_now + n * H + j, m));
            v16 dc = load_part(w.dc + n * H + j, m) + d * o * (1.0f - tc * tc);
            if (inject_c) dc += load_part(w.dc_final + n * H + j, m);
            store_part(w.dc + n * H + j, dc * f, m);
            store_part(w.dh + n * H + j, v16{}, m);   // h_{t-1}'s gradient is all in dG B_h^T
            const v16 di = dc * cc * i * (1.0f - i), df = dc * load_part(c_prev + n * H + j, m) * f * (1.0f - f);
            store_gate_gradients<kBf16>(w, n, j, m, {di, df, dc * i * (1.0f - cc * cc), d * tc * o * (1.0f - o)});
        }
    }
}

template <bool kBf16, bool kFast>
[[gnu::always_inline]] inline void gru_backward_rows(const StepWork& w, int64_t n0, int64_t n1) {
    const int64_t H = w.H;
    for (int64_t n = n0; n < n1; ++n) {
        const float* g = w.gate_row(n);
        for (int64_t j = 0; j < H; j += kLanes) {
            const int64_t m = std::min(kLanes, H - j);
            const v16 hh = load_part(g + j, m), z = load_part(g + H + j, m), r = load_part(g + 2 * H + j, m);
            const v16 h_prev = load_c<kBf16>(w.hs, w.h_before(w.t, n) + j, m);
            const v16 d = output_gradient(w, n, j, m);
            const v16 dz = d * (h_prev - hh) * z * (1.0f - z);
            const v16 dhh = d * (1.0f - z) * (1.0f - hh * hh);
            const v16 dr = dhh * load_part(g + 3 * H + j, m) * r * (1.0f - r);
            store_part(w.dh + n * H + j, d * z, m);   // the direct part; dG B_h^T is added next
            store_gate_gradients<kBf16>(w, n, j, m, {dhh, dz, dr, dhh * r});
        }
    }
}

// kFast: the AVX-512 build, whose activations take reciprocals instead of divisions (simd16.hpp).
template <bool kBf16, bool kFast>
[[gnu::always_inline]] inline void step_rows_for(const StepWork& w, int64_t n0, int64_t n1) {
    if (w.lstm) w.backward ? lstm_backward_rows<kBf16, kFast>(w, n0, n1) : lstm_forward_rows<kBf16, kFast>(w, n0, n1);
    else w.backward ? gru_backward_rows<kBf16, kFast>(w, n0, n1) : gru_forward_rows<kBf16, kFast>(w, n0, n1);
}

template <bool kFast>
[[gnu::always_inline]] inline void step_rows(const StepWork& w, int64_t n0, int64_t n1) {
    if (w.bf16) step_rows_for<true, kFast>(w, n0, n1);
    else step_rows_for<false, kFast>(w, n0, n1);
}

[[gnu::target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]] void step_rows_avx512(const StepWork& w, int64_t n0,
                                                                                   int64_t n1) {
    step_rows<true>(w, n0, n1);
}
void step_rows_portable(const StepWork& w, int64_t n0, int64_t n1) { step_rows<false>(w, n0, n1); }

// set_small_rnn_baseline_isa (tests) switches both of our kernels to their baseline build.
bool use_avx512() {
    static const bool has_bw = __builtin_cpu_supports("avx512bw");
    return has_bw && small_rnn_uses_avx512();
}

void step_rows_dispatch(const StepWork& w, int64_t n0, int64_t n1) {
    if (use_avx512()) step_rows_avx512(w, n0, n1);
    else step_rows_portable(w, n0, n1);
}

// Asks for [p, p + bytes) in cache ahead of use. A step's rows were written a whole sequence
// earlier and have left the caches: without this, the step's product and loops wait on memory.
void prefetch(const void* p, int64_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 1, 3);
}

// Prefetches what step t reads for rows [n0, n1) that the step before it did not touch.
void prefetch_step(const StepWork& w, int64_t t, int64_t n0, int64_t n1) {
    const int64_t rows = n1 - n0, es = w.bf16 ? 2 : 4;
    if (!w.backward) {   // x_t, the product's input
        prefetch(static_cast<const char*>(w.x) + es * (t * w.N + n0) * w.C, es * rows * w.C);
        return;
    }
    prefetch(w.gates + (t * w.N + n0) * 4 * w.H, sizeof(float) * rows * 4 * w.H);
    if (w.lstm) prefetch(w.c + (t * w.N + n0) * w.H, sizeof(float) * rows * w.H);
    else prefetch(static_cast<const char*>(w.hs) + es * w.h_before(t, n0), es * rows * w.H);   // GRU's h_{t-1}
    if (w.d_layer)
        for (int64_t n = n0; n < n1; ++n) prefetch(w.d_layer + (n * w.T + t) * w.H, sizeof(float) * w.H);
}

// run_team_of_solo_members for members that may throw (oneDNN's errors): the first error is
// rethrown after the team, as a member itself must not throw.
void run_members(int threads, const std::function<void(int t, int team)>& member) {
    std::mutex mutex;
    std::exception_ptr error;
    run_team_of_solo_members(std::max(threads, 1), [&](int t, int team) {
        try {
            member(t, team);
        } catch (...) {
            std::lock_guard lock(mutex);
            if (!error) error = std::current_exception();
        }
    });
    if (error) std::rethrow_exception(error);
}

// The recurrence's rows split across the backend's threads once: each thread runs all T steps for
// its rows, products and gates, with no barrier between steps (a sample's steps depend only on its
// own past). Rows per thread at least this many: below it a step's products are too small to share.
constexpr int64_t kMinRowsPerThread = 8;

void run_recurrence(int64_t N, const std::function<void(int64_t n0, int64_t n1)>& member) {
    const int threads = static_cast<int>(std::min<int64_t>(OneDnnBackend::current_threads(), N / kMinRowsPerThread));
    run_members(threads, [&](int t, int team) {
        const int64_t n0 = N * t / team, n1 = N * (t + 1) / team;
        if (n0 < n1) member(n0, n1);
    });
}

// ---- Conversions into the compute dtype.
template <bool kBf16>
[[gnu::always_inline]] inline void convert_row_for(const float* src, void* dst, int64_t n) {
    for (int64_t j = 0; j < n; j += kLanes) {
        const int64_t m = std::min(kLanes, n - j);
        store_c<kBf16>(dst, j, load_part(src + j, m), m);
    }
}
[[gnu::target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]] void convert_row_avx512(const float* src, uint16_t* dst,
                                                                                     int64_t n) {
    convert_row_for<true>(src, dst, n);
}
// n floats into the compute dtype.
void convert_row(const float* src, void* dst, int64_t n, bool bf16) {
    if (!bf16) std::memcpy(dst, src, sizeof(float) * n);
    else if (use_avx512()) convert_row_avx512(src, static_cast<uint16_t*>(dst), n);
    else convert_row_for<true>(src, dst, n);
}

// The stacked weights B (C + H, 4 H) in the compute dtype, and the biases of both sides in B's
// blocks (4 H each), from Keras's.
struct Stacked {
    Buffer b;
    std::vector<float> bias;             // the x side's: Keras's bias, or GRU's input bias
    std::vector<float> recurrent_bias;   // the h side's: GRU's recurrent bias; zeros for LSTM
};
Stacked stacked_weights(const RnnSpec& spec, const RnnWeights& w, int64_t C, bool bf16) {
    const int64_t H = spec.units, W4 = 4 * H;
    const bool lstm = spec.cell == RnnCell::lstm;
    const int64_t G = lstm ? 4 : 3, GH = G * H;
    Buffer plain = floats((C + H) * W4);
    float* B = plain.as<float>();
    std::fill(B, B + (C + H) * W4, 0.0f);
    // Keras's (rows, G H) matrix into B's rows from row0, gate by gate.
    auto place = [&](const float* from, int64_t rows, int64_t row0, bool recurrent) {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < G; ++q)
                std::copy(from + r * GH + q * H, from + r * GH + (q + 1) * H,
                          B + (row0 + r) * W4 + our_block(lstm, recurrent, q) * H);
    };
    place(w.kernel.data<float>(), C, 0, false);
    place(w.recurrent_kernel.data<float>(), H, C, true);
    Stacked out{take((C + H) * W4, bf16), std::vector<float>(static_cast<size_t>(W4), 0.0f),
                std::vector<float>(static_cast<size_t>(W4), 0.0f)};
    // LSTM's bias (G H) is the input side's; GRU's (2, G H) has the recurrent side's second.
    if (spec.use_bias)
        for (int64_t side = 0; side < (lstm ? 1 : 2); ++side)
            for (int64_t q = 0; q < G; ++q)
                std::copy_n(w.bias.data<float>() + side * GH + q * H, H,
                            (side ? out.recurrent_bias : out.bias).data() + our_block(lstm, side == 1, q) * H);
    convert_row(B, out.b.data(), (C + H) * W4, bf16);
    return out;
}

// The mode set_gemm_rnn_mode chose (none: KERASCPP_GEMM_RNN's).
std::optional<GemmRnnMode>& forced_mode() {
    static std::optional<GemmRnnMode> mode;
    return mode;
}

std::vector<int32_t> all_steps(int64_t N, int64_t T) {
    return std::vector<int32_t>(static_cast<size_t>(N), static_cast<int32_t>(T));
}

}  // namespace

void set_gemm_rnn_mode(std::optional<GemmRnnMode> mode) { forced_mode() = mode; }

GemmRnnMode gemm_rnn_mode() {
    return forced_mode() ? *forced_mode() : kernel_mode_from_environment("KERASCPP_GEMM_RNN");
}

bool gemm_rnn_supports(const RnnSpec& spec) {
    const bool gates_default = spec.activation == Activation::tanh && spec.recurrent_activation == Activation::sigmoid;
    return gates_default && spec.units >= 1 &&
           (spec.cell == RnnCell::lstm || (spec.cell == RnnCell::gru && spec.reset_after));
}

bool gemm_rnn_chosen(const RnnSpec& spec, bool bf16, bool training) {
    if (!gemm_rnn_supports(spec)) return false;
    switch (gemm_rnn_mode()) {
        case GemmRnnMode::always: return true;
        case GemmRnnMode::never: return false;
        default: break;
    }
    const bool lstm = spec.cell == RnnCell::lstm, small = spec.units <= kGemmRnnAutoMaxUnits;
    if (bf16) return small || (!lstm && training);
    return training && (lstm ? small : spec.units <= kGemmRnnAutoMaxGruFloat32Units);
}

bool is_gemm_rnn_forward(const RnnForward& fwd) { return std::any_cast<GemmRnnSavedPtr>(&fwd.saved) != nullptr; }

RnnForward gemm_rnn_forward(OneDnnBackend& be, const RnnSpec& spec, const Tensor& x, const RnnWeights& w,
                            const Tensor& h0, const Tensor& c0, bool training, bool bf16,
                            const std::vector<int32_t>& lengths) {
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units, NH = N * H;
    const bool lstm = spec.cell == RnnCell::lstm;
    const size_t es = bf16 ? 2 : 4;
    auto s = std::make_shared<GemmRnnSaved>();
    s->key = PlanKey{N, T, C, H, lstm, bf16, OneDnnBackend::primitive_threads()};
    s->lengths = lengths;

    // x time-major (processing order), and h0 into hs's first N rows.
    const Tensor xs = spec.go_backwards ? reverse_valid_steps(x, lengths) : x;
    s->x = take(T * N * C, bf16);
    s->hs = take((T + 1) * NH, bf16);
    char* x_rows = static_cast<char*>(s->x.data());
    char* hs = static_cast<char*>(s->hs.data());
    run_ranges(OneDnnBackend::current_threads(), T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            for (int64_t n = 0; n < N; ++n)
                convert_row(xs.data<float>() + (n * T + t) * C, x_rows + es * (t * N + n) * C, C, bf16);
    });
    if (h0.defined()) convert_row(h0.data<float>(), hs, NH, bf16);
    else std::memset(hs, 0, es * NH);
    Stacked B = stacked_weights(spec, w, C, bf16);
    s->gates = floats(T * N * 4 * H);
    if (lstm) {
        s->c = floats((T + 1) * NH);
        if (c0.defined()) std::copy(c0.data<float>(), c0.data<float>() + NH, s->c.as<float>());
        else std::fill(s->c.as<float>(), s->c.as<float>() + NH, 0.0f);
    }

    const Sides side = sides(lstm, H);
    const dt in = bf16 ? dt::bf16 : dt::f32;
    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32);
    const StepWork work{.lstm = lstm, .bf16 = bf16, .backward = false, .N = N, .T = T, .C = C, .H = H, .t = 0,
                        .gates = s->gates.as<float>(), .x = x_rows, .px = nullptr, .ph = nullptr, .first_row = 0,
                        .c = s->c.as<float>(), .hs = hs, .sequences = out.sequences.data<float>(),
                        .d_layer = nullptr, .dh = nullptr, .dc = nullptr, .dc_final = nullptr, .lengths = nullptr,
                        .dg_x = nullptr, .dg_h = nullptr, .dbias = nullptr};
    // B_x and B_h over their sides' columns.
    const memory::desc bx({C, side.x_width}, in, memory::dims{4 * H, 1});
    const memory::desc bh({H, side.h_width}, in, memory::dims{4 * H, 1});
    const void* bh_data = static_cast<const char*>(B.b.data()) + es * (C * 4 * H + side.h_first);
    run_recurrence(N, [&](int64_t n0, int64_t n1) {
        const int64_t rows = n1 - n0;
        const auto plan = step_plan_for(be, StepKey{rows, C, H, lstm, bf16, OneDnnBackend::primitive_threads()});
        const Buffer wx = weights_for(be, plan->step_x, bx, B.b.data());
        const Buffer wh = weights_for(be, plan->step, bh, bh_data);
        Buffer px = floats(rows * side.x_width), ph_own = lstm ? Buffer() : floats(rows * side.h_width);
        float* ph = lstm ? px.as<float>() : ph_own.as<float>();
        GemmRunner step_x(be, plan->step_x), step(be, plan->step);
        StepWork mine = work;
        mine.px = px.as<float>(), mine.ph = ph, mine.first_row = n0;
        for (int64_t t = 0; t < T; ++t) {
            mine.t = t;
            step_x(x_rows + es * (t * N + n0) * C, wx.data(), px.as<float>(), B.bias.data());
            step(hs + es * (t * N + n0) * H, wh.data(), ph, B.recurrent_bias.data() + side.h_first);
            step_rows_dispatch(mine, n0, n1);
            if (t + 1 < T) prefetch_step(mine, t + 1, n0, n1);
        }
        fence_stores();
    });

    const std::vector<int32_t> steps = lengths.empty() ? all_steps(N, T) : lengths;
    out.h = states_at_lengths(out.sequences.data<float>(), H, T * H, h0, steps, H);
    if (lstm) out.c = states_at_lengths(s->c.as<float>() + NH, NH, H, c0, steps, H);
    if (training) {
        s->weights = std::move(B.b);
        out.saved = s;
    }
    return out;
}

RnnGradients gemm_rnn_backward(OneDnnBackend& be, const RnnSpec& spec, RnnForward& fwd, const Tensor& d_sequences,
                               const Tensor& dh, const Tensor& dc) {
    GemmRnnSaved& s = **std::any_cast<GemmRnnSavedPtr>(&fwd.saved);
    if (s.used)
        runtime_error("Layer \"{}\": this forward pass was already used by a backward pass (a fused RNN forward "
                      "serves one backward: run the layer again, or ask a persistent GradientTape for its "
                      "gradients in one call)", spec.layer_name);
    s.used = true;
    const PlanKey& k = s.key;
    const bool lstm = k.lstm;
    const int64_t N = k.N, T = k.T, C = k.C, H = k.H, W4 = 4 * H, GH = (lstm ? 4 : 3) * H;
    const Sides side = sides(lstm, H);
    const bool bf16 = k.bf16, packed = !s.lengths.empty();
    const size_t es = bf16 ? 2 : 4;
    const dt in = bf16 ? dt::bf16 : dt::f32;

    // With lengths, dh enters with the output gradient at step len - 1 and dc through dc_final there.
    const Tensor d_layer = packed ? sequences_gradient_at_lengths(d_sequences, dh, s.lengths, T, H) : d_sequences;
    RnnGradients g;
    g.dh0 = (!packed && dh.defined()) ? dh.clone() : Tensor::zeros({N, H});
    if (lstm) g.dc0 = (!packed && dc.defined()) ? dc.clone() : Tensor::zeros({N, H});

    const Buffer& B = s.weights;   // the weights the forward ran with
    // The gates' gradients of each side (one buffer for LSTM, whose sides are the same columns).
    Buffer dg_x = take(T * N * side.x_width, bf16), dg_h_own = lstm ? Buffer() : take(T * N * side.h_width, bf16);
    void* dg_h = lstm ? dg_x.data() : dg_h_own.data();
    std::vector<float> dbias(static_cast<size_t>(N * W4), 0.0f);
    const StepWork work{.lstm = lstm, .bf16 = bf16, .backward = true, .N = N, .T = T, .C = C, .H = H, .t = 0,
                        .gates = s.gates.as<float>(), .x = s.x.data(), .px = nullptr, .ph = nullptr, .first_row = 0,
                        .c = s.c.as<float>(),
                        .hs = s.hs.data(), .sequences = nullptr,
                        .d_layer = d_layer.defined() ? d_layer.data<float>() : nullptr, .dh = g.dh0.data<float>(),
                        .dc = lstm ? g.dc0.data<float>() : nullptr,
                        .dc_final = packed && lstm && dc.defined() ? dc.data<float>() : nullptr,
                        .lengths = s.lengths.data(), .dg_x = dg_x.data(), .dg_h = dg_h, .dbias = dbias.data()};
    // B_h^T over the h side's columns, transposed by strides.
    const memory::desc bh_t({side.h_width, H}, in, memory::dims{1, W4});
    const void* bh = static_cast<const char*>(B.data()) + es * (C * W4 + side.h_first);
    run_recurrence(N, [&](int64_t n0, int64_t n1) {
        const auto plan = step_plan_for(be, StepKey{n1 - n0, C, H, lstm, bf16, OneDnnBackend::primitive_threads()});
        const Buffer b = weights_for(be, plan->step_back, bh_t, bh);
        GemmRunner step_back(be, plan->step_back);
        StepWork mine = work;
        for (int64_t t = T - 1; t >= 0; --t) {
            mine.t = t;
            step_rows_dispatch(mine, n0, n1);
            if (t > 0) prefetch_step(mine, t - 1, n0, n1);
            const char* dg_t = static_cast<char*>(dg_h) + es * (t * N + n0) * side.h_width;
            step_back(dg_t, b.data(), g.dh0.data<float>() + n0 * H);
        }
    });

    // dW^T = dG_x^T x and dU^T = dG_h^T h (transposed: M = the sides' widths ran 15% faster than
    // M = C or H), and dx = dG_x B_x^T with B_x^T read from B by strides. With OpenMP's threads each
    // product runs on all of them (a team of one here); with our own threads, whose primitives run on
    // one thread each, the team shares them out: members 0 and 1 take dW and dU, and each member
    // the dx rows of its share of the steps.
    Buffer d_kernel = floats(side.x_width * C), d_recurrent = floats(side.h_width * H);
    Buffer dx_time_major = floats(T * N * C);
    const std::shared_ptr<Plan> plan = plan_for(be, k);
    const int own_team = OneDnnBackend::current_threads() > OneDnnBackend::primitive_threads()
                             ? OneDnnBackend::current_threads() : 1;
    const memory::desc bx_t({side.x_width, C}, in, memory::dims{1, W4});
    run_members(own_team, [&](int t, int team) {
        if (t == 0) GemmRunner(be, plan->d_kernel)(dg_x.data(), s.x.data(), d_kernel.as<float>());
        if (t == 1 % team) GemmRunner(be, plan->d_recurrent)(dg_h, s.hs.data(), d_recurrent.as<float>());
        const int64_t t0 = T * t / team, t1 = T * (t + 1) / team;
        if (t0 == t1) return;
        const Gemm& dx = plan->d_input((t1 - t0) * N);
        const Buffer b = weights_for(be, dx, bx_t, B.data());
        GemmRunner(be, dx)(static_cast<char*>(dg_x.data()) + es * t0 * N * side.x_width, b.data(),
                           dx_time_major.as<float>() + t0 * N * C);
    });
    g.dweights.kernel = Tensor({C, GH}, DType::float32);
    g.dweights.recurrent_kernel = Tensor({H, GH}, DType::float32);
    // Keras's (rows, G H) matrix `to`, gate by gate, from our transposed (side's width, rows) `from`,
    // whose first row is B's column `first`.
    auto unstack = [&](const float* from, int64_t rows, int64_t first, bool recurrent, float* to) {
        for (int64_t q = 0; q < GH / H; ++q)
            for (int64_t j = 0; j < H; ++j) {
                const float* column = from + (our_block(lstm, recurrent, q) * H - first + j) * rows;
                for (int64_t r = 0; r < rows; ++r) to[r * GH + q * H + j] = column[r];
            }
    };
    unstack(d_kernel.as<float>(), C, 0, false, g.dweights.kernel.data<float>());
    unstack(d_recurrent.as<float>(), H, side.h_first, true, g.dweights.recurrent_kernel.data<float>());

    g.dx = Tensor({N, T, C}, DType::float32);
    run_ranges(OneDnnBackend::current_threads(), N, 1, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n)
            for (int64_t t = 0; t < T; ++t)
                std::memcpy(g.dx.data<float>() + (n * T + t) * C, dx_time_major.as<float>() + (t * N + n) * C,
                            sizeof(float) * C);
    });
    if (spec.go_backwards) g.dx = reverse_valid_steps(g.dx, s.lengths);
    // The forward's buffers are spent: back to host_memory for the next call.
    s.x = Buffer(), s.hs = Buffer(), s.gates = Buffer(), s.c = Buffer(), s.weights = Buffer();

    if (spec.use_bias) {   // the per-sample sums added in sample order: the same bits for any thread count
        std::vector<float> sum(static_cast<size_t>(W4), 0.0f);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < W4; ++j) sum[j] += dbias[n * W4 + j];
        // Keras's layout, as stacked_weights reads it: LSTM (G H); GRU (2, G H), the recurrent side second.
        g.dweights.bias = lstm ? Tensor({GH}, DType::float32) : Tensor({2, GH}, DType::float32);
        float* db = g.dweights.bias.data<float>();
        for (int64_t recurrent = 0; recurrent < (lstm ? 1 : 2); ++recurrent)
            for (int64_t q = 0; q < GH / H; ++q)
                std::copy_n(sum.data() + our_block(lstm, recurrent == 1, q) * H, H, db + recurrent * GH + q * H);
    }
    if (packed) {
        add_rows_of_empty_samples(g.dh0, dh, s.lengths);
        if (lstm) add_rows_of_empty_samples(g.dc0, dc, s.lengths);
    }
    return g;
}

}  // namespace keras::backend
