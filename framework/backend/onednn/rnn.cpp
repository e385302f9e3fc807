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
//   training, bf16) so the training loop only executes them.
// - bf16 (a mixed_bfloat16 layer, RnnSpec::precision): x, h0 and every h are bfloat16 copies, the
//   weights are reordered into the bfloat16 layout the primitive chose (so oneDNN can pick brgemm);
//   the bias, LSTM's c and all gradients stay float32. The outputs come back as float32 tensors of
//   bfloat16 values. The step loop and the masked-LSTM replay compute in float32.
#include <algorithm>
#include <bit>
#include <cstdlib>
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

memory::desc md(const memory::dims& dims, tag t, memory::data_type type = memory::data_type::f32) {
    return memory::desc(dims, type, t);
}

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
    bool bf16;     // bfloat16 data and weights (mixed_bfloat16); gradients, bias and LSTM's c stay float32
    int threads;   // OneDnnBackend::primitive_threads() when created
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
    // bf16: the forward's weights in the layout its primitive chose (which lets oneDNN pick its brgemm
    // kernels), converted from Keras's float32 weights by these reorders on every call.
    memory fwd_weights_layer, fwd_weights_iter;
    dnnl::primitive to_fwd_weights_layer, to_fwd_weights_iter;
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
    // bf16: what the primitive read and wrote in bfloat16 (x, h0, every step's h, the final h), which
    // its backward reads again; empty in float32.
    Bf16Buffer x16, h016, sequences16, dst_h16;
    std::vector<int32_t> lengths;       // empty: all T
    memory workspace;    // consumed by the backward pass
};
using FusedSavedPtr = std::shared_ptr<FusedSaved>;

struct Descs {
    memory::desc src_layer, state, state_c, weights_layer, weights_iter, bias, dst_layer;
};

// type: the data and weights' (bf16 for mixed_bfloat16); the bias and LSTM's c are float32 always.
Descs descs_for(const RnnKey& k, int64_t G, int64_t bias_rows, tag weights_tag, memory::data_type type) {
    return Descs{
        .src_layer = md({k.T, k.N, k.C}, tag::ntc, type),   // Keras's batch-major (N, T, C)
        .state = md({1, 1, k.N, k.H}, tag::ldnc, type),
        .state_c = md({1, 1, k.N, k.H}, tag::ldnc),
        .weights_layer = md({1, 1, k.C, G, k.H}, weights_tag, type),
        .weights_iter = md({1, 1, k.H, G, k.H}, weights_tag, type),
        .bias = md({1, 1, bias_rows, k.H}, tag::ldgo),
        .dst_layer = md({k.T, k.N, k.H}, tag::ntc, type),
    };
}

memory::data_type data_type_of(const RnnKey& k) { return k.bf16 ? memory::data_type::bf16 : memory::data_type::f32; }

constexpr auto kDirection = dnnl::rnn_direction::unidirectional_left2right;

// The forward primitive descriptor and, when training, the backward one (their hint is the forward,
// hence one function for both). Built from the forward tensors `d` and their gradients' `g`
// (`any` weights for the backward, which picks its own layouts).
template <class Fwd, class Bwd, class... Args>
std::pair<dnnl::primitive_desc, dnnl::primitive_desc> cell_pds(const dnnl::engine& engine,
                                                               const dnnl::primitive_attr& attr, bool training,
                                                               dnnl::prop_kind prop, const std::tuple<Args...>& fwd_args,
                                                               const auto& bwd_args) {
    const auto fwd = std::apply(
        [&](const auto&... a) { return dnnl_compat::make_pd<Fwd>(engine, attr, prop, a...); }, fwd_args);
    if (!training) return {fwd, {}};
    const auto bwd = std::apply(
        [&](const auto&... a) {
            return dnnl_compat::make_backward_pd<Bwd>(engine, attr, fwd, dnnl::prop_kind::backward, a...);
        },
        bwd_args);
    return {fwd, bwd};
}

// d: the forward's tensors; a: the backward's view of them (`any` weights); g: the gradients.
std::pair<dnnl::primitive_desc, dnnl::primitive_desc> rnn_pds(const dnnl::engine& engine,
                                                              const dnnl::primitive_attr& attr, const RnnKey& k,
                                                              const Descs& d, const Descs& a, const Descs& g) {
    const auto prop = k.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    switch (k.kind) {
        case Kind::vanilla_rnn: {
            const auto act = vanilla_activation(k.activation);
            return cell_pds<dnnl::vanilla_rnn_forward, dnnl::vanilla_rnn_backward>(
                engine, attr, k.training, prop,
                std::tie(act, kDirection, d.src_layer, d.state, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
                         d.state),
                std::tie(act, kDirection, a.src_layer, a.state, a.weights_layer, a.weights_iter, a.bias, a.dst_layer,
                         a.state, g.src_layer, g.state, g.weights_layer, g.weights_iter, g.bias, g.dst_layer, g.state));
        }
        case Kind::lstm:
            return cell_pds<dnnl::lstm_forward, dnnl::lstm_backward>(
                engine, attr, k.training, prop,
                std::tie(kDirection, d.src_layer, d.state, d.state_c, d.weights_layer, d.weights_iter, d.bias,
                         d.dst_layer, d.state, d.state_c),
                std::tie(kDirection, a.src_layer, a.state, a.state_c, a.weights_layer, a.weights_iter, a.bias,
                         a.dst_layer, a.state, a.state_c, g.src_layer, g.state, g.state_c, g.weights_layer,
                         g.weights_iter, g.bias, g.dst_layer, g.state, g.state_c));
        case Kind::gru:
            return cell_pds<dnnl::gru_forward, dnnl::gru_backward>(
                engine, attr, k.training, prop,
                std::tie(kDirection, d.src_layer, d.state, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
                         d.state),
                std::tie(kDirection, a.src_layer, a.state, a.weights_layer, a.weights_iter, a.bias, a.dst_layer,
                         a.state, g.src_layer, g.state, g.weights_layer, g.weights_iter, g.bias, g.dst_layer, g.state));
        case Kind::lbr_gru:
            return cell_pds<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward>(
                engine, attr, k.training, prop,
                std::tie(kDirection, d.src_layer, d.state, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
                         d.state),
                std::tie(kDirection, a.src_layer, a.state, a.weights_layer, a.weights_iter, a.bias, a.dst_layer,
                         a.state, g.src_layer, g.state, g.weights_layer, g.weights_iter, g.bias, g.dst_layer, g.state));
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

    // The forward reads Keras's float32 weights in place (ldigo); for bf16 it reads bfloat16 copies
    // in a layout of its choice (any), made by reorders from Keras's. The backward picks its own
    // weight layouts (any); its gradients are float32 (oneDNN's bf16 backward takes float32 diffs),
    // in Keras's layout.
    const Descs plain = descs_for(key, G, rnn->bias_rows, tag::ldigo, data_type_of(key));
    const Descs keras_f32 = descs_for(key, G, rnn->bias_rows, tag::ldigo, memory::data_type::f32);
    Descs fwd_descs = plain;
    if (key.bf16) {
        fwd_descs.weights_layer = md({1, 1, key.C, G, key.H}, tag::any, memory::data_type::bf16);
        fwd_descs.weights_iter = md({1, 1, key.H, G, key.H}, tag::any, memory::data_type::bf16);
    }
    const Descs any = descs_for(key, G, rnn->bias_rows, tag::any, data_type_of(key));
    std::tie(rnn->fwd_pd, rnn->bwd_pd) = rnn_pds(engine, attr, key, fwd_descs, any, keras_f32);
    rnn->fwd = dnnl::primitive(rnn->fwd_pd);
    rnn->fwd_scratchpad = memory(rnn->fwd_pd.scratchpad_desc(), engine);
    if (key.bf16) {
        const auto wl = rnn->fwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
        const auto wi = rnn->fwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
        rnn->fwd_weights_layer = memory(wl, engine);
        rnn->fwd_weights_iter = memory(wi, engine);
        rnn->to_fwd_weights_layer =
            dnnl::reorder(dnnl::reorder::primitive_desc(engine, keras_f32.weights_layer, engine, wl, attr));
        rnn->to_fwd_weights_iter =
            dnnl::reorder(dnnl::reorder::primitive_desc(engine, keras_f32.weights_iter, engine, wi, attr));
    }

    if (key.training) {
        rnn->bwd = dnnl::primitive(rnn->bwd_pd);
        rnn->bwd_scratchpad = memory(rnn->bwd_pd.scratchpad_desc(), engine);
        const auto wl = rnn->bwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
        const auto wi = rnn->bwd_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
        rnn->bwd_weights_layer = memory(wl, engine);
        rnn->bwd_weights_iter = memory(wi, engine);
        // From Keras's float32 weights (converted to bfloat16 on the way for bf16).
        rnn->to_bwd_weights_layer = dnnl::reorder(dnnl::reorder::primitive_desc(engine, keras_f32.weights_layer, engine, wl, attr));
        rnn->to_bwd_weights_iter = dnnl::reorder(dnnl::reorder::primitive_desc(engine, keras_f32.weights_iter, engine, wi, attr));
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

// bf16: the forward's inputs, weights and outputs as bfloat16 buffers in place of the float32 tensors
// in args (the bias and LSTM's c stay float32). The inputs and outputs are kept in saved for the
// backward pass, which reads them again; the caller converts the outputs back to float32.
// (The weights: rnn.fwd_weights_*, which rnn_forward fills first.)
void bf16_forward_args(FusedRnn& rnn, FusedSaved& saved, std::unordered_map<int, memory>& args, const Descs& d) {
    const RnnKey& k = rnn.key;
    const dnnl::engine engine = args.at(DNNL_ARG_SRC_LAYER).get_engine();
    saved.x16 = to_bf16(saved.x);
    saved.h016 = saved.h0.defined() ? to_bf16(saved.h0) : Bf16Buffer(static_cast<size_t>(k.N * k.H), 0);
    saved.sequences16.resize(static_cast<size_t>(k.N * k.T * k.H));
    saved.dst_h16.resize(static_cast<size_t>(k.N * k.H));
    args[DNNL_ARG_SRC_LAYER] = wrap(engine, d.src_layer, saved.x16.data());
    args[DNNL_ARG_SRC_ITER] = wrap(engine, d.state, saved.h016.data());
    args[DNNL_ARG_WEIGHTS_LAYER] = rnn.fwd_weights_layer;
    args[DNNL_ARG_WEIGHTS_ITER] = rnn.fwd_weights_iter;
    args[DNNL_ARG_DST_LAYER] = wrap(engine, d.dst_layer, saved.sequences16.data());
    args[DNNL_ARG_DST_ITER] = wrap(engine, d.state, saved.dst_h16.data());
}

}  // namespace

KernelMode kernel_mode_from_environment(const char* variable) {
    const char* v = std::getenv(variable);
    const std::string value = v ? v : "";
    if (value.empty() || value == "auto") return KernelMode::automatic;
    if (value == "1" || value == "on" || value == "always") return KernelMode::always;
    if (value == "0" || value == "off" || value == "never") return KernelMode::never;
    value_error("{}='{}' is not a mode: expected auto, on (always) or off (never)", variable, value);
}

// ---------------------------------------------------------------------------------------------
// Backend methods.
// ---------------------------------------------------------------------------------------------
RnnPath OneDnnBackend::rnn_path(const RnnSpec& spec) {
    std::string fused = fmt::format("oneDNN {}", kind_name(kind_of(spec)));
    if (spec.cell == RnnCell::simple_rnn) fused += fmt::format(" ({})", to_string(spec.activation));
    const bool bf16 = spec.precision == Precision::bfloat16;
    const std::string why_not_bf16 = bf16 ? bfloat16_unsupported_reason() : std::string();
    const bool bf16_runs = bf16 && why_not_bf16.empty();
    const bool gemm_training = gemm_rnn_chosen(spec, bf16_runs, true);
    const bool gemm_inference = gemm_rnn_chosen(spec, bf16_runs, false);
    const std::string gemm = fmt::format("GEMM-step {} (oneDNN matmul)", spec.cell == RnnCell::lstm ? "lstm" : "gru");
    if (gemm_inference)
        fused = gemm;
    else if (gemm_training && spec.recurrent_dropout == 0.0f)   // with it, training runs the step loop (noted below)
        fused = fmt::format("{} in training; {} in inference", gemm, fused);
    if (bf16) fused += why_not_bf16.empty() ? ", in bfloat16" : fmt::format(", in float32 ({})", why_not_bf16);
    if (small_rnn_supports(spec) && small_rnn_mode() != SmallRnnMode::never) {
        // The rule also reads the input's feature count, which only the call knows.
        std::string kernel = fmt::format("small-RNN kernel ({})", to_string(spec.activation));
        if (bf16) kernel += ", in float32 (bfloat16 does not pay at this size)";
        fused = small_rnn_mode() == SmallRnnMode::always
                    ? kernel
                    : fmt::format("{}; {} past {} input features", kernel, fused, kSmallRnnAutoMaxFeatures);
    }
    if (small_lstm_supports(spec)) {   // inference only; the rule also reads the batch, which only the call knows
        if (small_rnn_mode() == SmallRnnMode::always) fused += "; small-LSTM kernel for inference";
        else if (small_rnn_mode() == SmallRnnMode::automatic && spec.units <= kSmallLstmAutoMaxUnits)
            fused += fmt::format("; small-LSTM kernel for inference at batch <= {}", kSmallLstmAutoMaxBatch);
    }
    RnnPath path = rnn_path_for(spec, {.fused = fused,
                                       .unsupported = unsupported_reason(spec),
                                       .step_loop = "fallback loop",
                                       .dropout_step_loop = "fallback loop (the primitive cannot mask the recurrent "
                                                            "state per step)"});
    if (bf16 && !path.fused) path.description += ", in float32 (the step loop has no bfloat16)";
    return path;
}

RnnForward OneDnnBackend::rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                      const Tensor& c0, bool training, const RnnDropoutMasks& masks,
                                      const std::vector<int32_t>& lengths) {
    check_rnn_inputs(spec, x, w, h0, c0, device());
    check_rnn_lengths(spec, lengths, x.dim(0), x.dim(1));
    if (runs_step_loop(rnn_path(spec), masks) || relu_cell_reads_nonfinite(spec, x, w, h0))
        return rnn_fallback_forward(spec, x, w, h0, c0, masks, lengths);
    if (small_rnn_chosen(spec, x.dim(2))) return small_rnn_forward(spec, x, w, h0, training, lengths);
    if (small_lstm_chosen(spec, x.dim(0), training)) return small_lstm_forward(spec, x, w, h0, c0, lengths);
    const bool bf16 = spec.precision == Precision::bfloat16 && bfloat16_unsupported_reason().empty();
    if (gemm_rnn_chosen(spec, bf16, training))
        return gemm_rnn_forward(*this, spec, x, w, h0, c0, training, bf16, lengths);

    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units;
    const bool lstm = spec.cell == RnnCell::lstm;
    std::lock_guard lock(rnn_cache().mutex);

    const RnnKey key{kind_of(spec), spec.cell == RnnCell::simple_rnn ? spec.activation : Activation::tanh,
                     N, T, C, H, training, bf16, primitive_threads()};
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

    const Descs d = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo, data_type_of(key));
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
    if (bf16) {
        const Descs keras_f32 = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo, memory::data_type::f32);
        run(rnn.to_fwd_weights_layer, {{DNNL_ARG_FROM, wrap(engine_, keras_f32.weights_layer, w.kernel.raw())},
                                       {DNNL_ARG_TO, rnn.fwd_weights_layer}});
        run(rnn.to_fwd_weights_iter, {{DNNL_ARG_FROM, wrap(engine_, keras_f32.weights_iter, w.recurrent_kernel.raw())},
                                      {DNNL_ARG_TO, rnn.fwd_weights_iter}});
        bf16_forward_args(rnn, *saved, args, d);
    }
    if (lstm) {
        args.emplace(DNNL_ARG_SRC_ITER_C, wrap(engine_, d.state_c, state_or_zeros(saved->c0, rnn)));
        args.emplace(DNNL_ARG_DST_ITER_C, wrap(engine_, d.state_c, out.c.raw()));
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
    if (bf16) {   // the outputs back in float32 (bfloat16 values)
        from_bf16(saved->sequences16.data(), out.sequences.data<float>(), N * T * H);
        from_bf16(saved->dst_h16.data(), out.h.data<float>(), N * H);
    }
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
    if (is_gemm_rnn_forward(fwd)) return gemm_rnn_backward(*this, spec, fwd, d_sequences, dh, dc);
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
    // d: what the forward read and wrote (bfloat16 for bf16); g: the gradients and Keras's weights (float32).
    const Descs d = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo, data_type_of(key));
    const Descs g_desc = descs_for(key, rnn.G, rnn.bias_rows, tag::ldigo, memory::data_type::f32);

    // Keras's weights into the layouts the backward primitive chose.
    run(rnn.to_bwd_weights_layer,
        {{DNNL_ARG_FROM, wrap(engine_, g_desc.weights_layer, w.kernel.raw())}, {DNNL_ARG_TO, rnn.bwd_weights_layer}});
    run(rnn.to_bwd_weights_iter,
        {{DNNL_ARG_FROM, wrap(engine_, g_desc.weights_iter, w.recurrent_kernel.raw())},
         {DNNL_ARG_TO, rnn.bwd_weights_iter}});

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

    const bool bf16 = key.bf16;
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC_LAYER, wrap(engine_, d.src_layer, bf16 ? (const void*)saved.x16.data() : saved.x.raw())},
        {DNNL_ARG_SRC_ITER, wrap(engine_, d.state, bf16 ? (const void*)saved.h016.data() : state_or_zeros(saved.h0, rnn))},
        {DNNL_ARG_WEIGHTS_LAYER, rnn.bwd_weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, rnn.bwd_weights_iter},
        {DNNL_ARG_BIAS, wrap(engine_, d.bias, onednn_bias(rnn, spec, w.bias))},
        {DNNL_ARG_DST_LAYER, wrap(engine_, d.dst_layer, bf16 ? (const void*)saved.sequences16.data() : fwd.sequences.raw())},
        {DNNL_ARG_DST_ITER, wrap(engine_, d.state, bf16 ? (const void*)saved.dst_h16.data() : saved.dst_h.raw())},
        {DNNL_ARG_WORKSPACE, saved.workspace},
        {DNNL_ARG_DIFF_DST_LAYER,
         wrap(engine_, g_desc.dst_layer, d_layer.defined() ? d_layer.raw() : rnn.zero_sequences.data())},
        {DNNL_ARG_DIFF_DST_ITER, wrap(engine_, g_desc.state, state_or_zeros(d_iter, rnn))},
        {DNNL_ARG_DIFF_SRC_LAYER, wrap(engine_, g_desc.src_layer, g.dx.raw())},
        {DNNL_ARG_DIFF_SRC_ITER, wrap(engine_, g_desc.state, g.dh0.raw())},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(engine_, g_desc.weights_layer, g.dweights.kernel.raw())},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(engine_, g_desc.weights_iter, g.dweights.recurrent_kernel.raw())},
        {DNNL_ARG_DIFF_BIAS, wrap(engine_, g_desc.bias, diff_bias)},
        {DNNL_ARG_SCRATCHPAD, rnn.bwd_scratchpad},
    };
    if (lstm) {
        args.emplace(DNNL_ARG_SRC_ITER_C, wrap(engine_, d.state_c, state_or_zeros(saved.c0, rnn)));
        args.emplace(DNNL_ARG_DST_ITER_C, wrap(engine_, d.state_c, saved.dst_c.raw()));
        args.emplace(DNNL_ARG_DIFF_DST_ITER_C, wrap(engine_, g_desc.state_c, state_or_zeros(dc, rnn)));
        args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, wrap(engine_, g_desc.state_c, g.dc0.raw()));
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
