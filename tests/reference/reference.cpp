// Naive double-precision reference implementations. See reference.hpp.
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace ref {

// ===========================================================================
// Activations
// ===========================================================================
namespace {

constexpr double kSeluAlpha = 1.67326324235437728481;
constexpr double kSeluScale = 1.05070098735548049342;
constexpr double kPi = 3.14159265358979323846;

double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}

[[noreturn]] void unknown_activation(const std::string& name) {
    throw std::invalid_argument("ref: unknown activation '" + name + "'");
}

}  // namespace

double act(const std::string& name, double x) {
    if (name == "linear") return x;
    if (name == "relu") return x > 0 ? x : 0.0;
    if (name == "sigmoid") return sigmoid(x);
    if (name == "tanh") return std::tanh(x);
    if (name == "hard_sigmoid") return std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    if (name == "hard_sigmoid_keras2") return std::clamp(0.2 * x + 0.5, 0.0, 1.0);
    if (name == "elu") return x > 0 ? x : std::expm1(x);
    if (name == "selu") return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    if (name == "softplus") return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    if (name == "softsign") return x / (1.0 + std::fabs(x));
    if (name == "swish") return x * sigmoid(x);
    if (name == "gelu") return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    if (name == "exponential") return std::exp(x);
    unknown_activation(name);
}

double act_grad(const std::string& name, double x) {
    if (name == "linear") return 1.0;
    if (name == "relu") return x > 0 ? 1.0 : 0.0;
    if (name == "sigmoid") {
        const double s = sigmoid(x);
        return s * (1.0 - s);
    }
    if (name == "tanh") {
        const double t = std::tanh(x);
        return 1.0 - t * t;
    }
    if (name == "hard_sigmoid") return (x > -3.0 && x < 3.0) ? 1.0 / 6.0 : 0.0;
    if (name == "hard_sigmoid_keras2") return (x > -2.5 && x < 2.5) ? 0.2 : 0.0;
    if (name == "elu") return x > 0 ? 1.0 : std::exp(x);
    if (name == "selu") return kSeluScale * (x > 0 ? 1.0 : kSeluAlpha * std::exp(x));
    if (name == "softplus") return sigmoid(x);
    if (name == "softsign") {
        const double d = 1.0 + std::fabs(x);
        return 1.0 / (d * d);
    }
    if (name == "swish") {
        const double s = sigmoid(x);
        return s + x * s * (1.0 - s);
    }
    if (name == "gelu") {
        const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
        const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * kPi);
        return cdf + x * pdf;
    }
    if (name == "exponential") return std::exp(x);
    unknown_activation(name);
}

Vec softmax_rows(const Vec& x, int rows, int cols) {
    if (rows < 0 || cols < 0 || x.size() != static_cast<std::size_t>(rows) * cols)
        throw std::invalid_argument("ref::softmax_rows: size mismatch");
    Vec y(x.size());
    for (int r = 0; r < rows; ++r) {
        const double* in = &x[static_cast<std::size_t>(r) * cols];
        double* out = &y[static_cast<std::size_t>(r) * cols];
        double m = -std::numeric_limits<double>::infinity();
        for (int j = 0; j < cols; ++j) m = std::max(m, in[j]);
        double sum = 0.0;
        for (int j = 0; j < cols; ++j) {
            out[j] = std::exp(in[j] - m);
            sum += out[j];
        }
        for (int j = 0; j < cols; ++j) out[j] /= sum;
    }
    return y;
}

// ===========================================================================
// Recurrent layers
// ===========================================================================
int gates(Cell c) {
    switch (c) {
        case Cell::simple_rnn: return 1;
        case Cell::lstm: return 4;
        case Cell::gru: return 3;
    }
    throw std::invalid_argument("ref::gates: bad cell");
}

std::size_t bias_size(const RnnConfig& cfg) {
    if (!cfg.use_bias) return 0;
    const std::size_t gh = static_cast<std::size_t>(gates(cfg.cell)) * cfg.H;
    if (cfg.cell == Cell::gru && cfg.reset_after) return 2 * gh;
    return gh;
}

namespace {

void check_size(const Vec& v, std::size_t n, const char* what) {
    if (v.size() != n)
        throw std::invalid_argument(std::string("ref::rnn: wrong size for ") + what + ": got " +
                                    std::to_string(v.size()) + ", expected " + std::to_string(n));
}

void check_size_or_empty(const Vec& v, std::size_t n, const char* what) {
    if (!v.empty()) check_size(v, n, what);
}

void check_rnn_inputs(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                      const Vec& bias, const Vec& h0, const Vec& c0) {
    if (cfg.N < 1 || cfg.T < 1 || cfg.C < 1 || cfg.H < 1)
        throw std::invalid_argument("ref::rnn: N, T, C, H must be >= 1");
    const std::size_t N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
    const std::size_t G = gates(cfg.cell);
    check_size(x, N * T * C, "x");
    check_size(kernel, C * G * H, "kernel");
    check_size(recurrent, H * G * H, "recurrent");
    check_size(bias, bias_size(cfg), "bias");
    check_size_or_empty(h0, N * H, "h0");
    check_size_or_empty(c0, N * H, "c0");
    check_size_or_empty(cfg.recurrent_mask, N * G * H, "recurrent_mask");
    check_size_or_empty(cfg.input_mask, N * G * C, "input_mask");
}

// Dropout masks as per-sample weight matrices: gate g reads (h * m_g) R_g = h (diag(m_g) R_g), so
// sample n runs with row k of gate block g of R scaled by m[n][g*H + k] (the GRU reset_before
// candidate's (r * h * m_h) R_h included); likewise the kernel with the input mask. M has `rows`
// rows and G*H columns; the mask N x (G*rows); an empty mask gives M back.
Vec masked_for_sample(const RnnConfig& cfg, const Vec& M, int rows, const Vec& mask, int n) {
    if (mask.empty()) return M;
    const int H = cfg.H, G = gates(cfg.cell), GH = G * H;
    Vec out = M;
    for (int k = 0; k < rows; ++k)
        for (int col = 0; col < GH; ++col)
            out[static_cast<std::size_t>(k) * GH + col] *=
                mask[static_cast<std::size_t>(n) * G * rows + (col / H) * rows + k];
    return out;
}

// The chain rule back through masked_for_sample: dM += diag(m_g) d(M_n)_g per gate block.
void add_masked_gradient(const RnnConfig& cfg, const Vec& d_sample, int rows, const Vec& mask, int n, Vec& dM) {
    const Vec folded = masked_for_sample(cfg, d_sample, rows, mask, n);
    for (std::size_t i = 0; i < dM.size(); ++i) dM[i] += folded[i];
}

// out[j] += sum_r v[r] * M[r][col0 + j]   for j in [0, width), M has `cols` columns.
void add_vec_mat(const double* v, int rows, const Vec& M, int cols, int col0, int width, double* out) {
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < width; ++j)
            out[j] += v[r] * M[static_cast<std::size_t>(r) * cols + col0 + j];
}

// out[r] += sum_j M[r][col0 + j] * g[j]   (i.e. out += M[:, block] @ g)
void add_mat_vec(const Vec& M, int rows, int cols, int col0, int width, const double* g, double* out) {
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < width; ++j)
            out[r] += M[static_cast<std::size_t>(r) * cols + col0 + j] * g[j];
}

// dM[r][col0 + j] += v[r] * g[j]   (outer product accumulation)
void add_outer(const double* v, int rows, const double* g, int cols, int col0, int width, Vec& dM) {
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < width; ++j)
            dM[static_cast<std::size_t>(r) * cols + col0 + j] += v[r] * g[j];
}

// Everything one time step of one sample needs for its backward pass.
struct StepCache {
    Vec h_prev;  // H
    Vec c_prev;  // H (LSTM)
    Vec pre;     // G*H. simple_rnn: pre-activation a. lstm: z. gru (reset_after): x-part xz incl.
                 // input bias. gru (!reset_after): [pre_z, pre_r, pre_h].
    Vec hz;      // gru reset_after: h-part hz incl. recurrent bias (3H)
    Vec c_new;   // lstm: new cell state (H)
};

// One step of one sample. xt: C values. Fills cache, writes h_new (and c_new for LSTM).
void step_forward(const RnnConfig& cfg, const double* xt, const Vec& kernel, const Vec& recurrent,
                  const Vec& bias, StepCache& st, Vec& h_new, Vec& c_new) {
    const int C = cfg.C, H = cfg.H, G = gates(cfg.cell), GH = G * H;
    const std::string& A = cfg.activation;
    const std::string& RA = cfg.recurrent_activation;
    const Vec& hp = st.h_prev;
    h_new.assign(H, 0.0);

    switch (cfg.cell) {
        case Cell::simple_rnn: {
            // a = x K + h R + b ; h = act(a)
            st.pre.assign(H, 0.0);
            add_vec_mat(xt, C, kernel, GH, 0, H, st.pre.data());
            add_vec_mat(hp.data(), H, recurrent, GH, 0, H, st.pre.data());
            if (cfg.use_bias)
                for (int j = 0; j < H; ++j) st.pre[j] += bias[j];
            for (int j = 0; j < H; ++j) h_new[j] = act(A, st.pre[j]);
            break;
        }
        case Cell::lstm: {
            // z = x K + h R + b ; blocks i, f, c, o
            st.pre.assign(GH, 0.0);
            add_vec_mat(xt, C, kernel, GH, 0, GH, st.pre.data());
            add_vec_mat(hp.data(), H, recurrent, GH, 0, GH, st.pre.data());
            if (cfg.use_bias)
                for (int j = 0; j < GH; ++j) st.pre[j] += bias[j];
            c_new.assign(H, 0.0);
            for (int j = 0; j < H; ++j) {
                const double i = act(RA, st.pre[0 * H + j]);
                const double f = act(RA, st.pre[1 * H + j]);
                const double g = act(A, st.pre[2 * H + j]);
                const double o = act(RA, st.pre[3 * H + j]);
                c_new[j] = f * st.c_prev[j] + i * g;
                h_new[j] = o * act(A, c_new[j]);
            }
            st.c_new = c_new;
            break;
        }
        case Cell::gru: {
            if (cfg.reset_after) {
                // xz = x K + b_in ; hz = h R + b_rec
                st.pre.assign(GH, 0.0);
                st.hz.assign(GH, 0.0);
                add_vec_mat(xt, C, kernel, GH, 0, GH, st.pre.data());
                add_vec_mat(hp.data(), H, recurrent, GH, 0, GH, st.hz.data());
                if (cfg.use_bias)
                    for (int j = 0; j < GH; ++j) {
                        st.pre[j] += bias[j];
                        st.hz[j] += bias[GH + j];
                    }
                for (int j = 0; j < H; ++j) {
                    const double z = act(RA, st.pre[0 * H + j] + st.hz[0 * H + j]);
                    const double r = act(RA, st.pre[1 * H + j] + st.hz[1 * H + j]);
                    const double hh = act(A, st.pre[2 * H + j] + r * st.hz[2 * H + j]);
                    h_new[j] = z * hp[j] + (1.0 - z) * hh;
                }
            } else {
                // pre_z = x K_z + h R_z + b_z ; pre_r likewise ;
                // pre_h = x K_h + (r*h) R_h + b_h
                st.pre.assign(GH, 0.0);
                add_vec_mat(xt, C, kernel, GH, 0, GH, st.pre.data());
                add_vec_mat(hp.data(), H, recurrent, GH, 0, 2 * H, st.pre.data());
                if (cfg.use_bias)
                    for (int j = 0; j < GH; ++j) st.pre[j] += bias[j];
                Vec rh(H);
                for (int k = 0; k < H; ++k) rh[k] = act(RA, st.pre[1 * H + k]) * hp[k];
                add_vec_mat(rh.data(), H, recurrent, GH, 2 * H, H, st.pre.data() + 2 * H);
                for (int j = 0; j < H; ++j) {
                    const double z = act(RA, st.pre[0 * H + j]);
                    const double hh = act(A, st.pre[2 * H + j]);
                    h_new[j] = z * hp[j] + (1.0 - z) * hh;
                }
            }
            break;
        }
    }
}

// Backward through one step of one sample.
// dh: gradient on h_new; dc: gradient on c_new (LSTM). Accumulates into
// dkernel / drecurrent / dbias; writes dxt (C), dh_prev (H), dc_prev (H).
void step_backward(const RnnConfig& cfg, const double* xt, const Vec& kernel, const Vec& recurrent,
                   const StepCache& st, const Vec& dh, const Vec& dc, Vec& dkernel, Vec& drecurrent,
                   Vec& dbias, double* dxt, Vec& dh_prev, Vec& dc_prev) {
    const int C = cfg.C, H = cfg.H, G = gates(cfg.cell), GH = G * H;
    const std::string& A = cfg.activation;
    const std::string& RA = cfg.recurrent_activation;
    const Vec& hp = st.h_prev;
    dh_prev.assign(H, 0.0);
    dc_prev.assign(H, 0.0);

    switch (cfg.cell) {
        case Cell::simple_rnn: {
            Vec da(H);
            for (int j = 0; j < H; ++j) da[j] = dh[j] * act_grad(A, st.pre[j]);
            add_outer(xt, C, da.data(), GH, 0, H, dkernel);
            add_outer(hp.data(), H, da.data(), GH, 0, H, drecurrent);
            if (cfg.use_bias)
                for (int j = 0; j < H; ++j) dbias[j] += da[j];
            add_mat_vec(kernel, C, GH, 0, H, da.data(), dxt);
            add_mat_vec(recurrent, H, GH, 0, H, da.data(), dh_prev.data());
            break;
        }
        case Cell::lstm: {
            Vec dz(GH);
            for (int j = 0; j < H; ++j) {
                const double zi = st.pre[0 * H + j], zf = st.pre[1 * H + j];
                const double zg = st.pre[2 * H + j], zo = st.pre[3 * H + j];
                const double i = act(RA, zi), f = act(RA, zf), g = act(A, zg), o = act(RA, zo);
                const double c = st.c_new[j];
                // h = o * act(c)
                const double d_o = dh[j] * act(A, c);
                const double dct = dc[j] + dh[j] * o * act_grad(A, c);
                // c = f * c_prev + i * g
                const double di = dct * g;
                const double df = dct * st.c_prev[j];
                const double dg = dct * i;
                dc_prev[j] = dct * f;
                dz[0 * H + j] = di * act_grad(RA, zi);
                dz[1 * H + j] = df * act_grad(RA, zf);
                dz[2 * H + j] = dg * act_grad(A, zg);
                dz[3 * H + j] = d_o * act_grad(RA, zo);
            }
            add_outer(xt, C, dz.data(), GH, 0, GH, dkernel);
            add_outer(hp.data(), H, dz.data(), GH, 0, GH, drecurrent);
            if (cfg.use_bias)
                for (int j = 0; j < GH; ++j) dbias[j] += dz[j];
            add_mat_vec(kernel, C, GH, 0, GH, dz.data(), dxt);
            add_mat_vec(recurrent, H, GH, 0, GH, dz.data(), dh_prev.data());
            break;
        }
        case Cell::gru: {
            if (cfg.reset_after) {
                Vec dxz(GH), dhz(GH);
                for (int j = 0; j < H; ++j) {
                    const double pz = st.pre[0 * H + j] + st.hz[0 * H + j];
                    const double pr = st.pre[1 * H + j] + st.hz[1 * H + j];
                    const double z = act(RA, pz), r = act(RA, pr);
                    const double ph = st.pre[2 * H + j] + r * st.hz[2 * H + j];
                    const double hh = act(A, ph);
                    // h = z * h_prev + (1 - z) * hh
                    const double dz = dh[j] * (hp[j] - hh);
                    const double dhh = dh[j] * (1.0 - z);
                    dh_prev[j] += dh[j] * z;
                    // hh = act(xz_h + r * hz_h)
                    const double dph = dhh * act_grad(A, ph);
                    const double dr = dph * st.hz[2 * H + j];
                    const double dpz = dz * act_grad(RA, pz);
                    const double dpr = dr * act_grad(RA, pr);
                    dxz[0 * H + j] = dpz;
                    dxz[1 * H + j] = dpr;
                    dxz[2 * H + j] = dph;
                    dhz[0 * H + j] = dpz;
                    dhz[1 * H + j] = dpr;
                    dhz[2 * H + j] = dph * r;
                }
                add_outer(xt, C, dxz.data(), GH, 0, GH, dkernel);
                add_outer(hp.data(), H, dhz.data(), GH, 0, GH, drecurrent);
                if (cfg.use_bias)
                    for (int j = 0; j < GH; ++j) {
                        dbias[j] += dxz[j];
                        dbias[GH + j] += dhz[j];
                    }
                add_mat_vec(kernel, C, GH, 0, GH, dxz.data(), dxt);
                add_mat_vec(recurrent, H, GH, 0, GH, dhz.data(), dh_prev.data());
            } else {
                Vec dpre(GH);
                Vec r(H), rh(H);
                for (int k = 0; k < H; ++k) {
                    r[k] = act(RA, st.pre[1 * H + k]);
                    rh[k] = r[k] * hp[k];
                }
                // Gradients through h = z * h_prev + (1 - z) * hh, hh = act(pre_h).
                for (int j = 0; j < H; ++j) {
                    const double z = act(RA, st.pre[0 * H + j]);
                    const double hh = act(A, st.pre[2 * H + j]);
                    const double dz = dh[j] * (hp[j] - hh);
                    const double dhh = dh[j] * (1.0 - z);
                    dh_prev[j] += dh[j] * z;
                    dpre[0 * H + j] = dz * act_grad(RA, st.pre[0 * H + j]);
                    dpre[2 * H + j] = dhh * act_grad(A, st.pre[2 * H + j]);
                }
                // pre_h = x K_h + (r*h) R_h + b_h
                Vec drh(H, 0.0);
                add_mat_vec(recurrent, H, GH, 2 * H, H, dpre.data() + 2 * H, drh.data());
                add_outer(rh.data(), H, dpre.data() + 2 * H, GH, 2 * H, H, drecurrent);
                for (int k = 0; k < H; ++k) {
                    const double dr = drh[k] * hp[k];
                    dh_prev[k] += drh[k] * r[k];
                    dpre[1 * H + k] = dr * act_grad(RA, st.pre[1 * H + k]);
                }
                // z and r blocks: pre = x K + h R + b
                add_outer(hp.data(), H, dpre.data(), GH, 0, 2 * H, drecurrent);
                add_mat_vec(recurrent, H, GH, 0, 2 * H, dpre.data(), dh_prev.data());
                add_outer(xt, C, dpre.data(), GH, 0, GH, dkernel);
                if (cfg.use_bias)
                    for (int j = 0; j < GH; ++j) dbias[j] += dpre[j];
                add_mat_vec(kernel, C, GH, 0, GH, dpre.data(), dxt);
            }
            break;
        }
    }
}

// Time index of processing step s.
int time_index(const RnnConfig& cfg, int s) { return cfg.go_backwards ? cfg.T - 1 - s : s; }

// Runs the whole sequence for sample n, storing T step caches.
void run_sample(const RnnConfig& cfg, int n, const Vec& x, const Vec& kernel, const Vec& recurrent,
                const Vec& bias, const Vec& h0, const Vec& c0, std::vector<StepCache>& caches,
                Vec& h_final, Vec& c_final, std::vector<Vec>& hs) {
    const int T = cfg.T, C = cfg.C, H = cfg.H;
    Vec h(H, 0.0), c(H, 0.0);
    for (int j = 0; j < H; ++j) {
        if (!h0.empty()) h[j] = h0[static_cast<std::size_t>(n) * H + j];
        if (!c0.empty() && cfg.cell == Cell::lstm) c[j] = c0[static_cast<std::size_t>(n) * H + j];
    }
    caches.assign(T, StepCache{});
    hs.assign(T, Vec{});
    for (int s = 0; s < T; ++s) {
        const int t = time_index(cfg, s);
        const double* xt = &x[(static_cast<std::size_t>(n) * T + t) * C];
        StepCache& st = caches[s];
        st.h_prev = h;
        st.c_prev = c;
        Vec h_new, c_new;
        step_forward(cfg, xt, kernel, recurrent, bias, st, h_new, c_new);
        h = h_new;
        if (cfg.cell == Cell::lstm) c = c_new;
        hs[s] = h;
    }
    h_final = h;
    c_final = c;
}

}  // namespace

RnnResult rnn_forward(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                      const Vec& bias, const Vec& h0, const Vec& c0) {
    check_rnn_inputs(cfg, x, kernel, recurrent, bias, h0, c0);
    const int N = cfg.N, T = cfg.T, H = cfg.H;
    RnnResult res;
    res.h.assign(static_cast<std::size_t>(N) * H, 0.0);
    if (cfg.cell == Cell::lstm) res.c.assign(static_cast<std::size_t>(N) * H, 0.0);
    if (cfg.return_sequences) res.y.assign(static_cast<std::size_t>(N) * T * H, 0.0);

    for (int n = 0; n < N; ++n) {
        std::vector<StepCache> caches;
        std::vector<Vec> hs;
        Vec hf, cf;
        run_sample(cfg, n, x, masked_for_sample(cfg, kernel, cfg.C, cfg.input_mask, n),
                   masked_for_sample(cfg, recurrent, cfg.H, cfg.recurrent_mask, n), bias, h0, c0, caches, hf, cf, hs);
        for (int j = 0; j < H; ++j) {
            res.h[static_cast<std::size_t>(n) * H + j] = hf[j];
            if (cfg.cell == Cell::lstm) res.c[static_cast<std::size_t>(n) * H + j] = cf[j];
        }
        if (cfg.return_sequences)
            for (int s = 0; s < T; ++s)
                for (int j = 0; j < H; ++j)
                    res.y[(static_cast<std::size_t>(n) * T + s) * H + j] = hs[s][j];
    }
    if (!cfg.return_sequences) res.y = res.h;
    return res;
}

RnnGrads rnn_backward(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                      const Vec& bias, const Vec& h0, const Vec& c0, const Vec& dy, const Vec& dh,
                      const Vec& dc) {
    check_rnn_inputs(cfg, x, kernel, recurrent, bias, h0, c0);
    const int N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
    const std::size_t NH = static_cast<std::size_t>(N) * H;
    check_size(dy, cfg.return_sequences ? NH * T : NH, "dy");
    check_size_or_empty(dh, NH, "dh");
    check_size_or_empty(dc, NH, "dc");

    RnnGrads g;
    g.dx.assign(x.size(), 0.0);
    g.dkernel.assign(kernel.size(), 0.0);
    g.drecurrent.assign(recurrent.size(), 0.0);
    g.dbias.assign(bias.size(), 0.0);
    g.dh0.assign(NH, 0.0);
    if (cfg.cell == Cell::lstm) g.dc0.assign(NH, 0.0);

    for (int n = 0; n < N; ++n) {
        std::vector<StepCache> caches;
        std::vector<Vec> hs;
        Vec hf, cf;
        const Vec kernel_n = masked_for_sample(cfg, kernel, C, cfg.input_mask, n);
        const Vec recurrent_n = masked_for_sample(cfg, recurrent, H, cfg.recurrent_mask, n);
        Vec dkernel_n(kernel.size(), 0.0), drecurrent_n(recurrent.size(), 0.0);
        run_sample(cfg, n, x, kernel_n, recurrent_n, bias, h0, c0, caches, hf, cf, hs);

        // Gradients flowing into the state after the last processing step.
        Vec dh_next(H, 0.0), dc_next(H, 0.0);
        for (int j = 0; j < H; ++j) {
            const std::size_t k = static_cast<std::size_t>(n) * H + j;
            if (!dh.empty()) dh_next[j] += dh[k];
            if (!dc.empty() && cfg.cell == Cell::lstm) dc_next[j] += dc[k];
            if (!cfg.return_sequences) dh_next[j] += dy[k];
        }

        for (int s = T - 1; s >= 0; --s) {
            const int t = time_index(cfg, s);
            if (cfg.return_sequences)
                for (int j = 0; j < H; ++j) dh_next[j] += dy[(static_cast<std::size_t>(n) * T + s) * H + j];
            const double* xt = &x[(static_cast<std::size_t>(n) * T + t) * C];
            double* dxt = &g.dx[(static_cast<std::size_t>(n) * T + t) * C];
            Vec dh_prev, dc_prev;
            step_backward(cfg, xt, kernel_n, recurrent_n, caches[s], dh_next, dc_next, dkernel_n,
                          drecurrent_n, g.dbias, dxt, dh_prev, dc_prev);
            dh_next = dh_prev;
            dc_next = dc_prev;
        }
        add_masked_gradient(cfg, dkernel_n, C, cfg.input_mask, n, g.dkernel);
        add_masked_gradient(cfg, drecurrent_n, H, cfg.recurrent_mask, n, g.drecurrent);
        for (int j = 0; j < H; ++j) {
            g.dh0[static_cast<std::size_t>(n) * H + j] = dh_next[j];
            if (cfg.cell == Cell::lstm) g.dc0[static_cast<std::size_t>(n) * H + j] = dc_next[j];
        }
    }
    return g;
}

// ===========================================================================
// Dense
// ===========================================================================
namespace {

void check_dense(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias) {
    if (M < 0 || C < 0 || U < 0) throw std::invalid_argument("ref::dense: negative size");
    if (x.size() != static_cast<std::size_t>(M) * C) throw std::invalid_argument("ref::dense: x size");
    if (kernel.size() != static_cast<std::size_t>(C) * U)
        throw std::invalid_argument("ref::dense: kernel size");
    if (!bias.empty() && bias.size() != static_cast<std::size_t>(U))
        throw std::invalid_argument("ref::dense: bias size");
}

// z = x @ kernel + bias
Vec dense_pre(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias) {
    Vec z(static_cast<std::size_t>(M) * U, 0.0);
    for (int m = 0; m < M; ++m)
        for (int u = 0; u < U; ++u) {
            double s = bias.empty() ? 0.0 : bias[u];
            for (int c = 0; c < C; ++c)
                s += x[static_cast<std::size_t>(m) * C + c] * kernel[static_cast<std::size_t>(c) * U + u];
            z[static_cast<std::size_t>(m) * U + u] = s;
        }
    return z;
}

}  // namespace

Vec dense_forward(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias,
                  const std::string& activation) {
    check_dense(x, M, C, kernel, U, bias);
    Vec z = dense_pre(x, M, C, kernel, U, bias);
    if (activation == "softmax") return softmax_rows(z, M, U);
    for (double& v : z) v = act(activation, v);
    return z;
}

DenseGrads dense_backward(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias,
                          const std::string& activation, const Vec& dy) {
    check_dense(x, M, C, kernel, U, bias);
    if (dy.size() != static_cast<std::size_t>(M) * U) throw std::invalid_argument("ref::dense: dy size");
    const Vec z = dense_pre(x, M, C, kernel, U, bias);

    // dz = dy * act'(z), or the softmax Jacobian-vector product per row.
    Vec dz(z.size(), 0.0);
    if (activation == "softmax") {
        const Vec s = softmax_rows(z, M, U);
        for (int m = 0; m < M; ++m) {
            double dot_sy = 0.0;
            for (int u = 0; u < U; ++u)
                dot_sy += s[static_cast<std::size_t>(m) * U + u] * dy[static_cast<std::size_t>(m) * U + u];
            for (int u = 0; u < U; ++u) {
                const std::size_t k = static_cast<std::size_t>(m) * U + u;
                dz[k] = s[k] * (dy[k] - dot_sy);
            }
        }
    } else {
        for (std::size_t k = 0; k < z.size(); ++k) dz[k] = dy[k] * act_grad(activation, z[k]);
    }

    DenseGrads g;
    g.dx.assign(x.size(), 0.0);
    g.dkernel.assign(kernel.size(), 0.0);
    g.dbias.assign(bias.size(), 0.0);
    for (int m = 0; m < M; ++m)
        for (int u = 0; u < U; ++u) {
            const double d = dz[static_cast<std::size_t>(m) * U + u];
            if (!bias.empty()) g.dbias[u] += d;
            for (int c = 0; c < C; ++c) {
                g.dkernel[static_cast<std::size_t>(c) * U + u] += x[static_cast<std::size_t>(m) * C + c] * d;
                g.dx[static_cast<std::size_t>(m) * C + c] += kernel[static_cast<std::size_t>(c) * U + u] * d;
            }
        }
    return g;
}

// ===========================================================================
// Embedding
// ===========================================================================
namespace {
void check_id(long long id, int V) {
    if (id < 0 || id >= V)
        throw std::out_of_range("ref::embedding: id " + std::to_string(id) + " out of range [0, " +
                                std::to_string(V) + ")");
}
}  // namespace

Vec embedding_forward(const std::vector<long long>& ids, const Vec& table, int V, int D) {
    if (V < 0 || D < 0 || table.size() != static_cast<std::size_t>(V) * D)
        throw std::invalid_argument("ref::embedding_forward: table size");
    Vec y(ids.size() * static_cast<std::size_t>(D), 0.0);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        check_id(ids[i], V);
        for (int d = 0; d < D; ++d) y[i * D + d] = table[static_cast<std::size_t>(ids[i]) * D + d];
    }
    return y;
}

Vec embedding_backward(const std::vector<long long>& ids, const Vec& dy, int V, int D) {
    if (V < 0 || D < 0 || dy.size() != ids.size() * static_cast<std::size_t>(D))
        throw std::invalid_argument("ref::embedding_backward: dy size");
    Vec dtable(static_cast<std::size_t>(V) * D, 0.0);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        check_id(ids[i], V);
        for (int d = 0; d < D; ++d) dtable[static_cast<std::size_t>(ids[i]) * D + d] += dy[i * D + d];
    }
    return dtable;
}

// ===========================================================================
// Helpers
// ===========================================================================
Vec numeric_grad(const std::function<double()>& f, Vec& params, double eps) {
    Vec g(params.size(), 0.0);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const double saved = params[i];
        params[i] = saved + eps;
        const double fp = f();
        params[i] = saved - eps;
        const double fm = f();
        params[i] = saved;
        g[i] = (fp - fm) / (2.0 * eps);
    }
    return g;
}

Vec random_vec(std::size_t n, unsigned seed, double lo, double hi) {
    std::uint64_t state = 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(seed) + 1);
    Vec v(n);
    for (std::size_t i = 0; i < n; ++i) {
        // splitmix64
        state += 0x9E3779B97F4A7C15ULL;
        std::uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z = z ^ (z >> 31);
        const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
        v[i] = lo + (hi - lo) * u;
    }
    return v;
}

double max_abs_diff(const Vec& a, const Vec& b) {
    if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(a[i] - b[i]);
        if (std::isnan(d)) return std::numeric_limits<double>::infinity();
        m = std::max(m, d);
    }
    return m;
}

double max_rel_err(const Vec& a, const Vec& b, double atol, double rtol) {
    if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::fabs(a[i] - b[i]) / (atol + rtol * std::fabs(b[i]));
        if (std::isnan(e)) return std::numeric_limits<double>::infinity();
        m = std::max(m, e);
    }
    return m;
}

double dot(const Vec& a, const Vec& b) {
    if (a.size() != b.size()) throw std::invalid_argument("ref::dot: size mismatch");
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

RnnResult rnn_forward_masked(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                             const Vec& bias, const std::vector<int>& mask, bool zero_output_for_mask, const Vec& h0,
                             const Vec& c0) {
    const int N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
    const bool lstm = cfg.cell == Cell::lstm;
    // One step of one sample is the unmasked reference over a single time step.
    RnnConfig one = cfg;
    one.N = 1;
    one.T = 1;
    one.go_backwards = false;
    one.return_sequences = false;
    RnnResult out;
    out.h.assign(static_cast<std::size_t>(N * H), 0.0);
    if (lstm) out.c.assign(out.h.size(), 0.0);
    Vec seq(static_cast<std::size_t>(N * T * H), 0.0);
    for (int n = 0; n < N; ++n) {
        Vec h(H, 0.0), c(H, 0.0), prev_out(H, 0.0);
        if (!h0.empty()) std::copy(h0.begin() + n * H, h0.begin() + (n + 1) * H, h.begin());
        if (lstm && !c0.empty()) std::copy(c0.begin() + n * H, c0.begin() + (n + 1) * H, c.begin());
        for (int s = 0; s < T; ++s) {
            const int t = cfg.go_backwards ? T - 1 - s : s;
            Vec step_out;
            if (mask[n * T + t] != 0) {
                const Vec xt(x.begin() + (n * T + t) * C, x.begin() + (n * T + t + 1) * C);
                const RnnResult r = rnn_forward(one, xt, kernel, recurrent, bias, h, lstm ? c : Vec{});
                h = r.h;
                if (lstm) c = r.c;
                step_out = r.h;
            } else {
                step_out = zero_output_for_mask ? Vec(H, 0.0) : prev_out;
            }
            prev_out = step_out;
            std::copy(step_out.begin(), step_out.end(), seq.begin() + (n * T + s) * H);
        }
        std::copy(h.begin(), h.end(), out.h.begin() + n * H);
        if (lstm) std::copy(c.begin(), c.end(), out.c.begin() + n * H);
    }
    if (cfg.return_sequences) {
        out.y = seq;
    } else {
        out.y.assign(static_cast<std::size_t>(N * H), 0.0);
        for (int n = 0; n < N; ++n)
            std::copy(seq.begin() + (n * T + T - 1) * H, seq.begin() + (n * T + T) * H, out.y.begin() + n * H);
    }
    return out;
}

}  // namespace ref
