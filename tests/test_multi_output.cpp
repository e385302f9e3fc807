// Functional nodes with several outputs: RNN return_state / initial_state and Bidirectional
// merge_mode=None. Outputs and gradients (through returned states and into initial states) against the
// double-precision reference and central finite differences, the seq2seq encoder-decoder and the
// "h0 from another input" graphs, save / load round trips, real Keras 3 / tf_keras files, the summary
// table against tf_keras's, and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "functional_graph.hpp"
#include "keras/keras.hpp"
#include "keras/models.hpp"
#include "reference/reference.hpp"
#include "saving/model_file.hpp"
#include "h5_test_helpers.hpp"
#include "test_helpers.hpp"

using test_helpers::message_of;
using test_helpers::values_of;
using namespace keras;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

// Random values already rounded to float32, so the reference sees exactly what the layer sees.
ref::Vec float_vec(size_t n, unsigned seed, double lo = -0.8, double hi = 0.8) {
    ref::Vec v = ref::random_vec(n, seed, lo, hi);
    for (double& x : v) x = static_cast<float>(x);
    return v;
}

Tensor tensor_of(const ref::Vec& v, const Shape& shape) { return test_helpers::floats(v, shape); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
    INFO(what);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

std::shared_ptr<layers::RNNBase> make_rnn(ref::Cell cell, int64_t units, bool return_sequences, bool return_state,
                                          const std::string& name = "") {
    if (cell == ref::Cell::lstm)
        return std::make_shared<layers::LSTM>(units, layers::LSTMOptions{.return_sequences = return_sequences,
                                                                          .return_state = return_state, .name = name});
    if (cell == ref::Cell::gru)
        return std::make_shared<layers::GRU>(units, layers::GRUOptions{.return_sequences = return_sequences,
                                                                        .return_state = return_state, .name = name});
    return std::make_shared<layers::SimpleRNN>(
        units, layers::SimpleRNNOptions{.return_sequences = return_sequences, .return_state = return_state, .name = name});
}

std::string model_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".h5")).string();
}

void zero_grads(const Model& model) {
    for (const auto& layer : model.layers())
        for (const auto& w : layer->weights()) w->grad = Tensor();
}

// L = sum_i <g_i, y_i> over the model's outputs, run through the functional graph; with `backward`,
// the weights' grads hold dL/dw afterwards.
double weighted_sum(const Model& model, const std::vector<Tensor>& xs, const std::vector<ref::Vec>& g, bool backward) {
    const FunctionalGraph& graph = *model.functional_graph();
    std::vector<CallContext> contexts;
    const std::vector<Tensor> ys = graph.forward(xs, contexts, /*training=*/backward);
    double loss = 0.0;
    std::vector<Tensor> dys;
    for (size_t i = 0; i < ys.size(); ++i) {
        const auto y = values_of(ys[i]);
        REQUIRE(y.size() == g[i].size());
        for (size_t k = 0; k < y.size(); ++k) loss += g[i][k] * y[k];
        dys.push_back(tensor_of(g[i], ys[i].shape()));
    }
    if (backward) {
        zero_grads(model);
        graph.backward(dys, contexts);
    }
    return loss;
}

// Central differences of weighted_sum for a few entries of a weight, against its analytic grad.
void check_finite_differences(const Model& model, const std::vector<Tensor>& xs, const std::vector<ref::Vec>& g,
                              const VariablePtr& w) {
    INFO("weight " << w->name);
    weighted_sum(model, xs, g, true);
    REQUIRE(w->grad.defined());
    const auto analytic = values_of(w->grad);
    const double eps = 1e-2;
    const int64_t n = w->value.numel();
    for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 5)) {
        float& v = w->value.data<float>()[i];
        const float saved = v;
        v = saved + static_cast<float>(eps);
        const double up = weighted_sum(model, xs, g, false);
        v = saved - static_cast<float>(eps);
        const double down = weighted_sum(model, xs, g, false);
        v = saved;
        const double numeric = (up - down) / (2 * eps);
        INFO("entry " << i << ": analytic " << analytic[i] << ", numeric " << numeric);
        CHECK(std::fabs(analytic[i] - numeric) <= 2e-3 * (1.0 + std::fabs(numeric)));
    }
}

std::vector<ref::Vec> output_weights(const Model& model, unsigned seed) {
    std::vector<ref::Vec> g;
    for (const auto& shape : model.outputs()) {
        int64_t n = 3;   // the tests' batch
        for (size_t d = 1; d < shape.shape.size(); ++d) n *= shape.shape[d];
        g.push_back(float_vec(static_cast<size_t>(n), seed++, -1.0, 1.0));
    }
    return g;
}

// Keras's seq2seq: the encoder's final [h, c] start the decoder. Outputs [decoder Dense, h, c].
std::shared_ptr<Model> seq2seq_model() {
    const auto enc = Input({5, 3}, {.name = "enc"}), dec = Input({4, 2}, {.name = "dec"});
    auto encoder = make_rnn(ref::Cell::lstm, 4, false, true, "encoder");
    const auto e = encoder->call_all(enc);
    auto decoder = make_rnn(ref::Cell::lstm, 4, true, false, "decoder");
    const auto seq = decoder->call_all(dec, {e[1], e[2]});
    const auto out = share(layers::Dense(2, {.name = "out"}))->operator()(seq[0]);
    return std::make_shared<Model>(std::vector<KerasTensor>{enc, dec}, std::vector<KerasTensor>{out, e[1], e[2]},
                                   "seq2seq");
}

// The seeds' `_water` pattern: a GRU's h0 computed from a second input through Dense.
std::shared_ptr<Model> water_model() {
    const auto x = Input({6, 3}, {.name = "x"}), w = Input({2}, {.name = "w"});
    const auto h0 = share(layers::Dense(5, {.activation = "tanh", .name = "h0"}))->operator()(w);
    const auto gru = make_rnn(ref::Cell::gru, 5, true, true, "gru")->call_all(x, {h0});
    const auto out = share(layers::Dense(1, {.name = "out"}))->operator()(gru[0]);
    return std::make_shared<Model>(std::vector<KerasTensor>{x, w}, std::vector<KerasTensor>{out, gru[1]}, "water");
}

std::shared_ptr<Model> bidir_model() {
    const auto x = Input({5, 3}, {.name = "x"});
    auto bi = share(layers::Bidirectional(layers::LSTM(3, {.return_state = true}), {.merge_mode = std::nullopt,
                                                                                   .name = "bi"}));
    std::vector<KerasTensor> outs = bi->call_all(x);
    const auto rnn = make_rnn(ref::Cell::simple_rnn, 2, false, true, "rnn")->call_all(x);
    outs.insert(outs.end(), rnn.begin(), rnn.end());
    return std::make_shared<Model>(std::vector<KerasTensor>{x}, outs, "bidir");
}

void randomize(const Model& model, unsigned seed) {
    for (const auto& layer : model.layers())
        for (const auto& w : layer->weights())
            w->value = tensor_of(float_vec(static_cast<size_t>(w->value.numel()), seed++, -0.7, 0.7), w->value.shape());
}

std::vector<Tensor> inputs_for(const Model& model, unsigned seed) {
    std::vector<Tensor> xs;
    for (const auto& in : model.inputs()) {
        Shape shape = in.shape;
        shape[0] = 3;
        int64_t n = 1;
        for (auto d : shape) n *= d;
        xs.push_back(tensor_of(float_vec(static_cast<size_t>(n), seed++, -1.0, 1.0), shape));
    }
    return xs;
}

}  // namespace

// ---- one layer: outputs and gradients against the reference

TEST_CASE("return_state and initial_state: outputs, dx, dh0 / dc0 and weight grads equal the reference") {
    const int N = 3, T = 4, C = 2, H = 3;
    for (const ref::Cell cell : {ref::Cell::simple_rnn, ref::Cell::lstm, ref::Cell::gru})
        for (const bool rs : {false, true}) {
            CAPTURE(static_cast<int>(cell));
            CAPTURE(rs);
            auto layer = make_rnn(cell, H, rs, true);
            layer->build_for({-1, T, C});
            const ref::RnnConfig cfg{.cell = cell, .N = N, .T = T, .C = C, .H = H, .return_sequences = rs};
            std::vector<ref::Vec> w;
            unsigned seed = 10;
            for (const auto& v : layer->weights()) {
                w.push_back(float_vec(static_cast<size_t>(v->value.numel()), seed++));
                v->value = tensor_of(w.back(), v->value.shape());
            }
            const ref::Vec x = float_vec(N * T * C, 1, -1, 1), h0 = float_vec(N * H, 2), c0 = float_vec(N * H, 3);
            const bool lstm = cell == ref::Cell::lstm;
            std::vector<Tensor> states = {tensor_of(h0, {N, H})};
            if (lstm) states.push_back(tensor_of(c0, {N, H}));

            CallContext ctx;
            ctx.training = true;
            const std::vector<Tensor> out = layer->call_outputs(tensor_of(x, {N, T, C}), states, ctx);
            const auto want = ref::rnn_forward(cfg, x, w[0], w[1], w[2], h0, lstm ? c0 : ref::Vec{});
            REQUIRE(out.size() == (lstm ? 3u : 2u));
            CHECK(layer->output_count() == static_cast<int>(out.size()));
            check_close(values_of(out[0]), want.y, 1e-5, "output");
            check_close(values_of(out[1]), want.h, 1e-5, "h");
            if (lstm) check_close(values_of(out[2]), want.c, 1e-5, "c");

            // A gradient on every output; without return_sequences the output and h are the same
            // tensor, so both gradients reach the final h.
            const ref::Vec dy = float_vec(want.y.size(), 4, -1, 1), dh = float_vec(N * H, 5, -1, 1),
                           dc = float_vec(N * H, 6, -1, 1);
            std::vector<Tensor> dys = {tensor_of(dy, out[0].shape()), tensor_of(dh, {N, H})};
            if (lstm) dys.push_back(tensor_of(dc, {N, H}));
            const std::vector<Tensor> grads = layer->backward_outputs(dys, ctx);
            const auto g = ref::rnn_backward(cfg, x, w[0], w[1], w[2], h0, lstm ? c0 : ref::Vec{}, dy, dh,
                                             lstm ? dc : ref::Vec{});
            REQUIRE(grads.size() == (lstm ? 3u : 2u));
            check_close(values_of(grads[0]), g.dx, 1e-5, "dx");
            check_close(values_of(grads[1]), g.dh0, 1e-5, "dh0");
            if (lstm) check_close(values_of(grads[2]), g.dc0, 1e-5, "dc0");
            check_close(values_of(layer->weights()[0]->grad), g.dkernel, 1e-5, "dkernel");
            check_close(values_of(layer->weights()[1]->grad), g.drecurrent, 1e-5, "drecurrent_kernel");
            check_close(values_of(layer->weights()[2]->grad), g.dbias, 1e-5, "dbias");
        }
}

TEST_CASE("an output without a gradient (undefined) contributes none: only dc reaches the LSTM") {
    const int N = 2, T = 3, C = 2, H = 2;
    auto layer = make_rnn(ref::Cell::lstm, H, true, true);
    layer->build_for({-1, T, C});
    std::vector<ref::Vec> w;
    unsigned seed = 40;
    for (const auto& v : layer->weights()) {
        w.push_back(float_vec(static_cast<size_t>(v->value.numel()), seed++));
        v->value = tensor_of(w.back(), v->value.shape());
    }
    const ref::Vec x = float_vec(N * T * C, 41, -1, 1), dc = float_vec(N * H, 42, -1, 1);
    CallContext ctx;
    ctx.training = true;
    layer->call_outputs(tensor_of(x, {N, T, C}), {}, ctx);
    const auto grads = layer->backward_outputs({Tensor(), Tensor(), tensor_of(dc, {N, H})}, ctx);
    const ref::RnnConfig cfg{.cell = ref::Cell::lstm, .N = N, .T = T, .C = C, .H = H, .return_sequences = true};
    const auto g = ref::rnn_backward(cfg, x, w[0], w[1], w[2], {}, {}, ref::Vec(N * T * H, 0.0), {}, dc);
    REQUIRE(grads.size() == 1);   // no initial state was given: only dx
    check_close(values_of(grads[0]), g.dx, 1e-5, "dx");
    check_close(values_of(layer->weights()[0]->grad), g.dkernel, 1e-5, "dkernel");
}

// ---- graphs: seq2seq and `_water`, forward against the reference, gradients by finite differences

TEST_CASE("seq2seq encoder-decoder: the decoder starts from the encoder's [h, c]; gradients flow through them") {
    utils::clear_session();
    auto model = seq2seq_model();
    randomize(*model, 100);
    const auto xs = inputs_for(*model, 200);
    const auto ys = model->predict(xs, {.verbose = 0});
    REQUIRE(ys.size() == 3);
    CHECK(model->output_names() == std::vector<std::string>{"out", "encoder", "encoder_1"});   // Keras 2's names

    // The same numbers from the reference: encoder, then decoder from its final states, then Dense.
    auto weights = [&](const std::string& name) {
        std::vector<ref::Vec> out;
        for (const auto& layer : model->layers())
            if (layer->name() == name)
                for (const auto& w : layer->weights()) out.push_back(values_of(w->value));
        return out;
    };
    const auto we = weights("encoder"), wd = weights("decoder"), wo = weights("out");
    const auto e = ref::rnn_forward({.cell = ref::Cell::lstm, .N = 3, .T = 5, .C = 3, .H = 4}, values_of(xs[0]), we[0],
                                    we[1], we[2]);
    const auto d = ref::rnn_forward({.cell = ref::Cell::lstm, .N = 3, .T = 4, .C = 2, .H = 4, .return_sequences = true},
                                    values_of(xs[1]), wd[0], wd[1], wd[2], e.h, e.c);
    check_close(values_of(ys[0]), ref::dense_forward(d.y, 12, 4, wo[0], 2, wo[1], "linear"), 1e-5, "decoder output");
    check_close(values_of(ys[1]), e.h, 1e-5, "encoder h");
    check_close(values_of(ys[2]), e.c, 1e-5, "encoder c");

    // The encoder's weights get gradients both through the decoder's initial states and through the
    // returned h and c.
    const auto g = output_weights(*model, 300);
    for (const auto& layer : model->layers())
        if (layer->name() == "encoder" || layer->name() == "decoder")
            for (const auto& w : layer->weights()) check_finite_differences(*model, xs, g, w);
}

TEST_CASE("`_water` graph: a GRU's initial state computed from another input through Dense") {
    utils::clear_session();
    auto model = water_model();
    randomize(*model, 400);
    const auto xs = inputs_for(*model, 500);
    const auto ys = model->predict(xs, {.verbose = 0});
    std::vector<ref::Vec> wh, wg;
    for (const auto& layer : model->layers())
        for (const auto& w : layer->weights())
            (layer->name() == "h0" ? wh : wg).push_back(values_of(w->value));
    wg.resize(3);   // the GRU's (the Dense "out" comes after it)
    const ref::Vec h0 = ref::dense_forward(values_of(xs[1]), 3, 2, wh[0], 5, wh[1], "tanh");
    const auto r = ref::rnn_forward({.cell = ref::Cell::gru, .N = 3, .T = 6, .C = 3, .H = 5, .return_sequences = true},
                                    values_of(xs[0]), wg[0], wg[1], wg[2], h0);
    check_close(values_of(ys[1]), r.h, 1e-5, "GRU h");

    // The gradient reaches the Dense that makes h0 only through the GRU's dh0.
    const auto g = output_weights(*model, 600);
    for (const auto& layer : model->layers())
        if (layer->name() == "h0" || layer->name() == "gru")
            for (const auto& w : layer->weights()) check_finite_differences(*model, xs, g, w);
}

TEST_CASE("a functional model with return_state trains") {
    utils::clear_session();
    utils::set_random_seed(3);
    auto model = water_model();
    model->compile(std::make_shared<optimizers::Adam>(0.02f), {losses::get("mse"), losses::get("mse")});
    const auto xs = inputs_for(*model, 700);
    const std::vector<Tensor> ys = {Tensor::zeros({3, 6, 1}), Tensor::zeros({3, 5})};
    const double before = model->evaluate(xs, ys, {.verbose = 0}).loss();
    model->fit(xs, ys, {.batch_size = 3, .epochs = 20, .verbose = 0});
    CHECK(model->evaluate(xs, ys, {.verbose = 0}).loss() < 0.5 * before);
}

// ---- Bidirectional merge_mode=None and return_state

TEST_CASE("Bidirectional merge_mode=None with return_state equals the two layers wired by hand") {
    const int64_t N = 2, T = 4, C = 3, U = 3;
    utils::set_random_seed(9);
    layers::Bidirectional bi(layers::LSTM(U, {.return_sequences = true, .return_state = true}),
                             {.merge_mode = std::nullopt});
    bi.build_for({-1, T, C});
    CHECK(bi.output_count() == 6);
    CHECK(bi.compute_output_shapes({-1, T, C}) ==
          std::vector<Shape>{{-1, T, U}, {-1, T, U}, {-1, U}, {-1, U}, {-1, U}, {-1, U}});
    auto fwd = std::make_shared<layers::LSTM>(U, layers::LSTMOptions{.return_sequences = true, .return_state = true});
    auto bwd = std::make_shared<layers::LSTM>(
        U, layers::LSTMOptions{.return_sequences = true, .return_state = true, .go_backwards = true});
    fwd->build_for({-1, T, C});
    bwd->build_for({-1, T, C});
    for (size_t i = 0; i < 3; ++i) {
        fwd->weights()[i]->value = bi.weights()[i]->value.clone();
        bwd->weights()[i]->value = bi.weights()[3 + i]->value.clone();
    }
    const Tensor x = tensor_of(float_vec(N * T * C, 77, -1, 1), {N, T, C});
    // initial_state: the forward layer's [h, c], then the backward layer's.
    std::vector<Tensor> states;
    for (unsigned s = 0; s < 4; ++s) states.push_back(tensor_of(float_vec(N * U, 80 + s), {N, U}));
    CallContext ctx, cf, cb;
    ctx.training = cf.training = cb.training = true;
    const auto out = bi.call_outputs(x, states, ctx);
    const auto of = fwd->call_outputs(x, {states[0], states[1]}, cf);
    const auto ob = bwd->call_outputs(x, {states[2], states[3]}, cb);
    REQUIRE(out.size() == 6);
    // The backward layer's sequence comes back flipped in time (step t describes input step t).
    std::vector<double> flipped(values_of(ob[0]).size());
    const auto b = values_of(ob[0]);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t k = 0; k < U; ++k) flipped[(n * T + (T - 1 - t)) * U + k] = b[(n * T + t) * U + k];
    check_close(values_of(out[0]), values_of(of[0]), 0, "forward output");
    check_close(values_of(out[1]), flipped, 0, "backward output");
    check_close(values_of(out[2]), values_of(of[1]), 0, "forward h");
    check_close(values_of(out[3]), values_of(of[2]), 0, "forward c");
    check_close(values_of(out[4]), values_of(ob[1]), 0, "backward h");
    check_close(values_of(out[5]), values_of(ob[2]), 0, "backward c");

    // Gradients: one per output (the backward output's flipped back), into x and the four states.
    std::vector<Tensor> dys;
    for (size_t i = 0; i < out.size(); ++i)
        dys.push_back(tensor_of(float_vec(static_cast<size_t>(out[i].numel()), 90 + i, -1, 1), out[i].shape()));
    std::vector<double> db(flipped.size());
    const auto d1 = values_of(dys[1]);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t k = 0; k < U; ++k) db[(n * T + (T - 1 - t)) * U + k] = d1[(n * T + t) * U + k];
    const auto g = bi.backward_outputs(dys, ctx);
    const auto gf = fwd->backward_outputs({dys[0], dys[2], dys[3]}, cf);
    const auto gb = bwd->backward_outputs({tensor_of(db, {N, T, U}), dys[4], dys[5]}, cb);
    REQUIRE(g.size() == 5);
    std::vector<double> dx = values_of(gf[0]);
    const auto dxb = values_of(gb[0]);
    for (size_t i = 0; i < dx.size(); ++i) dx[i] += dxb[i];
    check_close(values_of(g[0]), dx, 1e-6, "dx");
    check_close(values_of(g[1]), values_of(gf[1]), 0, "forward dh0");
    check_close(values_of(g[2]), values_of(gf[2]), 0, "forward dc0");
    check_close(values_of(g[3]), values_of(gb[1]), 0, "backward dh0");
    check_close(values_of(g[4]), values_of(gb[2]), 0, "backward dc0");
    for (size_t i = 0; i < 3; ++i) {
        check_close(values_of(bi.weights()[i]->grad), values_of(fwd->weights()[i]->grad), 0, "forward weight grad");
        check_close(values_of(bi.weights()[3 + i]->grad), values_of(bwd->weights()[i]->grad), 0, "backward weight grad");
    }
    CHECK(bi.get_config()["merge_mode"].is_null());

    // Only the forward output used: the backward direction gets no gradient and is skipped.
    CallContext ctx2, cf2;
    ctx2.training = cf2.training = true;
    bi.call_outputs(x, states, ctx2);
    fwd->call_outputs(x, {states[0], states[1]}, cf2);
    const auto g2 = bi.backward_outputs({dys[0], Tensor(), Tensor(), Tensor(), Tensor(), Tensor()}, ctx2);
    const auto gf2 = fwd->backward_outputs({dys[0], Tensor(), Tensor()}, cf2);
    check_close(values_of(g2[0]), values_of(gf2[0]), 0, "dx from the forward output alone");
    CHECK_FALSE(g2[3].defined());   // backward dh0
}

// ---- saving and loading

TEST_CASE("save / load_model round trips multi-output graphs bit for bit, with Keras 3's config") {
    for (const auto& make : {seq2seq_model, water_model, bidir_model}) {
        utils::clear_session();
        auto model = make();
        randomize(*model, 800);
        const auto xs = inputs_for(*model, 900);
        const std::string path = model_path("multi_output_" + model->name());
        model->save(path);
        auto loaded = models::load_model(path, {.compile = false});
        const auto want = model->predict(xs, {.verbose = 0}), got = loaded->predict(xs, {.verbose = 0});
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) CHECK(values_of(got[i]) == values_of(want[i]));
        CHECK(saving::model_config(*loaded) == saving::model_config(*model));
        std::filesystem::remove(path);
        // For tests/fixtures/check_multi_output_models.py (real Keras loads our files), by hand.
        if (const char* dir = std::getenv("KERASCPP_EXPORT_DIR")) {
            const std::string base = std::string(dir) + "/multi_output_" + model->name();
            model->save(base + ".h5");
            nlohmann::json out = {{"x", nlohmann::json::array()}, {"x_shape", nlohmann::json::array()},
                                  {"y", nlohmann::json::array()}};
            for (const auto& x : xs) {
                out["x"].push_back(x.to_vector<float>());
                out["x_shape"].push_back(x.shape());
            }
            for (const auto& y : want) out["y"].push_back(y.to_vector<float>());
            std::ofstream(base + ".json") << out.dump();
        }
    }
    // Keras 3's form: the tensor index in keras_history, initial_state as a keyword argument.
    utils::clear_session();
    const auto config = saving::model_config(*seq2seq_model());
    CHECK(config["config"]["output_layers"] == nlohmann::json::parse(R"([["out",0,0],["encoder",0,1],["encoder",0,2]])"));
    for (const auto& layer : config["config"]["layers"])
        if (layer["name"] == "decoder") {
            const auto& states = layer["inbound_nodes"][0]["kwargs"]["initial_state"];
            REQUIRE(states.size() == 2);
            CHECK(states[1]["config"]["keras_history"] == nlohmann::json::parse(R"(["encoder",0,2])"));
        } else if (layer["name"] == "encoder") {
            CHECK(layer["config"]["return_state"] == true);
        }
}

TEST_CASE("real Keras 3 and tf_keras files with return_state, initial_state and merge_mode=None load and predict "
          "what Keras predicted") {
    std::ifstream in(kFixtures + "multi_output_fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    REQUIRE(fixtures["models"].size() == 8);
    for (const auto& f : fixtures["models"]) {
        const std::string file = f["file"];
        CAPTURE(file);
        auto model = models::load_model(kFixtures + file, {.compile = false});
        std::vector<Tensor> xs;
        for (size_t i = 0; i < f["x"].size(); ++i)
            xs.push_back(test_helpers::floats(f["x"][i].get<std::vector<double>>(), f["x_shape"][i].get<Shape>()));
        const auto ys = model->predict(xs, {.verbose = 0});
        REQUIRE(ys.size() == f["y"].size());
        for (size_t i = 0; i < ys.size(); ++i) {
            CHECK(ys[i].shape() == f["y_shape"][i].get<Shape>());
            check_close(values_of(ys[i]), f["y"][i].get<std::vector<double>>(), 2e-5, "prediction");
        }
    }
}

TEST_CASE("summary() lists every output's shape and `lstm[0][1]` links, as tf_keras prints them") {
    utils::clear_session();
    auto model = seq2seq_model();
    std::ostringstream os;
    model->summary(&os);
    std::ifstream in(kFixtures + "multi_output_fixtures.json");
    REQUIRE(in.good());
    CHECK(os.str() == nlohmann::json::parse(in)["summary_k2"].get<std::string>());
}

// ---- errors

TEST_CASE("multi-output and initial_state errors name the layer and say what is wrong") {
    utils::clear_session();
    const auto x = Input({5, 3}, {.name = "x"});
    const auto h6 = Input({6}, {.name = "h6"}), h7 = Input({7}, {.name = "h7"});
    auto lstm = make_rnn(ref::Cell::lstm, 6, false, false, "lstm");
    // tf_keras's message (Keras 3 fails only inside the loop), with the layer named.
    CHECK(message_of<ValueError>([&] { lstm->call_all(x, {h6}); }) ==
          "Layer \"lstm\" (LSTM): An `initial_state` was passed that is not compatible with `cell.state_size`. "
          "Received `state_spec`=[InputSpec(shape=(None, 6), ndim=2)]; however `cell.state_size` is [6, 6]");
    CHECK(message_of<ValueError>([&] { lstm->call_all(x, {h7, h6}); }) ==
          "Layer \"lstm\" (LSTM): An `initial_state` was passed that is not compatible with `cell.state_size`. "
          "Received `state_spec`=[InputSpec(shape=(None, 7), ndim=2), InputSpec(shape=(None, 6), ndim=2)]; however "
          "`cell.state_size` is [6, 6]");
    auto gru = make_rnn(ref::Cell::gru, 6, false, false, "gru");
    CHECK(message_of<ValueError>([&] { gru->call_all(x, {h6, h6}); }).find("`cell.state_size` is [6]") !=
          std::string::npos);
    // The same check on concrete tensors (eager calls): the batch must match too.
    CallContext ctx;
    CHECK(message_of<ValueError>([&] {
              gru->call_outputs(Tensor::zeros({2, 5, 3}), {Tensor::zeros({3, 6})}, ctx);
          }) == "Layer \"gru\" (GRU): An `initial_state` was passed that is not compatible with `cell.state_size`. "
                "Received `state_spec`=[InputSpec(shape=(3, 6), ndim=2)]; however `cell.state_size` is [6]");

    auto encoder = make_rnn(ref::Cell::lstm, 4, false, true, "encoder");
    CHECK(message_of<ValueError>([&] { (*encoder)(x); }) ==
          "Layer \"encoder\" (LSTM) returns 3 outputs (e.g. return_state=true or merge_mode=None): call it with "
          "layer->call_all(x) to get all of them");
    auto dense = share(layers::Dense(2, {.name = "d"}));
    CHECK(message_of<ValueError>([&] { dense->call_all(Input({3}), {h6}); }) ==
          "Layer \"d\" (Dense) does not take an `initial_state`: only recurrent layers do");
    CHECK(message_of<ValueError>([&] { Sequential({share(layers::Input({5, 3})), encoder}); }) ==
          "All layers in a Sequential model should have a single output tensor. For multi-output layers, use the "
          "functional API. Layer \"encoder\" (LSTM) has 3 outputs.");
    auto bi = share(layers::Bidirectional(layers::LSTM(6), {.name = "bi"}));
    CHECK(message_of<ValueError>([&] { bi->call_all(x, {h6, h6, h6}); }) ==
          "Layer \"bi\" (Bidirectional): When passing `initial_state` to a Bidirectional RNN, the state should be a "
          "list containing the states of the underlying RNNs. Received: 3 state(s)");
    CHECK(message_of<ValueError>([] {
              layers::Bidirectional(layers::LSTM(2, {.return_state = true}),
                                    {.backward_layer = std::make_shared<layers::LSTM>(
                                         2, layers::LSTMOptions{.go_backwards = true})});
          }) == "Forward layer and backward layer are expected to have the same value for attribute \"return_state\", "
                "got \"True\" for forward layer and \"False\" for backward layer");
}

TEST_CASE("load_model: a reference past a layer's outputs is a clear error") {
    utils::clear_session();
    auto model = seq2seq_model();
    const std::string path = model_path("multi_output_bad");
    model->save(path);
    auto config = saving::model_config(*model);
    config["config"]["output_layers"][2] = {"encoder", 0, 3};
    test_helpers::rewrite_model_config(path, config);
    CHECK(message_of<ValueError>([&] { models::load_model(path); }) ==
          "File '" + path + "': the model_config names output 3 of layer \"encoder\" (call 0), which has 3 output(s)");
    std::filesystem::remove(path);
}
