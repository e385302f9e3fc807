// Bidirectional: equals a forward layer and a go_backwards layer wired by hand (the backward
// output flipped back in time, merged here in double precision), forward and gradients, for every
// merge mode, with return_sequences on and off, for SimpleRNN, LSTM and GRU; names, config, weight
// order, errors and a save / load_model round trip.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "keras/keras.hpp"
#include "keras/models.hpp"
#include "test_helpers.hpp"

using test_helpers::message_of;
using test_helpers::values_of;
using namespace keras;

namespace {

Tensor wavy(const Shape& shape, double phase) { return test_helpers::wavy(shape, phase, 0.41, 1.0); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

LayerPtr make_rnn(const std::string& kind, int64_t units, bool return_sequences, bool go_backwards,
                  const std::string& name = "") {
    if (kind == "SimpleRNN")
        return std::make_shared<layers::SimpleRNN>(
            units, layers::SimpleRNNOptions{.return_sequences = return_sequences, .go_backwards = go_backwards, .name = name});
    if (kind == "LSTM")
        return std::make_shared<layers::LSTM>(
            units, layers::LSTMOptions{.return_sequences = return_sequences, .go_backwards = go_backwards, .name = name});
    return std::make_shared<layers::GRU>(
        units, layers::GRUOptions{.return_sequences = return_sequences, .go_backwards = go_backwards, .name = name});
}

// (N, T, U) values with time reversed, written independently of the layer's helper.
std::vector<double> flipped(const std::vector<double>& v, int64_t n, int64_t t, int64_t u) {
    std::vector<double> out(v.size());
    for (int64_t b = 0; b < n; ++b)
        for (int64_t s = 0; s < t; ++s)
            for (int64_t k = 0; k < u; ++k) out[(b * t + (t - 1 - s)) * u + k] = v[(b * t + s) * u + k];
    return out;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& shape) { return test_helpers::floats(v, shape); }

}  // namespace

TEST_CASE("Bidirectional equals a forward and a reversed layer wired by hand") {
    const int64_t N = 2, T = 4, C = 3, U = 3;
    for (const std::string kind : {"SimpleRNN", "LSTM", "GRU"})
        for (const bool rs : {false, true})
            for (const std::string mode : {"concat", "sum", "mul", "ave"}) {
                CAPTURE(kind);
                CAPTURE(rs);
                CAPTURE(mode);
                utils::set_random_seed(11);
                layers::Bidirectional bi(make_rnn(kind, U, rs, false), {.merge_mode = mode});
                bi.build_for({-1, T, C});
                // Two separate layers given the Bidirectional's weights.
                auto fwd = make_rnn(kind, U, rs, false), bwd = make_rnn(kind, U, rs, true);
                fwd->build_for({-1, T, C});
                bwd->build_for({-1, T, C});
                const auto& fw = fwd->weights();
                const auto& bw = bwd->weights();
                REQUIRE(bi.weights().size() == fw.size() + bw.size());
                for (size_t i = 0; i < fw.size(); ++i) fw[i]->value = bi.weights()[i]->value.clone();
                for (size_t i = 0; i < bw.size(); ++i) bw[i]->value = bi.weights()[fw.size() + i]->value.clone();

                const Tensor x = wavy({N, T, C}, 0.2);
                CallContext ctx, cf, cb;
                ctx.training = cf.training = cb.training = true;
                const Tensor y = bi.call(x, ctx);
                const std::vector<double> yf = values_of(fwd->call(x, cf));
                std::vector<double> yb = values_of(bwd->call(x, cb));
                const int64_t steps = rs ? T : 1;
                if (rs) yb = flipped(yb, N, T, U);
                std::vector<double> want;
                for (int64_t r = 0; r < N * steps; ++r) {
                    for (int64_t k = 0; k < U; ++k) {
                        const double a = yf[r * U + k], b = yb[r * U + k];
                        if (mode == "concat") want.push_back(a);
                        else if (mode == "sum") want.push_back(a + b);
                        else if (mode == "mul") want.push_back(a * b);
                        else want.push_back((a + b) / 2);
                    }
                    if (mode == "concat")
                        for (int64_t k = 0; k < U; ++k) want.push_back(yb[r * U + k]);
                }
                const Shape out_shape = rs ? Shape{N, T, mode == "concat" ? 2 * U : U}
                                           : Shape{N, mode == "concat" ? 2 * U : U};
                CHECK(y.shape() == out_shape);
                CHECK(bi.compute_output_shape({-1, T, C}) == Shape(rs ? Shape{-1, T, out_shape.back()}
                                                                       : Shape{-1, out_shape.back()}));
                check_close(values_of(y), want, 1e-6);

                // Gradients: dL/dy split by the merge by hand, the backward half flipped back.
                const Tensor dy = wavy(y.shape(), 1.3);
                const std::vector<double> g = values_of(dy);
                std::vector<double> gf, gb;
                const int64_t width = y.shape().back();
                for (int64_t r = 0; r < N * steps; ++r)
                    for (int64_t k = 0; k < U; ++k) {
                        if (mode == "concat") {
                            gf.push_back(g[r * width + k]);
                            gb.push_back(g[r * width + U + k]);
                        } else {
                            const double d = g[r * U + k];
                            gf.push_back(mode == "mul" ? d * yb[r * U + k] : mode == "ave" ? d / 2 : d);
                            gb.push_back(mode == "mul" ? d * yf[r * U + k] : mode == "ave" ? d / 2 : d);
                        }
                    }
                if (rs) gb = flipped(gb, N, T, U);
                const Shape half = rs ? Shape{N, T, U} : Shape{N, U};
                const Tensor dx = bi.backward(dy, ctx);
                const std::vector<double> dxf = values_of(fwd->backward(as_tensor(gf, half), cf));
                const std::vector<double> dxb = values_of(bwd->backward(as_tensor(gb, half), cb));
                std::vector<double> want_dx(dxf.size());
                for (size_t i = 0; i < want_dx.size(); ++i) want_dx[i] = dxf[i] + dxb[i];
                check_close(values_of(dx), want_dx, 1e-5);
                for (size_t i = 0; i < fw.size(); ++i)
                    check_close(values_of(bi.weights()[i]->grad), values_of(fw[i]->grad), 1e-5);
                for (size_t i = 0; i < bw.size(); ++i)
                    check_close(values_of(bi.weights()[fw.size() + i]->grad), values_of(bw[i]->grad), 1e-5);
            }
}

TEST_CASE("Bidirectional names, weights order and config follow Keras") {
    utils::clear_session();
    layers::Bidirectional bi(layers::LSTM(3, {.return_sequences = true}), {.merge_mode = "sum"});
    CHECK(bi.name() == "bidirectional");
    CHECK(bi.forward_layer()->name() == "forward_lstm");
    CHECK(bi.backward_layer()->name() == "backward_lstm");
    bi.build_for({-1, 5, 2});
    REQUIRE(bi.weights().size() == 6);
    CHECK(bi.weights()[0] == bi.forward_layer()->weights()[0]);
    CHECK(bi.weights()[3] == bi.backward_layer()->weights()[0]);
    // Keras 3's weight paths: bidirectional/forward_lstm/lstm_cell/kernel ...
    CHECK(bi.weights()[0]->name == "forward_lstm/lstm_cell/kernel");
    CHECK(bi.weights()[5]->name == "backward_lstm/lstm_cell/bias");
    CHECK(bi.count_params() == 2 * (2 * 12 + 3 * 12 + 12));
    const auto config = bi.get_config();
    CHECK(config["merge_mode"] == "sum");
    CHECK(config["layer"]["class_name"] == "LSTM");
    CHECK(config["layer"]["config"]["name"] == "forward_lstm");
    CHECK(config["layer"]["config"]["go_backwards"] == false);
    CHECK(config["backward_layer"]["config"]["name"] == "backward_lstm");
    CHECK(config["backward_layer"]["config"]["go_backwards"] == true);
}

TEST_CASE("Bidirectional errors name what is wrong") {
    CHECK(message_of<ValueError>([] { layers::Bidirectional(layers::GRU(2), {.merge_mode = "bad"}); }) ==
          "Invalid merge mode. Received: bad. Merge mode should be one of {\"sum\", \"mul\", \"ave\", \"concat\", "
          "None}");
    CHECK(message_of<ValueError>([] { layers::Bidirectional(layers::Dense(2, {.name = "d"})); }) ==
          "`Bidirectional` needs a recurrent layer (SimpleRNN, LSTM or GRU) as `layer`. Received: d (class Dense)");
    CHECK(message_of<ValueError>([] {
              layers::Bidirectional(layers::GRU(2), {.backward_layer = make_rnn("GRU", 2, false, false)});
          }) == "Forward layer and backward layer should have different `go_backwards` value. Received: "
                "forward_layer.go_backwards False, backward_layer.go_backwards=False");
    CHECK(message_of<ValueError>([] {
              layers::Bidirectional(layers::GRU(2), {.backward_layer = make_rnn("GRU", 2, true, true)});
          }) == "Forward layer and backward layer are expected to have the same value for attribute "
                "\"return_sequences\", got \"False\" for forward layer and \"True\" for backward layer");
    CHECK(message_of<ValueError>([] {
              layers::Bidirectional(layers::LSTM(2, {.name = "f"}), {.merge_mode = "sum", .backward_layer = make_rnn("LSTM", 3, false, true, "b3"),
                                                      .name = "bi"})
                  .build_for({-1, 4, 2});
          }) == "Layer \"bi\": merge_mode \"sum\" needs the forward and backward layers to have the same number of "
                "units, got 2 (forward_f) and 3 (b3)");
    CHECK(message_of<ValueError>([] { layers::Bidirectional(layers::LSTM(2)).build_for({-1, 4}); })
              .find("expected ndim=3, found ndim=2") != std::string::npos);
}

TEST_CASE("A model with Bidirectional layers trains, saves and loads back identically") {
    utils::set_random_seed(5);
    auto model = std::make_shared<Sequential>("bi_model");
    model->add(layers::Input({6, 2}));
    model->add(layers::Bidirectional(layers::GRU(3, {.return_sequences = true}), {.merge_mode = "ave"}));
    model->add(layers::Bidirectional(layers::LSTM(2), {.backward_layer = make_rnn("LSTM", 4, false, true, "back")}));
    model->add(layers::Dense(1));
    model->compile(optimizers::Adam(0.01f), "mse");
    const Tensor x = wavy({8, 6, 2}, 0.4), y = wavy({8, 1}, 2.0);
    const double before = model->evaluate(x, y, {.verbose = 0}).loss();
    model->fit(x, y, {.batch_size = 4, .epochs = 5, .verbose = 0});
    CHECK(model->evaluate(x, y, {.verbose = 0}).loss() < before);
    CHECK(model->layers().back()->input_shape() == Shape{-1, 6});   // concat of 2 and 4 units

    const auto path = (std::filesystem::temp_directory_path() / "kerascpp_test_bidirectional.h5").string();
    model->save(path);
    auto loaded = models::load_model(path);
    REQUIRE(loaded->layers().size() == model->layers().size());
    for (size_t i = 0; i < model->layers().size(); ++i)
        CHECK(loaded->layers()[i]->get_config() == model->layers()[i]->get_config());
    CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(model->predict(x, {.verbose = 0})));
    std::filesystem::remove(path);
}
