// SimpleRNNCell, LSTMCell, GRUCell: a loop of cell steps over a sequence, forward and backward, checked
// against the double-precision reference (tests/reference, with random initial states) and against
// the full SimpleRNN / LSTM / GRU layer holding the same weights; and the cells' error messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/rnn_cells.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using keras::CallContext;
using keras::Shape;
using keras::Tensor;
using test_helpers::message_of;
namespace kl = keras::layers;

namespace {

struct Case {
    ref::Cell cell;
    bool reset_after = true;
    std::string activation = "tanh";
    int N = 3, T = 5, C = 4, H = 6;
    int G() const { return ref::gates(cell); }
    bool lstm() const { return cell == ref::Cell::lstm; }
};

ref::Vec rounded_random(size_t n, unsigned seed, double lo, double hi) {
    ref::Vec v = ref::random_vec(n, seed, lo, hi);
    for (double& a : v) a = static_cast<float>(a);   // the reference runs on exactly the float values
    return v;
}

struct Data {
    ref::Vec x, kernel, recurrent, bias, h0, c0, dseq, dh, dc;
};

Data make_data(const Case& c, bool with_states) {
    const size_t NH = static_cast<size_t>(c.N) * c.H;
    const ref::RnnConfig cfg{.cell = c.cell, .H = c.H, .reset_after = c.reset_after};
    Data d;
    d.x = rounded_random(static_cast<size_t>(c.N) * c.T * c.C, 1, -1.0, 1.0);
    d.kernel = rounded_random(static_cast<size_t>(c.C) * c.G() * c.H, 2, -0.6, 0.6);
    d.recurrent = rounded_random(static_cast<size_t>(c.H) * c.G() * c.H, 3, -0.6, 0.6);
    d.bias = rounded_random(ref::bias_size(cfg), 4, -0.5, 0.5);
    if (with_states) {
        d.h0 = rounded_random(NH, 5, -0.8, 0.8);
        if (c.lstm()) d.c0 = rounded_random(NH, 6, -0.8, 0.8);
    }
    d.dseq = rounded_random(NH * c.T, 7, -1.0, 1.0);
    d.dh = rounded_random(NH, 8, -1.0, 1.0);
    if (c.lstm()) d.dc = rounded_random(NH, 9, -1.0, 1.0);
    return d;
}

Tensor tensor_of(const ref::Vec& v, Shape shape) { return test_helpers::floats(v, std::move(shape)); }
ref::Vec vec_of(const Tensor& t) { return test_helpers::values_of(t); }

// Time step t of a flat (N, T, K) array as an (N, K) tensor, and the reverse.
Tensor step_of(const ref::Vec& seq, const Case& c, int t, int K) {
    ref::Vec out;
    for (int n = 0; n < c.N; ++n)
        for (int k = 0; k < K; ++k) out.push_back(seq[(static_cast<size_t>(n) * c.T + t) * K + k]);
    return tensor_of(out, {c.N, K});
}
void put_step(ref::Vec& seq, const Case& c, int t, int K, const Tensor& v) {
    const ref::Vec vals = vec_of(v);
    for (int n = 0; n < c.N; ++n)
        for (int k = 0; k < K; ++k) seq[(static_cast<size_t>(n) * c.T + t) * K + k] = vals[n * K + k];
}

std::unique_ptr<kl::RNNCell> make_cell(const Case& c) {
    switch (c.cell) {
        case ref::Cell::simple_rnn: return std::make_unique<kl::SimpleRNNCell>(c.H, kl::SimpleRNNCellOptions{.activation = c.activation});
        case ref::Cell::lstm: return std::make_unique<kl::LSTMCell>(c.H);
        case ref::Cell::gru: return std::make_unique<kl::GRUCell>(c.H, kl::GRUCellOptions{.reset_after = c.reset_after});
    }
    return nullptr;
}

std::unique_ptr<kl::RNNBase> make_layer(const Case& c) {
    switch (c.cell) {
        case ref::Cell::simple_rnn:
            return std::make_unique<kl::SimpleRNN>(c.H, kl::SimpleRNNOptions{.activation = c.activation, .return_sequences = true});
        case ref::Cell::lstm: return std::make_unique<kl::LSTM>(c.H, kl::LSTMOptions{.return_sequences = true});
        case ref::Cell::gru:
            return std::make_unique<kl::GRU>(c.H, kl::GRUOptions{.return_sequences = true, .reset_after = c.reset_after});
    }
    return nullptr;
}

// Builds the layer (cell or RNN) for input_shape and sets kernel, recurrent_kernel and bias.
void set_weights(keras::Layer& layer, const Shape& input_shape, const Case& c, const Data& d) {
    layer.build_for(input_shape);
    const int64_t GH = static_cast<int64_t>(c.G()) * c.H;
    const Shape bias_shape = c.cell == ref::Cell::gru && c.reset_after ? Shape{2, GH} : Shape{GH};
    const auto& w = layer.weights();
    REQUIRE(w.size() == 3);
    w[0]->value.copy_from(tensor_of(d.kernel, {c.C, GH}));
    w[1]->value.copy_from(tensor_of(d.recurrent, {c.H, GH}));
    w[2]->value.copy_from(tensor_of(d.bias, bias_shape));
    for (const auto& v : w) v->grad = Tensor();
}

// What a cell loop produces: the outputs (N, T, H), the final states, and the gradients.
struct LoopResult {
    ref::Vec seq, h, c, dx, dkernel, drecurrent, dbias, dh0, dc0;
};

LoopResult run_cell_loop(kl::RNNCell& cell, const Case& c, const Data& d, bool with_states) {
    std::vector<Tensor> states = cell.get_initial_state(c.N);
    if (with_states) {
        states[0] = tensor_of(d.h0, {c.N, c.H});
        if (c.lstm()) states[1] = tensor_of(d.c0, {c.N, c.H});
    }
    LoopResult r;
    r.seq.assign(static_cast<size_t>(c.N) * c.T * c.H, 0.0);
    r.dx.assign(d.x.size(), 0.0);
    std::vector<CallContext> ctx(static_cast<size_t>(c.T));
    for (int t = 0; t < c.T; ++t) {
        ctx[t].training = true;
        auto [h, new_states] = cell.step(step_of(d.x, c, t, c.C), states, ctx[t]);
        put_step(r.seq, c, t, c.H, h);
        states = new_states;
    }
    r.h = vec_of(states[0]);
    if (c.lstm()) r.c = vec_of(states[1]);
    // Backward in reverse: the gradient of each step's states comes from the step after it.
    std::vector<Tensor> dstates{tensor_of(d.dh, {c.N, c.H})};
    if (c.lstm()) dstates.push_back(tensor_of(d.dc, {c.N, c.H}));
    for (int t = c.T - 1; t >= 0; --t) {
        auto g = cell.step_backward(step_of(d.dseq, c, t, c.H), dstates, ctx[t]);
        put_step(r.dx, c, t, c.C, g.dx);
        dstates = g.dstates;
    }
    r.dh0 = vec_of(dstates[0]);
    if (c.lstm()) r.dc0 = vec_of(dstates[1]);
    r.dkernel = vec_of(cell.weights()[0]->grad);
    r.drecurrent = vec_of(cell.weights()[1]->grad);
    r.dbias = vec_of(cell.weights()[2]->grad);
    return r;
}

void check_close(const ref::Vec& ours, const ref::Vec& expected, const char* what) {
    INFO(what);
    REQUIRE(ours.size() == expected.size());
    INFO("max |diff| = " << ref::max_abs_diff(ours, expected));
    CHECK(ref::max_rel_err(ours, expected, 1e-5, 1e-4) <= 1.0);
}

const Case kCases[] = {
    {.cell = ref::Cell::simple_rnn},
    {.cell = ref::Cell::simple_rnn, .activation = "relu"},   // the backend's fallback loop
    {.cell = ref::Cell::lstm},
    {.cell = ref::Cell::gru, .reset_after = true},
    {.cell = ref::Cell::gru, .reset_after = false},
};

std::string name_of(const Case& c) {
    const char* names[] = {"SimpleRNNCell", "LSTMCell", "GRUCell"};
    return std::string(names[static_cast<int>(c.cell)]) + " activation=" + c.activation +
           " reset_after=" + (c.reset_after ? "true" : "false");
}

}  // namespace

TEST_CASE("a cell step loop with initial states equals the reference, forward and backward") {
    for (const Case& c : kCases) {
        INFO(name_of(c));
        const Data d = make_data(c, true);
        auto cell = make_cell(c);
        set_weights(*cell, {-1, c.C}, c, d);
        const LoopResult r = run_cell_loop(*cell, c, d, true);

        const ref::RnnConfig cfg{.cell = c.cell, .N = c.N, .T = c.T, .C = c.C, .H = c.H, .activation = c.activation,
                                 .reset_after = c.reset_after, .return_sequences = true};
        const auto fwd = ref::rnn_forward(cfg, d.x, d.kernel, d.recurrent, d.bias, d.h0, d.c0);
        check_close(r.seq, fwd.y, "outputs");
        check_close(r.h, fwd.h, "final h");
        if (c.lstm()) check_close(r.c, fwd.c, "final c");
        const auto g = ref::rnn_backward(cfg, d.x, d.kernel, d.recurrent, d.bias, d.h0, d.c0, d.dseq, d.dh, d.dc);
        check_close(r.dx, g.dx, "dx");
        check_close(r.dkernel, g.dkernel, "dkernel");
        check_close(r.drecurrent, g.drecurrent, "drecurrent_kernel");
        check_close(r.dbias, g.dbias, "dbias");
        check_close(r.dh0, g.dh0, "dh0");
        if (c.lstm()) check_close(r.dc0, g.dc0, "dc0");
    }
}

TEST_CASE("a cell step loop equals the full layer with the same weights, forward and backward") {
    for (const Case& c : kCases) {
        INFO(name_of(c));
        Data d = make_data(c, false);
        d.dh.assign(d.dh.size(), 0.0);   // the layer (return_sequences) gets gradients on its outputs only
        d.dc.assign(d.dc.size(), 0.0);
        auto cell = make_cell(c);
        set_weights(*cell, {-1, c.C}, c, d);
        const LoopResult r = run_cell_loop(*cell, c, d, false);

        auto layer = make_layer(c);
        set_weights(*layer, {-1, c.T, c.C}, c, d);
        CallContext ctx{.training = true};
        const Tensor y = layer->call(tensor_of(d.x, {c.N, c.T, c.C}), ctx);
        check_close(r.seq, vec_of(y), "outputs");
        const Tensor dx = layer->backward(tensor_of(d.dseq, {c.N, c.T, c.H}), ctx);
        check_close(r.dx, vec_of(dx), "dx");
        check_close(r.dkernel, vec_of(layer->weights()[0]->grad), "dkernel");
        check_close(r.drecurrent, vec_of(layer->weights()[1]->grad), "drecurrent_kernel");
        check_close(r.dbias, vec_of(layer->weights()[2]->grad), "dbias");
    }
}

TEST_CASE("cells: Keras's state sizes, initial states, weight shapes, defaults and config") {
    kl::LSTMCell lstm(5);
    CHECK(lstm.state_size() == std::vector<int64_t>{5, 5});
    CHECK(lstm.name().rfind("lstm_cell", 0) == 0);
    const auto states = lstm.get_initial_state(2);
    REQUIRE(states.size() == 2);
    CHECK(states[1].shape() == Shape{2, 5});
    CHECK(vec_of(states[1]) == ref::Vec(10, 0.0));
    lstm.build_for({-1, 3});
    CHECK(lstm.weights()[0]->value.shape() == Shape{3, 20});
    CHECK(lstm.weights()[1]->value.shape() == Shape{5, 20});
    // unit_forget_bias: the forget gate's block of the bias starts at 1, the others at 0.
    const ref::Vec bias = vec_of(lstm.weights()[2]->value);
    for (int i = 0; i < 20; ++i) CHECK(bias[i] == (i >= 5 && i < 10 ? 1.0 : 0.0));
    CHECK(lstm.get_config()["unit_forget_bias"] == true);
    CHECK(lstm.get_config()["recurrent_activation"] == "sigmoid");

    kl::GRUCell gru(4);
    CHECK(gru.state_size() == std::vector<int64_t>{4});
    gru.build_for({-1, 3});
    CHECK(gru.weights()[2]->value.shape() == Shape{2, 12});
    CHECK(gru.get_config()["reset_after"] == true);
    kl::GRUCell gru_v1(4, {.reset_after = false});
    gru_v1.build_for({-1, 3});
    CHECK(gru_v1.weights()[2]->value.shape() == Shape{12});

    kl::SimpleRNNCell rnn(4, {.use_bias = false});
    rnn.build_for({-1, 3});
    CHECK(rnn.weights().size() == 2);
    CHECK(rnn.get_config()["units"] == 4);
    CHECK(rnn.get_config()["use_bias"] == false);
    // Keras 3's get_config() keys, exactly (keras.layers.LSTMCell(4).get_config(), and so on).
    const std::vector<std::string> common = {"activation", "bias_constraint", "bias_initializer", "bias_regularizer",
        "dropout", "dtype", "kernel_constraint", "kernel_initializer", "kernel_regularizer", "name",
        "recurrent_constraint", "recurrent_dropout", "recurrent_initializer", "recurrent_regularizer", "seed",
        "trainable", "units", "use_bias"};
    auto keys = [](const nlohmann::json& config) {
        std::vector<std::string> k;
        for (const auto& item : config.items()) k.push_back(item.key());
        std::sort(k.begin(), k.end());
        return k;
    };
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.end(), common.begin(), common.end());
        std::sort(extra.begin(), extra.end());
        return extra;
    };
    CHECK(keys(rnn.get_config()) == with({}));
    CHECK(keys(lstm.get_config()) == with({"recurrent_activation", "unit_forget_bias"}));
    CHECK(keys(gru.get_config()) == with({"recurrent_activation", "reset_after"}));
    // The Layer interface: a step from zero states.
    CallContext ctx;
    CHECK(rnn.call(Tensor::zeros({2, 3}), ctx).shape() == Shape{2, 4});
}

TEST_CASE("cells: invalid arguments, states and calls give clear errors") {
    using E = keras::ValueError;
    CHECK(message_of<E>([] { kl::LSTMCell(0); }) ==
          "Received an invalid value for argument `units`, expected a positive integer, got 0.");
    kl::LSTMCell cell(4, {.name = "my_cell"});
    const Tensor x = Tensor::zeros({2, 3});
    CHECK(message_of<E>([&] { cell(x, {Tensor::zeros({2, 4})}); }) ==
          "Layer \"my_cell\" expects 2 state tensor(s) (h, c), but received 1");
    CHECK(message_of<E>([&] { cell(x, {Tensor::zeros({2, 4}), Tensor::zeros({3, 4})}); }) ==
          "Layer \"my_cell\": state 1 must have shape (2, 4) (batch, units) for an input of shape (2, 3), received (3, 4)");
    CHECK(message_of<E>([&] { cell(Tensor::zeros({2, 1, 3}), cell.get_initial_state(2)); }) ==
          "Input 0 of layer \"my_cell\" is incompatible with the layer: expected ndim=2, found ndim=3. "
          "Full shape received: (2, 1, 3)");
    cell(x, cell.get_initial_state(2));
    CHECK(message_of<E>([&] { cell(Tensor::zeros({2, 5}), cell.get_initial_state(2)); }) ==
          "Input 0 of layer \"my_cell\" is incompatible with the layer: expected axis -1 of input shape to have "
          "value 3, but received input with shape (None, 5). Full shape received: (None, 5)");
    CallContext ctx{.training = true};
    CHECK(message_of<keras::RuntimeError>([&] { cell.step_backward(Tensor::zeros({2, 4}), {}, ctx); }) ==
          "Layer \"my_cell\": step_backward() called without a step()");
    cell.step(x, cell.get_initial_state(2), ctx);
    CHECK(message_of<E>([&] { cell.step_backward(Tensor::zeros({2, 5}), {}, ctx); }) ==
          "Layer \"my_cell\": the gradient of the output has shape (2, 5), expected (2, 4)");
    CHECK(message_of<E>([&] { cell.step_backward(Tensor::zeros({2, 4}), {Tensor()}, ctx); }) ==
          "Layer \"my_cell\": expected 2 state gradient(s), received 1");
    CallContext inference;   // training = false keeps nothing for a backward pass
    cell.step(x, cell.get_initial_state(2), inference);
    CHECK(message_of<keras::RuntimeError>([&] { cell.step_backward(Tensor::zeros({2, 4}), {}, inference); }) ==
          "Layer \"my_cell\": rnn_backward needs a forward pass run with training=true");
}
