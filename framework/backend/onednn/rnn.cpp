// SimpleRNN / LSTM / GRU on oneDNN 2.6's RNN primitives (vanilla_rnn, lstm, gru, lbr_gru).
//
// What stays in here (the layers never see it):
// - Keras's kernel (C, G*H) and recurrent_kernel (H, G*H) are oneDNN's `ldigo` byte for byte, so
//   the forward reads them in place; the backward rejects plain ldigo weights, so they are
//   reordered into whatever layout the backward primitive chose.
// - Weight gradients ACCUMULATE in oneDNN 2.6: they are written into freshly zeroed buffers.
// - Bias is mandatory: zeros when use_bias is false (its gradient is dropped). GRU reset_after
//   (lbr_gru) takes 4 bias rows where Keras has (2, 3H): mapped on the way in and back.
// - go_backwards: x is reversed along time and run left to right, which leaves the outputs in
//   Keras's processing order; dx is reversed back.
// - Per-sample lengths (masked layers): no such thing in oneDNN 2.6, so the primitive runs all T
//   steps over the right-packed batch and rnn_lengths.cpp reads the states at len - 1 and zeroes
//   the gradients past len. LSTM's c at len - 1 is not exposed either, nor can dc enter there: on
//   the first read of final_c(), or a backward with dc, the step loop replays that forward (once)
//   and gives them, so the primitive keeps every masked call that needs neither.
// - Primitives, reorders, scratchpads and workspaces are cached by (cell, activation, N, T, C, H,
//   training) so the training loop only executes them.
#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::memory;
using tag = memory::format_tag;

namespace {

// The four oneDNN cells a Keras spec maps to.
enum class Kind { vanilla_rnn, lstm, gru, lbr_gru };

Kind kind_of(const RnnSpec& spec) {
    switch (spec.cell) {
        case RnnCell::simple_rnn: return Kind::vanilla_rnn;
        case RnnCell::lstm: return Kind::lstm;
        case RnnCell::gru: return spec.reset_after ? Kind::lbr_gru : Kind::gru;
    }
    runtime_error("unknown RNN cell");
}

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::vanilla_rnn: return "vanilla_rnn";
        case Kind::lstm: return "lstm";
        case Kind::gru: return "gru";
        case Kind::lbr_gru: return "lbr_gru";
    }
    return "?";
}

// The eltwise algorithm vanilla_rnn uses for a Keras activation; undef when it has none.
dnnl::algorithm vanilla_activation(Activation a) {
    switch (a) {
        case Activation::tanh: return dnnl::algorithm::eltwise_tanh;
        case Activation::relu: return dnnl::algorithm::eltwise_relu;
        case Activation::sigmoid: return dnnl::algorithm::eltwise_logistic;
        default: return dnnl::algorithm::undef;
    }
}

// Why the primitive cannot run this spec; empty when it can.
std::string unsupported_reason(const RnnSpec& spec) {
    const char* prim = kind_name(kind_of(spec));
    if (spec.cell == RnnCell::simple_rnn) {
        if (vanilla_activation(spec.activation) == dnnl::algorithm::undef)
            return fmt::format("activation='{}' is not supported by oneDNN's {} primitive (tanh, relu, sigmoid)",
                               to_string(spec.activation), prim);
        return {};
    }
    std::vector<std::string> reasons;
    if (spec.activation != Activation::tanh)
        reasons.push_back(fmt::format("activation='{}'", to_string(spec.activation)));
    if (spec.recurrent_activation != Activation::sigmoid)
        reasons.push_back(fmt::format("recurrent_activation='{}'", to_string(spec.recurrent_activation)));
    if (reasons.empty()) return {};
    const std::string what = reasons.size() == 1 ? reasons[0] : reasons[0] + " and " + reasons[1];
    return fmt::format("{} {} not supported by oneDNN's {} primitive", what, reasons.size() == 1 ? "is" : "are",
                       prim);
}

// oneDNN's vanilla_rnn with relu maps NaN to 0 as its eltwise relu does, so a NaN or inf in what the
// cell reads (inf times a zero weight is NaN) or an overflow along the sequence would vanish from
// the outputs. Such calls run the step loop, whose relu keeps NaN. The checks read the inputs and
// outputs once: little next to the recurrence itself.
bool relu_cell(const RnnSpec& spec) { return spec.cell == RnnCell::simple_rnn && spec.activation == Activation::relu; }

bool all_finite(const Tensor& t) {
    if (!t.defined()) return true;
    const float* p = t.data<float>();
    const int64_t n = t.numel();
    // inf and NaN are the floats whose exponent bits are all ones; integer ops vectorise well.
    uint32_t nonfinite = 0;
    for (int64_t i = 0; i < n; ++i) nonfinite |= (std::bit_cast<uint32_t>(p[i]) & 0x7f800000u) == 0x7f800000u;
    return nonfinite == 0;
}

bool relu_cell_reads_nonfinite(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0) {
    return relu_cell(spec) && !(all_finite(x) && all_finite(h0) && all_finite(w.kernel) &&
                                all_finite(w.recurrent_kernel) && all_finite(w.bias));
}

memory::desc md(const memory::dims& dims, tag t) { return memory::desc(dims, memory::data_type::f32, t); }

memory wrap(const dnnl::engine& engine, const memory::desc& desc, const void* ptr) {
    return memory(desc, engine, const_cast<void*>(ptr));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The cache: one entry per (cell, activation, N, T, C, H, training).
// ---------------------------------------------------------------------------------------------
struct RnnKey {
    Kind kind;
    Activation activation;
    int64_t N, T, C, H;
    bool training;
    int threads;   // OneDnnBackend::current_threads() when created
    auto operator<=>(const RnnKey&) const = default;
};

// Everything built once for a shape: primitives, their scratchpads, the buffers the calls reuse.
struct FusedRnn {
    RnnKey key;
    int64_t G = 1;            // gate blocks in the Keras kernels
    int64_t bias_rows = 1;    // oneDNN bias rows: G, or G + 1 for lbr_gru

    dnnl::primitive_desc fwd_pd, bwd_pd;
    dnnl::primitive fwd, bwd;
    memory fwd_scratchpad, bwd_scratchpad;
    // The backward wants its own weight layouts: Keras's weights are reordered into these.
    memory bwd_weights_layer, bwd_weights_iter;
    dnnl::primitive to_bwd_weights_layer, to_bwd_weights_iter;

    std::vector<float> zero_state;       // (N, H): a missing h0 / c0 / state gradient
    std::vector<float> zero_sequences;   // (N, T, H): a missing d_sequences (built on first need)
    std::vector<float> bias;             // oneDNN's bias when it is not Keras's bias as is
    std::vector<float> diff_bias;        // oneDNN's bias gradient when it is not Keras's as is
    std::vector<memory> spare_workspaces;   // returned by finished backward passes, reused
};

struct OneDnnBackend::RnnCache {
    std::mutex mutex;   // the entries' scratch buffers are shared: one RNN call at a time
    // Forward results hold their own entry (FusedSaved::rnn), so an evicted one lives until their backward.
    LruCache<RnnKey, std::shared_ptr<FusedRnn>> entries{kRnnCacheCapacity};
};

OneDnnBackend::RnnCache& OneDnnBackend::rnn_cache() {
    std::call_once(rnn_cache_once_, [this] { rnn_cache_ = std::make_shared<RnnCache>(); });
    return *rnn_cache_;
}

CacheStats OneDnnBackend::rnn_cache_stats() {
    RnnCache& cache = rnn_cache();
    std::lock_guard lock(cache.mutex);
    return stats_of(cache.entries);
}

namespace {

// The step loop's run of a fused LSTM forward with lengths: what the primitive cannot give (c at
// each sample's last real step, dc entering there) comes from it, computed on first need only.
struct StepLoopReplay {
    RnnSpec spec;                 // go_backwards false: x is in processing order already
    Tensor x, h0, c0;
    RnnWeights w;                 // copies: the optimizer updates the layer's weights in place
    std::vector<int32_t> lengths;
    std::optional<RnnForward> fwd;
    RnnForward& forward() {
        if (!fwd) fwd = rnn_fallback_forward(spec, x, w, h0, c0, {}, lengths);
        return *fwd;
    }
};

// What the fused backward needs from its forward pass (kept alive in RnnForward::saved).
struct FusedSaved {
    std::shared_ptr<FusedRnn> rnn;
    std::shared_ptr<StepLoopReplay> replay;   // LSTM with lengths only
    Tensor x;            // the input as the primitive saw it (time reversed for go_backwards)
    Tensor h0, c0;       // undefined: zeros
    Tensor dst_h, dst_c;                // the primitive's own final states (after step T - 1)
    std::vector<int32_t> lengths;       // empty: all T
    memory workspace;    // consumed by the backward pass
};
using FusedSavedPtr = std::shared_ptr<FusedSaved>;

struct Descs {
    memory::desc src_layer, state, weights_layer, weights_iter, bias, dst_layer;
};

Descs descs_for(const RnnKey& k, int64_t G, int64_t bias_rows, tag weights_tag) {
    return Descs{
        .src_layer = md({k.T, k.N, k.C}, tag::ntc),   // Keras's batch-major (N, T, C)
        .state = md({1, 1, k.N, k.H}, tag::ldnc),
        .weights_layer = md({1, 1, k.C, G, k.H}, weights_tag),
        .weights_iter = md({1, 1, k.H, G, k.H}, weights_tag),
        .bias = md({1, 1, bias_rows, k.H}, tag::ldgo),
        .dst_layer = md({k.T, k.N, k.H}, tag::ntc),
    };
}

constexpr auto kDirection = dnnl::rnn_direction::unidirectional_left2right;

dnnl_rnn_desc_t forward_desc(const RnnKey& k, const Descs& d, dnnl::prop_kind prop) {
    switch (k.kind) {
        case Kind::vanilla_rnn:
            return dnnl::vanilla_rnn_forward::desc(prop, vanilla_activation(k.activation), kDirection, d.src_layer,
                                                   d.state, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
                                                   d.state)
                .data;
        case Kind::lstm:
            return dnnl::lstm_forward::desc(prop, kDirection, d.src_layer, d.state, d.state, d.weights_layer,
                                            d.weights_iter, d.bias, d.dst_layer, d.state, d.state)
                .data;
        case Kind::gru:
            return dnnl::gru_forward::desc(prop, kDirection, d.src_layer, d.state, d.weights_layer, d.weights_iter,
                                           d.bias, d.dst_layer, d.state)
                .data;
        case Kind::lbr_gru:
            return dnnl::lbr_gru_forward::desc(prop, kDirection, d.src_layer, d.state, d.weights_layer,
                                               d.weights_iter, d.bias, d.dst_layer, d.state)
                .data;
    }
    runtime_error("unknown RNN kind");
}

// d: the forward tensors (weights `any`); g: their gradients (weights plain ldigo).
dnnl_rnn_desc_t backward_desc(const RnnKey& k, const Descs& d, const Descs& g) {
    const auto prop = dnnl::prop_kind::backward;
    switch (k.kind) {
        case Kind::vanilla_rnn:
            return dnnl::vanilla_rnn_backward::desc(prop, vanilla_activation(k.activation), kDirection, d.src_layer,
                                                    d.state, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
                                                    d.state, g.src_layer, g.state, g.weights_layer, g.weights_iter,
                                                    g.bias, g.dst_layer, g.state)
                .data;
        case Kind::lstm:
            return dnnl::lstm_backward::desc(prop, kDirection, d.src_layer, d.state, d.state, d.weights_layer,
                                             d.weights_iter, d.bias, d.dst_layer, d.state, d.state, g.src_layer,
                                             g.state, g.state, g.weights_layer, g.weights_iter, g.bias, g.dst_layer,
                                             g.state, g.state)
                .data;
        case Kind::gru:
            return dnnl::gru_backward::desc(prop, kDirection, d.src_layer, d.state, d.weights_layer, d.weights_iter,
                                            d.bias, d.dst_layer, d.state, g.src_layer, g.state, g.weights_layer,
                                            g.weights_iter, g.bias, g.dst_layer, g.state)
                .data;
        case Kind::lbr_gru:
            return dnnl::lbr_gru_backward::desc(prop, kDirection, d.src_layer, d.state, d.weights_layer,
                                                d.weights_iter, d.bias, d.dst_layer, d.state, g.src_layer, g.state,
                                                g.weights_layer, g.weights_iter, g.bias, g.dst_layer, g.state)
                .data;
    }
    runtime_error("unknown RNN kind");
}

std::shared_ptr<FusedRnn> build_fused(dnnl::engine& engine, const RnnKey& key, int64_t G) {
    auto rnn = std::make_shared<FusedRnn>();
    rnn->key = key;
    rnn->G = G;
    rnn->bias_rows = key.kind == Kind::lbr_gru ? G + 1 : G;

    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);   // scratchpads allocated once, below

    // The forward reads Keras's weights in place (ldigo).
    const Descs plain = descs_for(key, G, rnn->bias_rows, tag::ldigo);
    const auto prop = key.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const dnnl_rnn_desc_t fd = forward_desc(key, plain, prop);
    rnn->fwd_pd = dnnl::primitive_desc(&fd, &attr, engine, nullptr);
    rnn->fwd = dnnl::primitive(rnn->fwd_pd);
    rnn->fwd_scratchpad = memory(rnn->fwd_pd.scratchpad_desc(), engine);

    if (key.training) {
        const Descs any = descs_for(key, G, rnn->bias_rows, tag::any);
        const dnnl_rnn_desc_t bd = backward_desc(key, any, plain);
        rnn->bwd_pd = dnnl::primitive_desc(&bd, &attr, engine, rnn->fwd_pd.get());
        rnn->bwd = dnnl::primitive(rnn->bwd_pd);
        rnn->bwd_scratchpad = memory(rnn->bwd_pd.scratchpad_desc(), engine);
        const auto wl = rnn->bwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
        const auto wi = rnn->bwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
        rnn->bwd_weights_layer = memory(wl, engine);
        rnn->bwd_weights_iter = memory(wi, engine);
        rnn->to_bwd_weights_layer = dnnl::reorder(dnnl::reorder::primitive_desc(engine, plain.weights_layer, engine, wl, attr));
        rnn->to_bwd_weights_iter = dnnl::reorder(dnnl::reorder::primitive_desc(engine, plain.weights_iter, engine, wi, attr));
    }
    rnn->zero_state.assign(static_cast<size_t>(key.N * key.H), 0.0f);
    rnn->bias.assign(static_cast<size_t>(rnn->bias_rows * key.H), 0.0f);
    rnn->diff_bias.assign(rnn->bias.size(), 0.0f);
    return rnn;
}

// oneDNN's bias for Keras's: Keras's own when the layouts agree, zeros without a bias, and for
// lbr_gru the 4 rows (u, r, o, u') = (b_in,z + b_rec,z, b_in,r + b_rec,r, b_in,h, b_rec,h).
const float* onednn_bias(FusedRnn& rnn, const RnnSpec& spec, const Tensor& keras_bias) {
    const int64_t H = rnn.key.H;
    if (!spec.use_bias) {
        std::fill(rnn.bias.begin(), rnn.bias.end(), 0.0f);
        return rnn.bias.data();
    }
    const float* b = keras_bias.data<float>();
    if (rnn.key.kind != Kind::lbr_gru) return b;
    const float* b_in = b;
    const float* b_rec = b + 3 * H;
    float* out = rnn.bias.data();
    for (int64_t j = 0; j < H; ++j) {
        out[0 * H + j] = b_in[0 * H + j] + b_rec[0 * H + j];
        out[1 * H + j] = b_in[1 * H + j] + b_rec[1 * H + j];
        out[2 * H + j] = b_in[2 * H + j];
        out[3 * H + j] = b_rec[2 * H + j];
    }
    return out;
}

// Keras's (2, 3H) bias gradient from lbr_gru's 4 rows: the summed rows feed both Keras biases.
Tensor keras_lbr_bias_gradient(const std::vector<float>& d, int64_t H) {
    Tensor out({2, 3 * H}, DType::float32);
    float* d_in = out.data<float>();
    float* d_rec = d_in + 3 * H;
    for (int64_t j = 0; j < H; ++j) {
        d_in[0 * H + j] = d_rec[0 * H + j] = d[0 * H + j];
        d_in[1 * H + j] = d_rec[1 * H + j] = d[1 * H + j];
        d_in[2 * H + j] = d[2 * H + j];
        d_rec[2 * H + j] = d[3 * H + j];
    }
    return out;
}

const float* state_or_zeros(const Tensor& t, const FusedRnn& rnn) {
    return t.defined() ? t.data<float>() : rnn.zero_state.data();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Backend methods.
// ---------------------------------------------------------------------------------------------
RnnPath OneDnnBackend::rnn_path(const RnnSpec& spec) {
    std::string fused = fmt::format("oneDNN {}", kind_name(kind_of(spec)));
    if (spec.cell == RnnCell::simple_rnn) fused += fmt::format(" ({})", to_string(spec.activation));
    if (small_rnn_supports(spec) && small_rnn_mode() != SmallRnnMode::never) {
        // The rule also reads the input's feature count, which only the call knows.
        const std::string kernel = fmt::format("small-RNN kernel ({})", to_string(spec.activation));
        fused = small_rnn_mode() == SmallRnnMode::always
                    ? kernel
                    : fmt::format("{}; {} past {} input features", kernel, fused, kSmallRnnAutoMaxFeatures);
    }
    return rnn_path_for(spec, {.fused = fused,
                               .unsupported = unsupported_reason(spec),
                               .step_loop = "fallback loop",
                               .dropout_step_loop = "fallback loop (the primitive cannot mask the recurrent state "
                                                    "per step)"});
}

RnnForward OneDnnBackend::rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                      const Tensor& c0, bool training, const RnnDropoutMasks& masks,
                                      const std::vector<int32_t>& lengths) {
    check_rnn_inputs(spec, x, w, h0, c0, device());
    check_rnn_lengths(spec, lengths, x.dim(0), x.dim(1));
    if (runs_step_loop(rnn_path(spec), masks) || relu_cell_reads_nonfinite(spec, x, w, h0))
        return rnn_fallback_forward(spec, x, w, h0, c0, masks, lengths);
    if (small_rnn_chosen(spec, x.dim(2))) return small_rnn_forward(spec, x, w, h0, training, lengths);

    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units;
    const bool lstm = spec.cell == RnnCell::lstm;
    std::lock_guard lock(rnn_cache().mutex);

    const RnnKey key{kind_of(spec), spec.cell == RnnCell::simple_rnn ? spec.activation : Activation::tanh,
                     N, T, C, H, training, current_threads()};
    const std::shared_ptr<FusedRnn> slot = rnn_cache().entries.get_or_create(
        key, [&] { return build_fused(engine_, key, rnn_gate_count(spec.cell)); });
    FusedRnn& rnn = *slot;

    auto saved = std::make_shared<FusedSaved>();
    saved->rnn = slot;
    saved->x = spec.go_backwards ? reverse_valid_steps(x, lengths) : x;
    saved->h0 = h0;
    saved->c0 = lstm ? c0 : Tensor();
    saved->lengths = lengths;

    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32);
    out.h = Tensor({N, H}, DType::float32);
    if (lstm) out.c = Tensor({N, H}, DType::float32);

    const Descs d = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC_LAYER, wrap(engine_, d.src_layer, saved->x.raw())},
        {DNNL_ARG_SRC_ITER, wrap(engine_, d.state, state_or_zeros(h0, rnn))},
        {DNNL_ARG_WEIGHTS_LAYER, wrap(engine_, d.weights_layer, w.kernel.raw())},
        {DNNL_ARG_WEIGHTS_ITER, wrap(engine_, d.weights_iter, w.recurrent_kernel.raw())},
        {DNNL_ARG_BIAS, wrap(engine_, d.bias, onednn_bias(rnn, spec, w.bias))},
        {DNNL_ARG_DST_LAYER, wrap(engine_, d.dst_layer, out.sequences.raw())},
        {DNNL_ARG_DST_ITER, wrap(engine_, d.state, out.h.raw())},
        {DNNL_ARG_SCRATCHPAD, rnn.fwd_scratchpad},
    };
    if (lstm) {
        args.emplace(DNNL_ARG_SRC_ITER_C, wrap(engine_, d.state, state_or_zeros(saved->c0, rnn)));
        args.emplace(DNNL_ARG_DST_ITER_C, wrap(engine_, d.state, out.c.raw()));
    }
    if (training) {
        if (rnn.spare_workspaces.empty()) {
            saved->workspace = memory(rnn.fwd_pd.workspace_desc(), engine_);
        } else {
            saved->workspace = std::move(rnn.spare_workspaces.back());
            rnn.spare_workspaces.pop_back();
        }
        args.emplace(DNNL_ARG_WORKSPACE, saved->workspace);
    }
    rnn.fwd.execute(stream(), args);
    stream().wait();
    if (relu_cell(spec) && !all_finite(out.sequences))   // an overflow: a NaN after it may have been hidden
        return rnn_fallback_forward(spec, x, w, h0, c0, masks, lengths);

    saved->dst_h = out.h;
    saved->dst_c = out.c;
    if (!lengths.empty()) {
        // dst_layer (N, T, H) holds h after every step: sample n's state is its row at len - 1.
        out.h = states_at_lengths(out.sequences.data<float>(), H, T * H, h0, lengths, H);
        if (lstm) {
            // c at len - 1 is not exposed: the step loop replays this forward if c is ever read.
            RnnSpec forwards = spec;
            forwards.go_backwards = false;   // saved->x is in processing order
            const RnnWeights copies{w.kernel.clone(), w.recurrent_kernel.clone(),
                                    w.bias.defined() ? w.bias.clone() : Tensor()};
            saved->replay = std::make_shared<StepLoopReplay>(StepLoopReplay{
                .spec = forwards, .x = saved->x, .h0 = h0, .c0 = c0, .w = copies, .lengths = lengths, .fwd = {}});
            out.c = Tensor();
            out.compute_c = [replay = saved->replay] { return replay->forward().c; };
        }
    }
    if (training) out.saved = saved;
    return out;
}

RnnGradients OneDnnBackend::rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                         const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) {
    if (!fwd.saved.has_value())
        runtime_error("Layer \"{}\": rnn_backward needs a forward pass run with training=true", spec.layer_name);
    if (is_small_rnn_forward(fwd)) return small_rnn_backward(spec, w, fwd, d_sequences, dh);
    FusedSavedPtr* saved_ptr = std::any_cast<FusedSavedPtr>(&fwd.saved);
    if (!saved_ptr) return rnn_fallback_backward(spec, w, fwd, d_sequences, dh, dc);
    FusedSaved& saved = **saved_ptr;
    if (!saved.workspace)
        runtime_error("Layer \"{}\": this forward pass was already used by a backward pass (a fused RNN forward serves one backward: run the layer again, or ask a persistent GradientTape for its gradients in one call)", spec.layer_name);

    std::lock_guard lock(rnn_cache().mutex);
    FusedRnn& rnn = *saved.rnn;
    const RnnKey& key = rnn.key;
    const int64_t N = key.N, T = key.T, C = key.C, H = key.H;
    const bool lstm = key.kind == Kind::lstm;
    const bool keras_bias_layout = spec.use_bias && key.kind != Kind::lbr_gru;
    const Descs d = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo);

    // Keras's weights into the layouts the backward primitive chose.
    run(rnn.to_bwd_weights_layer,
        {{DNNL_ARG_FROM, wrap(engine_, d.weights_layer, w.kernel.raw())}, {DNNL_ARG_TO, rnn.bwd_weights_layer}});
    run(rnn.to_bwd_weights_iter,
        {{DNNL_ARG_FROM, wrap(engine_, d.weights_iter, w.recurrent_kernel.raw())}, {DNNL_ARG_TO, rnn.bwd_weights_iter}});

    if (!d_sequences.defined() && rnn.zero_sequences.empty())
        rnn.zero_sequences.assign(static_cast<size_t>(N * T * H), 0.0f);
    // With lengths, the final states' gradient enters through dst_layer at len - 1 (zeros past it)
    // and dst_iter's gradient is zero: the primitive's own final state is past every sample's end.
    const bool packed = !saved.lengths.empty();
    if (packed && lstm && dc.defined()) {
        // The primitive takes dc only after step T - 1, not at each sample's last real step: the step
        // loop's replay of this forward (already run if final_c() was read) gives the gradients.
        rnn.spare_workspaces.push_back(std::move(saved.workspace));
        saved.workspace = memory();
        RnnGradients g = rnn_fallback_backward(saved.replay->spec, w, saved.replay->forward(), d_sequences, dh, dc);
        if (spec.go_backwards) g.dx = reverse_valid_steps(g.dx, saved.lengths);
        return g;
    }
    const Tensor d_layer = packed ? sequences_gradient_at_lengths(d_sequences, dh, saved.lengths, T, H) : d_sequences;
    const Tensor d_iter = packed ? Tensor() : dh;

    RnnGradients g;
    g.dx = Tensor({N, T, C}, DType::float32);
    g.dh0 = Tensor({N, H}, DType::float32);
    if (lstm) g.dc0 = Tensor({N, H}, DType::float32);
    // oneDNN adds into the weight gradients: start them at zero.
    g.dweights.kernel = Tensor::zeros(w.kernel.shape());
    g.dweights.recurrent_kernel = Tensor::zeros(w.recurrent_kernel.shape());
    float* diff_bias = rnn.diff_bias.data();
    if (keras_bias_layout) {
        g.dweights.bias = Tensor::zeros(w.bias.shape());
        diff_bias = g.dweights.bias.data<float>();
    } else {
        std::fill(rnn.diff_bias.begin(), rnn.diff_bias.end(), 0.0f);
    }

    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC_LAYER, wrap(engine_, d.src_layer, saved.x.raw())},
        {DNNL_ARG_SRC_ITER, wrap(engine_, d.state, state_or_zeros(saved.h0, rnn))},
        {DNNL_ARG_WEIGHTS_LAYER, rnn.bwd_weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, rnn.bwd_weights_iter},
        {DNNL_ARG_BIAS, wrap(engine_, d.bias, onednn_bias(rnn, spec, w.bias))},
        {DNNL_ARG_DST_LAYER, wrap(engine_, d.dst_layer, fwd.sequences.raw())},
        {DNNL_ARG_DST_ITER, wrap(engine_, d.state, saved.dst_h.raw())},
        {DNNL_ARG_WORKSPACE, saved.workspace},
        {DNNL_ARG_DIFF_DST_LAYER,
         wrap(engine_, d.dst_layer, d_layer.defined() ? d_layer.raw() : rnn.zero_sequences.data())},
        {DNNL_ARG_DIFF_DST_ITER, wrap(engine_, d.state, state_or_zeros(d_iter, rnn))},
        {DNNL_ARG_DIFF_SRC_LAYER, wrap(engine_, d.src_layer, g.dx.raw())},
        {DNNL_ARG_DIFF_SRC_ITER, wrap(engine_, d.state, g.dh0.raw())},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(engine_, d.weights_layer, g.dweights.kernel.raw())},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(engine_, d.weights_iter, g.dweights.recurrent_kernel.raw())},
        {DNNL_ARG_DIFF_BIAS, wrap(engine_, d.bias, diff_bias)},
        {DNNL_ARG_SCRATCHPAD, rnn.bwd_scratchpad},
    };
    if (lstm) {
        args.emplace(DNNL_ARG_SRC_ITER_C, wrap(engine_, d.state, state_or_zeros(saved.c0, rnn)));
        args.emplace(DNNL_ARG_DST_ITER_C, wrap(engine_, d.state, saved.dst_c.raw()));
        args.emplace(DNNL_ARG_DIFF_DST_ITER_C, wrap(engine_, d.state, state_or_zeros(dc, rnn)));
        args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, wrap(engine_, d.state, g.dc0.raw()));
    }
    rnn.bwd.execute(stream(), args);
    stream().wait();

    // The workspace is spent; the next forward of this shape reuses its memory.
    rnn.spare_workspaces.push_back(std::move(saved.workspace));
    saved.workspace = memory();

    if (spec.use_bias && key.kind == Kind::lbr_gru) g.dweights.bias = keras_lbr_bias_gradient(rnn.diff_bias, H);
    if (spec.go_backwards) g.dx = reverse_valid_steps(g.dx, saved.lengths);
    if (packed) add_rows_of_empty_samples(g.dh0, dh, saved.lengths);
    return g;
}

}  // namespace keras::backend
