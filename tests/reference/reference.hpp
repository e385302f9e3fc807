// Naive double-precision reference implementations of kerascpp layers.
//
// This code is deliberately independent of the framework: plain loops over
// samples, time steps and units, using only the C++ standard library. The unit
// tests use it as ground truth for every layer's forward and backward pass.
// The backward functions are checked against central finite differences of the
// forward functions in reference_selftest.cpp.
//
// All arrays are flat, row-major std::vector<double>.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace ref {

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------
// Activations (Keras semantics).
//   linear, relu, sigmoid, tanh,
//   hard_sigmoid         Keras 3: clip(x/6 + 0.5, 0, 1)
//   hard_sigmoid_keras2  Keras 2: clip(0.2x + 0.5, 0, 1)
//   elu (alpha=1), selu, softplus, softsign, swish (x*sigmoid(x)),
//   gelu (exact erf form), exponential.
// Unknown names throw std::invalid_argument. At kinks (relu at 0, clip edges)
// act_grad uses the one-sided value 0 for the flat side, matching the usual
// "x > 0" convention.
// ---------------------------------------------------------------------------
double act(const std::string& name, double x);
double act_grad(const std::string& name, double x);

// Numerically stable softmax over each row of a rows x cols matrix.
Vec softmax_rows(const Vec& x, int rows, int cols);

// ---------------------------------------------------------------------------
// Recurrent layers: SimpleRNN, LSTM, GRU.
// ---------------------------------------------------------------------------
enum class Cell { simple_rnn, lstm, gru };

struct RnnConfig {
    Cell cell = Cell::simple_rnn;
    int N = 1, T = 1, C = 1, H = 1;  // batch, time steps, input features, units
    std::string activation = "tanh", recurrent_activation = "sigmoid";
    bool use_bias = true;
    bool reset_after = true;  // GRU only
    bool go_backwards = false;
    bool return_sequences = false;
    // Recurrent dropout (Keras's rec_dp_mask): N x (G*H), one H-vector per sample and gate block in
    // Keras's gate order, multiplying h_{t-1} where that gate reads it at every step; empty = none.
    Vec recurrent_mask = {};
    // Per-gate input dropout (Keras 3's LSTM / GRU cell implementation 1): N x (G*C), one C-vector
    // per sample and gate multiplying x_t for that gate's kernel product at every step; empty = none.
    Vec input_mask = {};
};

// Number of gate blocks of H columns in the kernels: simple_rnn 1, lstm 4, gru 3.
int gates(Cell c);

// Expected number of bias elements for a config (0 when !use_bias).
std::size_t bias_size(const RnnConfig& cfg);

// x: N*T*C. kernel: C x (G*H). recurrent: H x (G*H).
// bias: G*H; for GRU with reset_after it is 2 x (3H) = [input bias ; recurrent bias];
//       empty when !use_bias.
// h0, c0: N*H each, or empty meaning zeros (c0 only used by LSTM).
// Gate order is Keras's: LSTM i, f, c, o ; GRU z, r, h.
struct RnnResult {
    Vec y;  // N*T*H if return_sequences (processing order), else N*H (== h)
    Vec h;  // final hidden state N*H
    Vec c;  // final cell state N*H (LSTM only; empty otherwise)
};
RnnResult rnn_forward(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                      const Vec& bias, const Vec& h0 = {}, const Vec& c0 = {});

struct RnnGrads {
    Vec dx, dkernel, drecurrent, dbias, dh0, dc0;  // dbias empty if !use_bias; dc0 empty unless LSTM
};
// Analytic backpropagation through time. dy has the shape of RnnResult::y;
// dh, dc (N*H, may be empty = zero) are extra gradients on the final states.
RnnGrads rnn_backward(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                      const Vec& bias, const Vec& h0, const Vec& c0, const Vec& dy,
                      const Vec& dh = {}, const Vec& dc = {});

// Keras's masked RNN, written as Keras's loop is: mask is N*T (nonzero = real step, in input time
// order). Steps run in processing order (reversed when go_backwards, mask with them); at a masked
// step the states stay as they are and the output is the previous step's output (zeros before the
// first real step), or zeros when zero_output_for_mask. y is N*T*H in processing order when
// return_sequences, else the output of the LAST processing step (N*H). h / c: the final states.
RnnResult rnn_forward_masked(const RnnConfig& cfg, const Vec& x, const Vec& kernel, const Vec& recurrent,
                             const Vec& bias, const std::vector<int>& mask, bool zero_output_for_mask,
                             const Vec& h0 = {}, const Vec& c0 = {});

// ---------------------------------------------------------------------------
// Dense: x (M x C), kernel (C x U), bias (U) or empty; y = act(x @ kernel + bias).
// activation may be any name accepted by act(), or "softmax" (over each row).
// ---------------------------------------------------------------------------
Vec dense_forward(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias,
                  const std::string& activation);
struct DenseGrads {
    Vec dx, dkernel, dbias;  // dbias empty if bias is empty
};
DenseGrads dense_backward(const Vec& x, int M, int C, const Vec& kernel, int U, const Vec& bias,
                          const std::string& activation, const Vec& dy);

// ---------------------------------------------------------------------------
// Embedding: ids (any count), table V x D -> ids.size() x D.
// backward: scatter-add of dy rows into a V x D gradient table.
// Ids outside [0, V) throw std::out_of_range.
// ---------------------------------------------------------------------------
Vec embedding_forward(const std::vector<long long>& ids, const Vec& table, int V, int D);
Vec embedding_backward(const std::vector<long long>& ids, const Vec& dy, int V, int D);

// ---------------------------------------------------------------------------
// Test helpers.
// ---------------------------------------------------------------------------
// Central finite differences: gradient of scalar f() with respect to every
// element of params (each element is perturbed in place and restored).
Vec numeric_grad(const std::function<double()>& f, Vec& params, double eps = 1e-6);

// Deterministic pseudo-random vector in [lo, hi) from a seed (splitmix64; the
// same on every platform and compiler).
Vec random_vec(std::size_t n, unsigned seed, double lo = -1.0, double hi = 1.0);

// Max |a[i] - b[i]|. Returns +infinity if the sizes differ; 0 for two empty vectors.
double max_abs_diff(const Vec& a, const Vec& b);

// Max over i of |a[i] - b[i]| / (atol + rtol * |b[i]|); a value <= 1 means
// a is close to b. Returns +infinity if the sizes differ.
double max_rel_err(const Vec& a, const Vec& b, double atol, double rtol);

// Sum of a[i] * b[i] (handy to build a scalar loss from a weight vector).
double dot(const Vec& a, const Vec& b);

}  // namespace ref
