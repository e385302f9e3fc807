// The step-by-step RNN: forward and backpropagation through time in plain float loops, for the
// specs oneDNN's RNN primitives cannot run (LSTM / GRU with activations other than tanh / sigmoid,
// SimpleRNN with activations vanilla_rnn lacks). Same semantics as Keras's cells:
//   SimpleRNN  h = act(x K + h U + b)
//   LSTM       z = x K + h U + b; i, f, o = ract(z_i, z_f, z_o); g = act(z_c);
//              c = f c_prev + i g; h = o act(c)
//   GRU        z, r = ract(...); h = z h_prev + (1 - z) act(candidate), with the candidate
//              x K_h + b_in,h + r (h U_h + b_rec,h) (reset_after) or x K_h + (r h) U_h + b_h.
// The matrix products over the batch go through oneDNN's sgemm (row-major); the input projection
// x K of all steps is one product before the loop and the weight gradients one product after it.
//
// Dropout masks (Keras 3's cells, implementation 1): with a recurrent mask m (N, G*H), gate g's
// recurrent product uses h_prev * m_g instead of h_prev (GRU reset_before: r * (h_prev * m_h)), the
// same m at every step; the GRU's z * h_prev term keeps the unmasked state. With an input mask
// (N, G*C), gate g's input projection is (x_t * mi_g) K_g. Only the recurrent_product and
// input_projection functions and the GRU reset_before candidate see the masks.
//
// Per-sample lengths (right-packed input) as in the fused path (rnn_lengths.cpp): all T steps run,
// the states are read at len - 1 and the gradients past len are zero; c at len - 1 is exact here.
#include <algorithm>
#include <cstring>
#include <vector>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

namespace {

// C (M, N) = op(A) (M, K) @ op(B) (K, N) + beta * C, all row-major with leading dimensions.
void gemm(char trans_a, char trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
    const auto status = dnnl::sgemm(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (status != dnnl::status::success) runtime_error("RNN fallback: sgemm failed");
}

int64_t gate_count(RnnCell cell) {
    switch (cell) {
        case RnnCell::simple_rnn: return 1;
        case RnnCell::lstm: return 4;
        case RnnCell::gru: return 3;
    }
    return 1;
}

float act(Activation a, float x) { return activations::apply(a, x); }
float act_grad(Activation a, float x) { return activations::derivative(a, x, activations::apply(a, x)); }

// A (N, H) state with row stride ld.
struct StateView {
    const float* p;
    int64_t ld;
};

// Sizes and the pieces of the spec the loops read.
struct Dims {
    int64_t N, T, C, H, G, GH;
    Activation a, ra;
    bool go_backwards;
    const float* recurrent_mask = nullptr;   // (N, GH) or null: recurrent dropout
    float mask_at(int64_t n, int64_t gate, int64_t j) const {
        return recurrent_mask ? recurrent_mask[n * GH + gate * H + j] : 1.0f;
    }
    int64_t time(int64_t step) const { return go_backwards ? T - 1 - step : step; }
};

Dims dims_of(const RnnSpec& spec, const Tensor& x, bool go_backwards) {
    const int64_t H = spec.units, G = gate_count(spec.cell);
    return Dims{x.dim(0), x.dim(1), x.dim(2), H, G, G * H, spec.activation, spec.recurrent_activation,
                go_backwards};
}

// out (N, ldo) += the recurrent product of gates [g0, g1): h_prev U[:, g0 H : g1 H], or, with a
// recurrent-dropout mask, (h_prev * m_g) U_g for each gate g. out points at gate g0's columns.
void add_recurrent_product(const Dims& d, const float* U, StateView hp, int64_t g0, int64_t g1, float* out,
                           int64_t ldo) {
    const int64_t N = d.N, H = d.H;
    if (!d.recurrent_mask) {
        gemm('N', 'N', N, (g1 - g0) * H, H, hp.p, hp.ld, U + g0 * H, d.GH, 1.0f, out, ldo);
        return;
    }
    std::vector<float> masked(static_cast<size_t>(N * H));
    for (int64_t g = g0; g < g1; ++g) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < H; ++j) masked[n * H + j] = hp.p[n * hp.ld + j] * d.mask_at(n, g, j);
        gemm('N', 'N', N, H, H, masked.data(), H, U + g * H, d.GH, 1.0f, out + (g - g0) * H, ldo);
    }
}

// The backward of add_recurrent_product for its output gradient dout (N, ldo), from gate g0's
// columns: dU[:, gates] += (h_prev * m_g)^T dout_g; dh_prev (N, H) = beta dh_prev + sum over the
// gates of (dout_g U_g^T) * m_g.
void recurrent_product_backward(const Dims& d, const float* U, StateView hp, int64_t g0, int64_t g1,
                                const float* dout, int64_t ldo, float* dU, float beta, float* dh_prev) {
    const int64_t N = d.N, H = d.H;
    if (!d.recurrent_mask) {
        gemm('T', 'N', H, (g1 - g0) * H, N, hp.p, hp.ld, dout, ldo, 1.0f, dU + g0 * H, d.GH);
        gemm('N', 'T', N, H, (g1 - g0) * H, dout, ldo, U + g0 * H, d.GH, beta, dh_prev, H);
        return;
    }
    if (beta == 0.0f) std::fill_n(dh_prev, N * H, 0.0f);
    std::vector<float> masked(static_cast<size_t>(N * H)), dh_gate(masked.size());
    for (int64_t g = g0; g < g1; ++g) {
        const float* dg = dout + (g - g0) * H;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < H; ++j) masked[n * H + j] = hp.p[n * hp.ld + j] * d.mask_at(n, g, j);
        gemm('T', 'N', H, H, N, masked.data(), H, dg, ldo, 1.0f, dU + g * H, d.GH);
        gemm('N', 'T', N, H, H, dg, ldo, U + g * H, d.GH, 0.0f, dh_gate.data(), H);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < H; ++j) dh_prev[n * H + j] += dh_gate[n * H + j] * d.mask_at(n, g, j);
    }
}

// xk (N*T, GH) = x (N*T, C) K, or with an input dropout mask (N, G*C): gate g's columns are
// (x * mi_g) K_g, mi_g the same at every step.
void input_projection(const Dims& d, const float* x, const float* K, const float* mask, float* xk) {
    const int64_t NT = d.N * d.T, C = d.C, H = d.H, GC = d.G * C;
    if (!mask) {
        gemm('N', 'N', NT, d.GH, C, x, C, K, d.GH, 0.0f, xk, d.GH);
        return;
    }
    std::vector<float> masked(static_cast<size_t>(NT * C));
    for (int64_t g = 0; g < d.G; ++g) {
        for (int64_t r = 0; r < NT; ++r)
            for (int64_t k = 0; k < C; ++k) masked[r * C + k] = x[r * C + k] * mask[(r / d.T) * GC + g * C + k];
        gemm('N', 'N', NT, H, C, masked.data(), C, K + g * H, d.GH, 0.0f, xk + g * H, d.GH);
    }
}

// The backward of input_projection for dpre (N*T, GH): dK (C, GH) and dx (N*T, C), both overwritten.
void input_projection_backward(const Dims& d, const float* x, const float* K, const float* mask, const float* dpre,
                               float* dK, float* dx) {
    const int64_t NT = d.N * d.T, C = d.C, H = d.H, GC = d.G * C;
    if (!mask) {
        gemm('T', 'N', C, d.GH, NT, x, C, dpre, d.GH, 0.0f, dK, d.GH);
        gemm('N', 'T', NT, C, d.GH, dpre, d.GH, K, d.GH, 0.0f, dx, C);
        return;
    }
    std::fill_n(dx, NT * C, 0.0f);
    std::vector<float> masked(static_cast<size_t>(NT * C)), dx_gate(masked.size());
    for (int64_t g = 0; g < d.G; ++g) {
        for (int64_t r = 0; r < NT; ++r)
            for (int64_t k = 0; k < C; ++k) masked[r * C + k] = x[r * C + k] * mask[(r / d.T) * GC + g * C + k];
        gemm('T', 'N', C, H, NT, masked.data(), C, dpre + g * H, d.GH, 0.0f, dK + g * H, d.GH);
        gemm('N', 'T', NT, C, H, dpre + g * H, d.GH, K + g * H, d.GH, 0.0f, dx_gate.data(), C);
        for (int64_t r = 0; r < NT; ++r)
            for (int64_t k = 0; k < C; ++k) dx[r * C + k] += dx_gate[r * C + k] * mask[(r / d.T) * GC + g * C + k];
    }
}

// Throws ValueError unless each defined mask is float32 (N, G * width).
void check_dropout_masks(const RnnSpec& spec, const Tensor& x, const RnnDropoutMasks& masks) {
    const int64_t G = gate_count(spec.cell);
    auto check = [&](const Tensor& mask, int64_t width, const char* what, const char* axis) {
        const Shape expected{x.dim(0), G * width};
        if (mask.defined() && (mask.dtype() != DType::float32 || mask.shape() != expected))
            value_error("Layer \"{}\": the {} dropout mask must be float32 of shape {} (batch, gates * {}), got {} {}",
                        spec.layer_name, what, shape_str(expected), axis, to_string(mask.dtype()),
                        shape_str(mask.shape()));
    };
    check(masks.input, x.dim(2), "input", "features");
    check(masks.recurrent, spec.units, "recurrent", "units");
}

// What the backward pass needs, per processing step s (arrays laid out (T, N, ...)).
struct FallbackSaved {
    Tensor x, h0, c0;          // h0 / c0 materialised (zeros when not given)
    RnnDropoutMasks masks;     // per-gate dropout masks (undefined = none)
    std::vector<float> pre;    // (T, N, GH): pre-activations; GRU reset_after: the input part x K + b_in
    std::vector<float> rec;    // (T, N, GH): GRU reset_after only: h U + b_rec
    std::vector<float> cells;  // (T, N, H): LSTM cell state after each step
    std::vector<int32_t> lengths;   // empty: all T
    bool go_backwards = false;      // the loop's own order (lengths: x was reversed per sample instead)
};

// The state before processing step s: h0 or the previous output in `sequences` (N, T, H).
StateView h_before(const Dims& d, const FallbackSaved& s, const Tensor& sequences, int64_t step) {
    if (step == 0) return {s.h0.data<float>(), d.H};
    return {sequences.data<float>() + (step - 1) * d.H, d.T * d.H};
}

Tensor zeros_if_undefined(const Tensor& t, int64_t N, int64_t H) {
    return t.defined() ? t : Tensor::zeros({N, H});
}

// ---- Forward: one step per cell. pre (N, GH) holds x K + b on entry; h_out has row stride ld_out.
void simple_step(const Dims& d, const float* U, StateView hp, float* pre, float* h_out, int64_t ld_out) {
    add_recurrent_product(d, U, hp, 0, d.G, pre, d.GH);
    for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < d.H; ++j) h_out[n * ld_out + j] = act(d.a, pre[n * d.GH + j]);
}

void lstm_step(const Dims& d, const float* U, StateView hp, const float* c_prev, float* pre, float* c_out,
               float* h_out, int64_t ld_out) {
    add_recurrent_product(d, U, hp, 0, d.G, pre, d.GH);
    const int64_t H = d.H;
    for (int64_t n = 0; n < d.N; ++n) {
        const float* z = pre + n * d.GH;
        for (int64_t j = 0; j < H; ++j) {
            const float i = act(d.ra, z[j]), f = act(d.ra, z[H + j]);
            const float g = act(d.a, z[2 * H + j]), o = act(d.ra, z[3 * H + j]);
            const float c = f * c_prev[n * H + j] + i * g;
            c_out[n * H + j] = c;
            h_out[n * ld_out + j] = o * act(d.a, c);
        }
    }
}

// reset_after: rec = h U + b_rec; candidate = act(xz_h + r * rec_h).
void gru_after_step(const Dims& d, const float* U, const float* b_rec, StateView hp, const float* pre, float* rec,
                    float* h_out, int64_t ld_out) {
    const int64_t H = d.H;
    for (int64_t n = 0; n < d.N; ++n) std::copy(b_rec, b_rec + d.GH, rec + n * d.GH);
    add_recurrent_product(d, U, hp, 0, d.G, rec, d.GH);
    for (int64_t n = 0; n < d.N; ++n) {
        const float* xz = pre + n * d.GH;
        const float* hz = rec + n * d.GH;
        for (int64_t j = 0; j < H; ++j) {
            const float z = act(d.ra, xz[j] + hz[j]);
            const float r = act(d.ra, xz[H + j] + hz[H + j]);
            const float hh = act(d.a, xz[2 * H + j] + r * hz[2 * H + j]);
            h_out[n * ld_out + j] = z * hp.p[n * hp.ld + j] + (1.0f - z) * hh;
        }
    }
}

// reset_before: pre_z, pre_r += h U_zr; pre_h += (r h) U_h. rh is (N, H) scratch.
void gru_before_step(const Dims& d, const float* U, StateView hp, float* pre, float* rh, float* h_out,
                     int64_t ld_out) {
    const int64_t H = d.H;
    add_recurrent_product(d, U, hp, 0, 2, pre, d.GH);
    for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < H; ++j)
            rh[n * H + j] = act(d.ra, pre[n * d.GH + H + j]) * hp.p[n * hp.ld + j] * d.mask_at(n, 2, j);
    gemm('N', 'N', d.N, H, H, rh, H, U + 2 * H, d.GH, 1.0f, pre + 2 * H, d.GH);
    for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < H; ++j) {
            const float z = act(d.ra, pre[n * d.GH + j]);
            const float hh = act(d.a, pre[n * d.GH + 2 * H + j]);
            h_out[n * ld_out + j] = z * hp.p[n * hp.ld + j] + (1.0f - z) * hh;
        }
}

}  // namespace

RnnForward rnn_fallback_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                const Tensor& c0, const RnnDropoutMasks& masks, const std::vector<int32_t>& lengths) {
    check_rnn_inputs(spec, x, w, h0, c0, Device::cpu());
    check_dropout_masks(spec, x, masks);
    check_rnn_lengths(spec, lengths, x.dim(0), x.dim(1));
    // go_backwards with lengths: each sample's real steps reversed, then run forwards.
    const bool reverse_valid = spec.go_backwards && !lengths.empty();
    Dims d = dims_of(spec, x, spec.go_backwards && !reverse_valid);
    d.recurrent_mask = masks.recurrent.defined() ? masks.recurrent.data<float>() : nullptr;
    const int64_t N = d.N, T = d.T, H = d.H, GH = d.GH;
    const bool lstm = spec.cell == RnnCell::lstm;
    const bool gru_after = spec.cell == RnnCell::gru && spec.reset_after;

    auto saved = std::make_shared<FallbackSaved>();
    saved->x = reverse_valid ? reverse_valid_steps(x, lengths) : x;
    saved->masks = masks;
    saved->lengths = lengths;
    saved->go_backwards = d.go_backwards;
    saved->h0 = zeros_if_undefined(h0, N, H);
    if (lstm) saved->c0 = zeros_if_undefined(c0, N, H);
    saved->pre.resize(static_cast<size_t>(T * N * GH));
    if (gru_after) saved->rec.resize(saved->pre.size());
    if (lstm) saved->cells.resize(static_cast<size_t>(T * N * H));

    // The input projection of every step at once: xk (N*T, GH) = x (N*T, C) K.
    std::vector<float> xk(static_cast<size_t>(N * T * GH));
    input_projection(d, saved->x.data<float>(), w.kernel.data<float>(),
                     masks.input.defined() ? masks.input.data<float>() : nullptr, xk.data());

    std::vector<float> zero_bias(static_cast<size_t>(2 * GH), 0.0f);
    const float* b_in = spec.use_bias ? w.bias.data<float>() : zero_bias.data();
    const float* b_rec = gru_after ? b_in + GH : nullptr;   // row 1 of the (2, 3H) bias
    const float* U = w.recurrent_kernel.data<float>();
    const bool gru_before = spec.cell == RnnCell::gru && !spec.reset_after;
    std::vector<float> rh(gru_before ? static_cast<size_t>(N * H) : 0);   // r * h_prev scratch

    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32);
    float* seq = out.sequences.data<float>();
    for (int64_t s = 0; s < T; ++s) {
        const int64_t t = d.time(s);
        float* pre = saved->pre.data() + s * N * GH;
        for (int64_t n = 0; n < N; ++n) {
            const float* src = xk.data() + (n * T + t) * GH;
            for (int64_t k = 0; k < GH; ++k) pre[n * GH + k] = src[k] + b_in[k];
        }
        const StateView hp = h_before(d, *saved, out.sequences, s);
        float* h_out = seq + s * H;
        const int64_t ld_out = T * H;
        if (spec.cell == RnnCell::simple_rnn) {
            simple_step(d, U, hp, pre, h_out, ld_out);
        } else if (lstm) {
            const float* c_prev = s == 0 ? saved->c0.data<float>() : saved->cells.data() + (s - 1) * N * H;
            lstm_step(d, U, hp, c_prev, pre, saved->cells.data() + s * N * H, h_out, ld_out);
        } else if (gru_after) {
            gru_after_step(d, U, b_rec, hp, pre, saved->rec.data() + s * N * GH, h_out, ld_out);
        } else {
            gru_before_step(d, U, hp, pre, rh.data(), h_out, ld_out);
        }
    }

    if (!lengths.empty()) {   // the states after each sample's step len - 1
        out.h = states_at_lengths(seq, H, T * H, h0, lengths, H);
        if (lstm) out.c = states_at_lengths(saved->cells.data(), N * H, H, c0, lengths, H);
        out.saved = saved;
        return out;
    }
    // Final states: the last processing step.
    out.h = Tensor({N, H}, DType::float32);
    for (int64_t n = 0; n < N; ++n)
        std::memcpy(out.h.data<float>() + n * H, seq + (n * T + T - 1) * H, sizeof(float) * H);
    if (lstm) out.c = Tensor(saved->cells.data() + (T - 1) * N * H, {N, H});
    out.saved = saved;
    return out;
}

namespace {

// ---- Backward: one step per cell. dh (N, H) is the gradient on this step's output; dp (row
// stride ldp) receives the gradient of the input-side pre-activation; dh_prev the gradient on the
// previous state. Recurrent-weight gradients accumulate into dU.
void simple_step_back(const Dims& d, const float* U, StateView hp, const float* pre, const float* dh, float* dp,
                      int64_t ldp, float* dh_prev, float* dU) {
    for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < d.H; ++j) dp[n * ldp + j] = dh[n * d.H + j] * act_grad(d.a, pre[n * d.GH + j]);
    recurrent_product_backward(d, U, hp, 0, d.G, dp, ldp, dU, 0.0f, dh_prev);
}

// dc holds the gradient on this step's cell state on entry and on the previous one on exit.
void lstm_step_back(const Dims& d, const float* U, StateView hp, const float* pre, const float* c_prev,
                    const float* c_now, const float* dh, float* dc, float* dp, int64_t ldp, float* dh_prev,
                    float* dU) {
    const int64_t H = d.H;
    for (int64_t n = 0; n < d.N; ++n) {
        const float* z = pre + n * d.GH;
        float* g_out = dp + n * ldp;
        for (int64_t j = 0; j < H; ++j) {
            const float i = act(d.ra, z[j]), f = act(d.ra, z[H + j]);
            const float g = act(d.a, z[2 * H + j]), o = act(d.ra, z[3 * H + j]);
            const float c = c_now[n * H + j];
            const float tc = act(d.a, c);
            const float dhj = dh[n * H + j];
            const float dct = dc[n * H + j] + dhj * o * activations::derivative(d.a, c, tc);
            g_out[j] = dct * g * activations::derivative(d.ra, z[j], i);
            g_out[H + j] = dct * c_prev[n * H + j] * activations::derivative(d.ra, z[H + j], f);
            g_out[2 * H + j] = dct * i * activations::derivative(d.a, z[2 * H + j], g);
            g_out[3 * H + j] = dhj * tc * activations::derivative(d.ra, z[3 * H + j], o);
            dc[n * H + j] = dct * f;
        }
    }
    recurrent_product_backward(d, U, hp, 0, d.G, dp, ldp, dU, 0.0f, dh_prev);
}

// reset_after: the input side gets (dz, dr, dcand), the recurrent side (dz, dr, dcand * r), which
// is also the recurrent bias's gradient (accumulated into db_rec). drec is (N, GH) scratch.
void gru_after_step_back(const Dims& d, const float* U, StateView hp, const float* pre, const float* rec,
                         const float* dh, float* dp, int64_t ldp, float* drec, float* dh_prev, float* dU,
                         float* db_rec) {
    const int64_t H = d.H, GH = d.GH;
    for (int64_t n = 0; n < d.N; ++n) {
        const float* xz = pre + n * GH;
        const float* hz = rec + n * GH;
        for (int64_t j = 0; j < H; ++j) {
            const float pz = xz[j] + hz[j], pr = xz[H + j] + hz[H + j];
            const float z = act(d.ra, pz), r = act(d.ra, pr);
            const float ph = xz[2 * H + j] + r * hz[2 * H + j];
            const float hh = act(d.a, ph);
            const float dhj = dh[n * H + j];
            const float dph = dhj * (1.0f - z) * activations::derivative(d.a, ph, hh);
            const float dpz = dhj * (hp.p[n * hp.ld + j] - hh) * activations::derivative(d.ra, pz, z);
            const float dpr = dph * hz[2 * H + j] * activations::derivative(d.ra, pr, r);
            dp[n * ldp + j] = drec[n * GH + j] = dpz;
            dp[n * ldp + H + j] = drec[n * GH + H + j] = dpr;
            dp[n * ldp + 2 * H + j] = dph;
            drec[n * GH + 2 * H + j] = dph * r;
            dh_prev[n * H + j] = dhj * z;
        }
        for (int64_t k = 0; k < GH; ++k) db_rec[k] += drec[n * GH + k];
    }
    recurrent_product_backward(d, U, hp, 0, d.G, drec, GH, dU, 1.0f, dh_prev);
}

// reset_before: the candidate's recurrent input is r * h_prev. rh, drh are (N, H) scratch.
void gru_before_step_back(const Dims& d, const float* U, StateView hp, const float* pre, const float* dh, float* dp,
                          int64_t ldp, float* rh, float* drh, float* dh_prev, float* dU) {
    const int64_t H = d.H, GH = d.GH;
    for (int64_t n = 0; n < d.N; ++n) {
        const float* p = pre + n * GH;
        for (int64_t j = 0; j < H; ++j) {
            const float z = act(d.ra, p[j]), hh = act(d.a, p[2 * H + j]);
            const float dhj = dh[n * H + j];
            dp[n * ldp + j] = dhj * (hp.p[n * hp.ld + j] - hh) * activations::derivative(d.ra, p[j], z);
            dp[n * ldp + 2 * H + j] = dhj * (1.0f - z) * activations::derivative(d.a, p[2 * H + j], hh);
            dh_prev[n * H + j] = dhj * z;
            rh[n * H + j] = act(d.ra, p[H + j]) * hp.p[n * hp.ld + j] * d.mask_at(n, 2, j);
        }
    }
    // Candidate block: pre_h = ... + (r h) U_h.
    gemm('N', 'T', d.N, H, H, dp + 2 * H, ldp, U + 2 * H, GH, 0.0f, drh, H);
    gemm('T', 'N', H, H, d.N, rh, H, dp + 2 * H, ldp, 1.0f, dU + 2 * H, GH);
    for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < H; ++j) {
            const float pr = pre[n * GH + H + j];
            const float r = act(d.ra, pr);
            const float hpj = hp.p[n * hp.ld + j] * d.mask_at(n, 2, j);   // the candidate's h_prev
            dh_prev[n * H + j] += drh[n * H + j] * r * d.mask_at(n, 2, j);
            dp[n * ldp + H + j] = drh[n * H + j] * hpj * activations::derivative(d.ra, pr, r);
        }
    // Update and reset blocks: pre_zr = ... + h U_zr.
    recurrent_product_backward(d, U, hp, 0, 2, dp, ldp, dU, 1.0f, dh_prev);
}

void check_gradient_shape(const RnnSpec& spec, const Tensor& t, const Shape& shape, const char* what) {
    if (t.defined() && t.shape() != shape)
        value_error("Layer \"{}\": the gradient of {} must have shape {}, got {}", spec.layer_name, what,
                    shape_str(shape), shape_str(t.shape()));
}

}  // namespace

RnnGradients rnn_fallback_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                   const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) {
    auto* saved_ptr = std::any_cast<std::shared_ptr<FallbackSaved>>(&fwd.saved);
    if (!saved_ptr) runtime_error("Layer \"{}\": rnn_fallback_backward needs rnn_fallback_forward's result",
                                  spec.layer_name);
    const FallbackSaved& saved = **saved_ptr;
    Dims d = dims_of(spec, saved.x, saved.go_backwards);
    d.recurrent_mask = saved.masks.recurrent.defined() ? saved.masks.recurrent.data<float>() : nullptr;
    const int64_t N = d.N, T = d.T, C = d.C, H = d.H, GH = d.GH;
    const bool lstm = spec.cell == RnnCell::lstm;
    const bool gru_after = spec.cell == RnnCell::gru && spec.reset_after;
    check_gradient_shape(spec, d_sequences, {N, T, H}, "the sequences");
    check_gradient_shape(spec, dh, {N, H}, "the final state h");
    check_gradient_shape(spec, dc, {N, H}, "the final state c");

    const float* U = w.recurrent_kernel.data<float>();
    RnnGradients g;
    g.dweights.recurrent_kernel = Tensor::zeros({H, GH});
    float* dU = g.dweights.recurrent_kernel.data<float>();

    // Input-side pre-activation gradients of every step, (N, T, GH) in input time order, so the
    // kernel gradient and dx are one product each after the loop.
    std::vector<float> dpre(static_cast<size_t>(N * T * GH));
    std::vector<float> dh_next(static_cast<size_t>(N * H), 0.0f), dh_cur(dh_next.size());
    std::vector<float> dc_state(lstm ? dh_next.size() : 0, 0.0f);
    std::vector<float> db_rec(gru_after ? GH : 0, 0.0f);
    std::vector<float> drec(gru_after ? static_cast<size_t>(N * GH) : 0);
    std::vector<float> rh(spec.cell == RnnCell::gru ? dh_next.size() : 0), drh(rh.size());
    // With lengths, dh enters through the sequences' gradient at len - 1 and dc in the loop below.
    const bool packed = !saved.lengths.empty();
    const Tensor d_seq = packed ? sequences_gradient_at_lengths(d_sequences, dh, saved.lengths, T, H) : d_sequences;
    if (dh.defined() && !packed) std::copy(dh.data<float>(), dh.data<float>() + N * H, dh_next.begin());
    if (lstm && dc.defined() && !packed) std::copy(dc.data<float>(), dc.data<float>() + N * H, dc_state.begin());

    const float* dseq = d_seq.defined() ? d_seq.data<float>() : nullptr;
    for (int64_t s = T - 1; s >= 0; --s) {
        const int64_t t = d.time(s);
        if (packed && lstm && dc.defined())
            for (int64_t n = 0; n < N; ++n)
                if (saved.lengths[n] - 1 == s)
                    for (int64_t j = 0; j < H; ++j) dc_state[n * H + j] += dc.data<float>()[n * H + j];
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < H; ++j)
                dh_cur[n * H + j] = dh_next[n * H + j] + (dseq ? dseq[(n * T + s) * H + j] : 0.0f);
        const StateView hp = h_before(d, saved, fwd.sequences, s);
        const float* pre = saved.pre.data() + s * N * GH;
        float* dp = dpre.data() + t * GH;
        const int64_t ldp = T * GH;
        if (spec.cell == RnnCell::simple_rnn) {
            simple_step_back(d, U, hp, pre, dh_cur.data(), dp, ldp, dh_next.data(), dU);
        } else if (lstm) {
            const float* c_prev = s == 0 ? saved.c0.data<float>() : saved.cells.data() + (s - 1) * N * H;
            lstm_step_back(d, U, hp, pre, c_prev, saved.cells.data() + s * N * H, dh_cur.data(), dc_state.data(),
                           dp, ldp, dh_next.data(), dU);
        } else if (gru_after) {
            gru_after_step_back(d, U, hp, pre, saved.rec.data() + s * N * GH, dh_cur.data(), dp, ldp, drec.data(),
                                dh_next.data(), dU, db_rec.data());
        } else {
            gru_before_step_back(d, U, hp, pre, dh_cur.data(), dp, ldp, rh.data(), drh.data(), dh_next.data(), dU);
        }
    }

    g.dweights.kernel = Tensor({C, GH}, DType::float32);
    g.dx = Tensor({N, T, C}, DType::float32);
    input_projection_backward(d, saved.x.data<float>(), w.kernel.data<float>(),
                              saved.masks.input.defined() ? saved.masks.input.data<float>() : nullptr, dpre.data(),
                              g.dweights.kernel.data<float>(), g.dx.data<float>());
    if (spec.use_bias) {
        g.dweights.bias = Tensor::zeros(w.bias.shape());
        float* db = g.dweights.bias.data<float>();
        for (int64_t r = 0; r < N * T; ++r)
            for (int64_t k = 0; k < GH; ++k) db[k] += dpre[r * GH + k];
        if (gru_after) std::copy(db_rec.begin(), db_rec.end(), db + GH);
    }
    g.dh0 = Tensor(dh_next.data(), {N, H});
    if (lstm) g.dc0 = Tensor(dc_state.data(), {N, H});
    if (packed) {
        add_rows_of_empty_samples(g.dh0, dh, saved.lengths);
        if (lstm) add_rows_of_empty_samples(g.dc0, dc, saved.lengths);
        if (spec.go_backwards) g.dx = reverse_valid_steps(g.dx, saved.lengths);
    }
    return g;
}

}  // namespace keras::backend
