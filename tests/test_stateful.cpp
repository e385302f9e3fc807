// stateful=true for SimpleRNN / LSTM / GRU: a stateful layer over consecutive chunks of a series equals
// one pass over the whole series (the double-precision reference), its gradients are the truncated-BPTT
// ones (each chunk's backward starts from the kept states, no gradient into them), fit(shuffle=false)
// over chunks equals a naive double-precision SGD loop that carries the states and REAL Keras 3
// (tests/fixtures/stateful_keras.json), and the errors.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/model.hpp"
#include "keras/models.hpp"
#include "keras/optimizers.hpp"
#include "keras/random.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using keras::CallContext;
using keras::Shape;
using keras::Tensor;
using test_helpers::message_of;
namespace kl = keras::layers;

namespace {

constexpr int N = 2, T = 12, CHUNK = 4, C = 3, H = 5;

ref::Vec rounded_random(size_t n, unsigned seed, double lo, double hi) {
    ref::Vec v = ref::random_vec(n, seed, lo, hi);
    for (double& a : v) a = static_cast<float>(a);
    return v;
}
Tensor tensor_of(const ref::Vec& v, Shape shape) { return test_helpers::floats(v, std::move(shape)); }
ref::Vec vec_of(const Tensor& t) { return test_helpers::values_of(t); }

// Steps [t0, t0 + len) of a flat (N, steps, K) array.
ref::Vec time_slice(const ref::Vec& seq, int steps, int K, int t0, int len) {
    ref::Vec out;
    for (int n = 0; n < N; ++n)
        for (int t = t0; t < t0 + len; ++t)
            for (int k = 0; k < K; ++k) out.push_back(seq[(static_cast<size_t>(n) * steps + t) * K + k]);
    return out;
}

void check_close(const ref::Vec& ours, const ref::Vec& expected, const std::string& what) {
    INFO(what);
    REQUIRE(ours.size() == expected.size());
    INFO("max |diff| = " << ref::max_abs_diff(ours, expected));
    CHECK(ref::max_rel_err(ours, expected, 1e-5, 1e-4) <= 1.0);
}

struct Weights {
    ref::Vec kernel, recurrent, bias;
};

Weights random_weights(ref::Cell cell) {
    const int G = ref::gates(cell);
    const ref::RnnConfig cfg{.cell = cell, .H = H};
    return {rounded_random(static_cast<size_t>(C) * G * H, 2, -0.6, 0.6),
            rounded_random(static_cast<size_t>(H) * G * H, 3, -0.6, 0.6), rounded_random(ref::bias_size(cfg), 4, -0.5, 0.5)};
}

std::unique_ptr<kl::RNNBase> make_layer(ref::Cell cell, bool stateful) {
    switch (cell) {
        case ref::Cell::simple_rnn:
            return std::make_unique<kl::SimpleRNN>(H, kl::SimpleRNNOptions{.return_sequences = true, .stateful = stateful});
        case ref::Cell::lstm: return std::make_unique<kl::LSTM>(H, kl::LSTMOptions{.return_sequences = true, .stateful = stateful});
        case ref::Cell::gru: return std::make_unique<kl::GRU>(H, kl::GRUOptions{.return_sequences = true, .stateful = stateful});
    }
    return nullptr;
}

void set_weights(kl::RNNBase& layer, ref::Cell cell, const Weights& w) {
    layer.build_for({-1, CHUNK, C});
    const int64_t GH = static_cast<int64_t>(ref::gates(cell)) * H;
    layer.weights()[0]->value.copy_from(tensor_of(w.kernel, {C, GH}));
    layer.weights()[1]->value.copy_from(tensor_of(w.recurrent, {H, GH}));
    layer.weights()[2]->value.copy_from(tensor_of(w.bias, cell == ref::Cell::gru ? Shape{2, GH} : Shape{GH}));
}

ref::RnnConfig config(ref::Cell cell, int steps) {
    return {.cell = cell, .N = N, .T = steps, .C = C, .H = H, .return_sequences = true};
}

const ref::Cell kCells[] = {ref::Cell::simple_rnn, ref::Cell::lstm, ref::Cell::gru};

}  // namespace

TEST_CASE("a stateful RNN over consecutive chunks equals one pass over the whole series") {
    for (ref::Cell cell : kCells) {
        INFO("cell " << static_cast<int>(cell));
        const Weights w = random_weights(cell);
        const ref::Vec x = rounded_random(static_cast<size_t>(N) * T * C, 1, -1.0, 1.0);
        const auto whole = ref::rnn_forward(config(cell, T), x, w.kernel, w.recurrent, w.bias);

        auto layer = make_layer(cell, true);
        set_weights(*layer, cell, w);
        CHECK(layer->states().empty());
        for (int t0 = 0; t0 < T; t0 += CHUNK) {
            CallContext ctx;
            const Tensor y = layer->call(tensor_of(time_slice(x, T, C, t0, CHUNK), {N, CHUNK, C}), ctx);
            check_close(vec_of(y), time_slice(whole.y, T, H, t0, CHUNK), "outputs of the chunk at " + std::to_string(t0));
        }
        const auto states = layer->states();
        REQUIRE(states.size() == (cell == ref::Cell::lstm ? 2u : 1u));
        check_close(vec_of(states[0]), whole.h, "kept h after the last chunk");
        if (cell == ref::Cell::lstm) check_close(vec_of(states[1]), whole.c, "kept c after the last chunk");
        CHECK(layer->get_config()["stateful"] == true);

        // reset_states(): the next chunk starts from zeros again, as the first one did.
        layer->reset_states();
        CHECK(layer->states().empty());
        CallContext ctx;
        const Tensor again = layer->call(tensor_of(time_slice(x, T, C, 0, CHUNK), {N, CHUNK, C}), ctx);
        check_close(vec_of(again), time_slice(whole.y, T, H, 0, CHUNK), "first chunk after reset_states()");

        // Not stateful (the default): every chunk starts from zeros and nothing is kept.
        auto plain = make_layer(cell, false);
        set_weights(*plain, cell, w);
        const ref::Vec x2 = time_slice(x, T, C, CHUNK, CHUNK);
        const auto alone = ref::rnn_forward(config(cell, CHUNK), x2, w.kernel, w.recurrent, w.bias);
        for (int i = 0; i < 2; ++i) {
            CallContext c2;
            check_close(vec_of(plain->call(tensor_of(x2, {N, CHUNK, C}), c2)), alone.y, "non-stateful chunk");
        }
        CHECK(plain->states().empty());
        CHECK(plain->get_config()["stateful"] == false);
    }
}

TEST_CASE("a stateful RNN's gradients per chunk are truncated BPTT from the kept states") {
    for (ref::Cell cell : kCells) {
        INFO("cell " << static_cast<int>(cell));
        const Weights w = random_weights(cell);
        const ref::Vec x = rounded_random(static_cast<size_t>(N) * T * C, 1, -1.0, 1.0);
        const ref::Vec dy = rounded_random(static_cast<size_t>(N) * T * H, 9, -1.0, 1.0);
        auto layer = make_layer(cell, true);
        set_weights(*layer, cell, w);
        ref::Vec h0, c0;   // the reference's states entering the chunk
        for (int t0 = 0; t0 < T; t0 += CHUNK) {
            INFO("chunk at " << t0);
            const ref::Vec xk = time_slice(x, T, C, t0, CHUNK), dyk = time_slice(dy, T, H, t0, CHUNK);
            for (const auto& v : layer->weights()) v->grad = Tensor();
            CallContext ctx{.training = true};
            layer->call(tensor_of(xk, {N, CHUNK, C}), ctx);
            const Tensor dx = layer->backward(tensor_of(dyk, {N, CHUNK, H}), ctx);

            const auto cfg = config(cell, CHUNK);
            const auto g = ref::rnn_backward(cfg, xk, w.kernel, w.recurrent, w.bias, h0, c0, dyk);
            check_close(vec_of(dx), g.dx, "dx");
            check_close(vec_of(layer->weights()[0]->grad), g.dkernel, "dkernel");
            check_close(vec_of(layer->weights()[1]->grad), g.drecurrent, "drecurrent_kernel");
            check_close(vec_of(layer->weights()[2]->grad), g.dbias, "dbias");
            const auto fwd = ref::rnn_forward(cfg, xk, w.kernel, w.recurrent, w.bias, h0, c0);
            h0 = fwd.h;
            c0 = fwd.c;
        }
    }
}

TEST_CASE("fit(shuffle=false) over chunks with a stateful SimpleRNN equals a naive SGD loop carrying the states") {
    // Two series of 3 chunks each, laid out so that batch b holds chunk b of both series.
    constexpr int CHUNKS = 3, LR_TIMES_10 = 3;
    const double lr = LR_TIMES_10 / 10.0;
    const Weights w = random_weights(ref::Cell::simple_rnn);
    const ref::Vec x = rounded_random(static_cast<size_t>(CHUNKS) * N * CHUNK * C, 11, -1.0, 1.0);
    const ref::Vec y = rounded_random(static_cast<size_t>(CHUNKS) * N, 12, -1.0, 1.0);
    ref::Vec dense_w = rounded_random(H, 13, -0.7, 0.7), dense_b{0.1};

    keras::utils::set_random_seed(3);
    keras::Sequential model;
    model.add(kl::Input({CHUNK, C}, {.batch_size = N}));
    model.add(kl::SimpleRNN(H, {.stateful = true}));
    model.add(kl::Dense(1));
    model.compile(keras::optimizers::SGD(static_cast<float>(lr)), "mse");
    model.set_weights({tensor_of(w.kernel, {C, H}), tensor_of(w.recurrent, {H, H}), tensor_of(w.bias, {H}),
                       tensor_of(dense_w, {H, 1}), tensor_of(dense_b, {1})});
    model.fit(tensor_of(x, {CHUNKS * N, CHUNK, C}), tensor_of(y, {CHUNKS * N, 1}),
              {.batch_size = N, .epochs = 1, .shuffle = false, .verbose = 0});

    // The naive loop: forward from the carried states, MSE, backward without the states' gradient, SGD.
    Weights rw = w;
    ref::Vec h0;
    const ref::RnnConfig cfg{.cell = ref::Cell::simple_rnn, .N = N, .T = CHUNK, .C = C, .H = H};
    for (int b = 0; b < CHUNKS; ++b) {
        const ref::Vec xb(x.begin() + b * N * CHUNK * C, x.begin() + (b + 1) * N * CHUNK * C);
        const auto fwd = ref::rnn_forward(cfg, xb, rw.kernel, rw.recurrent, rw.bias, h0);
        ref::Vec dh(static_cast<size_t>(N) * H), d_dense_w(H, 0.0);
        double d_dense_b = 0.0;
        for (int n = 0; n < N; ++n) {
            double pred = dense_b[0];
            for (int j = 0; j < H; ++j) pred += fwd.h[n * H + j] * dense_w[j];
            const double dpred = 2.0 * (pred - y[b * N + n]) / N;
            d_dense_b += dpred;
            for (int j = 0; j < H; ++j) {
                d_dense_w[j] += fwd.h[n * H + j] * dpred;
                dh[n * H + j] = dpred * dense_w[j];
            }
        }
        const auto g = ref::rnn_backward(cfg, xb, rw.kernel, rw.recurrent, rw.bias, h0, {}, dh);
        auto step = [&](ref::Vec& p, const ref::Vec& d) { for (size_t i = 0; i < p.size(); ++i) p[i] -= lr * d[i]; };
        step(rw.kernel, g.dkernel);
        step(rw.recurrent, g.drecurrent);
        step(rw.bias, g.dbias);
        step(dense_w, d_dense_w);
        dense_b[0] -= lr * d_dense_b;
        h0 = fwd.h;   // the states of this batch's forward pass (before the update) carry over
    }
    const auto trained = model.get_weights();
    check_close(vec_of(trained[0]), rw.kernel, "kernel");
    check_close(vec_of(trained[1]), rw.recurrent, "recurrent_kernel");
    check_close(vec_of(trained[2]), rw.bias, "bias");
    check_close(vec_of(trained[3]), dense_w, "dense kernel");
    check_close(vec_of(trained[4]), dense_b, "dense bias");
    kl::RNNBase* rnn = nullptr;
    for (const auto& layer : model.layers())
        if (auto* r = dynamic_cast<kl::RNNBase*>(layer.get())) rnn = r;
    REQUIRE(rnn != nullptr);
    CHECK(rnn->stateful_batch_size() == N);
}

TEST_CASE("fit and predict over chunks with stateful LSTM / GRU / SimpleRNN equal REAL Keras 3") {
    // tests/fixtures/gen_stateful_fixtures.py: Input(batch_shape=(2, 4, 3)) -> <cell>(5, stateful=True) ->
    // Dense(1), SGD(0.3), mse, fit(batch_size=2, shuffle=False); then reset_states() and predict.
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/stateful_keras.json");
    REQUIRE(in.good());
    const auto fixture = nlohmann::json::parse(in);
    for (const auto& c : fixture["cases"]) {
        const std::string name = c["name"];
        INFO(name << " (Keras " << fixture["keras_version"].get<std::string>() << ")");
        keras::Sequential model;
        model.add(kl::Input({}, {.batch_shape = {2, 4, 3}}));
        if (name == "LSTM") model.add(kl::LSTM(5, {.stateful = true}));
        else if (name == "GRU") model.add(kl::GRU(5, {.stateful = true}));
        else model.add(kl::SimpleRNN(5, {.stateful = true}));
        model.add(kl::Dense(1));
        std::vector<Tensor> weights;
        for (const auto& w : c["weights"]) weights.push_back(tensor_of(w["values"].get<ref::Vec>(), w["shape"].get<Shape>()));
        model.set_weights(weights);
        model.compile(keras::optimizers::SGD(0.3f), "mse");
        const Tensor x = tensor_of(c["x"].get<ref::Vec>(), {6, 4, 3}), y = tensor_of(c["y"].get<ref::Vec>(), {6, 1});
        model.fit(x, y, {.batch_size = 2, .epochs = 1, .shuffle = false, .verbose = 0});
        const auto trained = model.get_weights();
        REQUIRE(trained.size() == c["trained"].size());
        for (size_t i = 0; i < trained.size(); ++i)
            check_close(vec_of(trained[i]), c["trained"][i]["values"].get<ref::Vec>(), "trained weight " + std::to_string(i));
        for (const auto& layer : model.layers())
            if (auto* rnn = dynamic_cast<kl::RNNBase*>(layer.get())) rnn->reset_states();
        check_close(vec_of(model.predict(x, {.batch_size = 2, .verbose = 0})), c["predict_after_reset"].get<ref::Vec>(),
                    "predict over the chunks after reset_states()");
    }
}

TEST_CASE("stateful: a different batch size and reset_states() on a plain layer give clear errors") {
    kl::LSTM lstm(3, {.stateful = true, .name = "chunks"});
    CallContext ctx;
    lstm.call(Tensor::zeros({4, 2, 1}), ctx);
    CHECK(lstm.stateful_batch_size() == 4);
    CHECK(message_of<keras::ValueError>([&] { lstm.call(Tensor::zeros({3, 2, 1}), ctx); }) ==
          "Layer \"chunks\": if an RNN is stateful, the batch size of the input sequences must be the same as the "
          "batch size of the initial state. Expected batch size: 4 (fixed by the layer's first call). Received batch "
          "size: 3 (input shape (3, 2, 1)). With fit / evaluate / predict, choose a batch_size that divides the "
          "number of samples.");
    lstm.reset_states();   // the batch size stays fixed, as in Keras
    CHECK_THROWS_AS(lstm.call(Tensor::zeros({3, 2, 1}), ctx), keras::ValueError);

    kl::GRU plain(3, {.name = "plain"});
    CHECK(message_of<keras::ValueError>([&] { plain.reset_states(); }) ==
          "Layer \"plain\" is not stateful: reset_states() needs stateful=true");

    // fit over 5 samples in batches of 2: the short last batch is refused, naming the layer.
    keras::Sequential model;
    model.add(kl::Input({2, 1}, {.batch_size = 2}));
    model.add(kl::SimpleRNN(2, {.stateful = true, .name = "srnn"}));
    model.compile("sgd", "mse");
    const std::string msg = message_of<keras::ValueError>(
        [&] { model.fit(Tensor::zeros({5, 2, 1}), Tensor::zeros({5, 2}), {.batch_size = 2, .shuffle = false, .verbose = 0}); });
    CHECK(msg.find("Layer \"srnn\": if an RNN is stateful") == 0);
    CHECK(msg.find("Expected batch size: 2 (the batch size of the model's input). Received batch size: 1") !=
          std::string::npos);
}

// ---------------------------------------------------------------- the batch size from the Input

TEST_CASE("stateful: the fixed batch size of keras::Input / InputLayer is the layer's from the start") {
    auto inp = keras::Input({4, 3}, {.batch_size = 2});
    CHECK(inp.shape == Shape{2, 4, 3});
    auto lstm = keras::share(kl::LSTM(5, {.return_sequences = true, .stateful = true, .name = "fixed"}));
    const auto y = (*lstm)(inp);
    CHECK(y.shape == Shape{2, 4, 5});
    CHECK(lstm->stateful_batch_size() == 2);   // before any call
    CallContext ctx;
    CHECK(message_of<keras::ValueError>([&] { lstm->call(Tensor::zeros({3, 4, 3}), ctx); }) ==
          "Layer \"fixed\": if an RNN is stateful, the batch size of the input sequences must be the same as the "
          "batch size of the initial state. Expected batch size: 2 (the batch size of the model's input). Received "
          "batch size: 3 (input shape (3, 4, 3)). With fit / evaluate / predict, choose a batch_size that divides the "
          "number of samples.");

    // Keras's batch_shape form, in a Sequential model; summary() shows the fixed batch size.
    keras::Sequential model;
    model.add(kl::Input({}, {.batch_shape = {2, 4, 3}}));
    model.add(kl::GRU(3, {.stateful = true, .name = "gru"}));
    CHECK(std::dynamic_pointer_cast<kl::RNNBase>(model.get_layer("gru"))->stateful_batch_size() == 2);
    CHECK(model.all_layers()[0]->get_config()["batch_shape"] == nlohmann::json::parse("[2, 4, 3]"));
    std::ostringstream os;
    model.summary(&os);
    CHECK(os.str().find("(2, 3)") != std::string::npos);

    // Built from data (no Input, as Keras builds a Sequential from its first batch): the first call fixes it.
    keras::Sequential from_data;
    from_data.add(kl::SimpleRNN(2, {.stateful = true, .name = "lazy"}));
    from_data.predict(Tensor::zeros({4, 2, 1}), {.batch_size = 2, .verbose = 0});
    CHECK(std::dynamic_pointer_cast<kl::RNNBase>(from_data.get_layer("lazy"))->stateful_batch_size() == 2);
}

TEST_CASE("stateful: Keras's errors for a missing fixed batch size and for bad Input arguments") {
    const std::string dynamic = "When using `stateful=True` in a RNN, the batch size must be static. Found dynamic "
                                "batch size: sequence.shape=(None, 4, 3). Give the input a fixed batch size: "
                                "keras::Input(shape, {.batch_size = N}) or {.batch_shape = {N, ...}}";
    auto inp = keras::Input({4, 3});
    auto lstm = keras::share(kl::LSTM(5, {.stateful = true, .name = "s"}));
    CHECK(message_of<keras::ValueError>([&] { (*lstm)(inp); }) == "Layer \"s\": " + dynamic);
    keras::Sequential model;
    model.add(kl::Input({4, 3}));
    CHECK(message_of<keras::ValueError>([&] { model.add(kl::GRU(2, {.stateful = true, .name = "g"})); }) ==
          "Layer \"g\": " + dynamic);
    auto bi = keras::share(kl::Bidirectional(kl::SimpleRNN(2, {.stateful = true, .name = "r"})));
    CHECK(message_of<keras::ValueError>([&] { (*bi)(inp); }) == "Layer \"forward_r\": " + dynamic);
    // Not stateful: any batch size.
    CHECK((*keras::share(kl::LSTM(5)))(inp).shape == Shape{-1, 5});

    CHECK(message_of<keras::ValueError>([] { keras::Input({4, 3}, {.batch_shape = {2, 4, 3}}); }) ==
          "You cannot pass both `shape` and `batch_shape` at the same time.");
    CHECK(message_of<keras::ValueError>([] { keras::Input({}, {.batch_size = 2, .batch_shape = {2, 4, 3}}); }) ==
          "You cannot pass both `batch_size` and `batch_shape` at the same time.");
    CHECK(message_of<keras::ValueError>([] { kl::Input({4, 3}, {.batch_size = 0}); }) ==
          "Input: batch_size must be a positive integer, got 0");
    CHECK(message_of<keras::ValueError>([] { kl::Input({}, {.batch_shape = {0, 4, 3}}); }) ==
          "Input: the batch axis of batch_shape must be positive or -1 (None), got (0, 4, 3)");
}

TEST_CASE("stateful: REAL Keras 3 and tf_keras files with a batch size load with it, predict the same and round-trip") {
    // tests/fixtures/gen_stateful_h5_fixtures.py: LSTM(5, stateful, return_sequences) -> GRU(3, stateful) -> Dense(2)
    // on Input(batch_shape=(2, 4, 3)), as a Keras 3 Sequential and functional model and a tf_keras Sequential
    // (batch_input_shape); predict(batch_size=2).
    const std::string dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";
    std::ifstream in(dir + "stateful_fixtures.json");
    REQUIRE(in.good());
    const auto fixture = nlohmann::json::parse(in);
    for (const auto& c : fixture["cases"]) {
        const std::string file = c["file"];
        INFO(file);
        auto model = keras::models::load_model(dir + file, {.compile = false});
        for (const char* name : {"lstm", "gru"})
            CHECK(std::dynamic_pointer_cast<kl::RNNBase>(model->get_layer(name))->stateful_batch_size() == 2);
        const Tensor x = tensor_of(c["x"].get<ref::Vec>(), {6, 4, 3});
        check_close(vec_of(model->predict(x, {.batch_size = 2, .verbose = 0})), c["predict"].get<ref::Vec>(),
                    "predict over three batches, the states carried");
        std::ostringstream os;
        model->summary(&os);
        for (const auto& shape : c["output_shapes"]) CHECK(os.str().find(shape.get<std::string>()) != std::string::npos);
        CHECK_THROWS_WITH_AS(model->predict(x, {.batch_size = 3, .verbose = 0}),
                             doctest::Contains("Expected batch size: 2 (the batch size of the model's input)"),
                             keras::ValueError);

        // Our file keeps batch_shape (2, 4, 3): the reloaded model is fixed to 2 as well.
        const std::string path = (std::filesystem::temp_directory_path() /
                                  ("stateful_roundtrip_" + std::to_string(::getpid()) + ".h5")).string();
        model->save(path);
        auto again = keras::models::load_model(path, {.compile = false});
        std::filesystem::remove(path);
        CHECK(again->all_layers()[0]->class_name() == "InputLayer");
        CHECK(again->all_layers()[0]->get_config()["batch_shape"] == c["batch_shape"]);
        for (const char* name : {"lstm", "gru"})
            CHECK(std::dynamic_pointer_cast<kl::RNNBase>(again->get_layer(name))->stateful_batch_size() == 2);
        check_close(vec_of(again->predict(x, {.batch_size = 2, .verbose = 0})), c["predict"].get<ref::Vec>(),
                    "predict after our save / load");
    }
}
