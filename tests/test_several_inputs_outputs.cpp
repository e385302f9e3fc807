// Ops of several outputs, layers of several inputs written with ops, models of several inputs and
// outputs called on a batch, and a fused RNN's (y, h, c) as one recorded op: each gradient against
// central differences, each training step against fit()'s.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "keras/keras.hpp"
#include "test_helpers.hpp"

#include "../docs/custom_layers/scaled_dot_attention.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

// d objective / d p[i] by a central difference, p[i] restored after.
double central_difference(const std::function<double()>& objective, float* p, double h = 1e-2) {
    const float saved = *p;
    *p = saved + static_cast<float>(h);
    const double up = objective();
    *p = saved - static_cast<float>(h);
    const double down = objective();
    *p = saved;
    return (up - down) / (2 * h);
}

// Every entry of `grad` against central differences of `objective` in the entries of `values`.
void check_against_differences(const Tensor& grad, Tensor& values, const std::function<double()>& objective,
                               double tolerance = 3e-3) {
    REQUIRE(grad.defined());
    REQUIRE(grad.shape() == values.shape());
    for (int64_t i = 0; i < values.numel(); ++i) {
        INFO("element " << i);
        CHECK(grad.item(i) ==
              doctest::Approx(central_difference(objective, values.data<float>() + i)).epsilon(tolerance).scale(1.0));
    }
}

// Fixed weights for a scalar objective sum(y * w): every output element feeds it.
Tensor projection(const Shape& shape, double phase) {
    return wavy(shape, 0.37, phase, 1.0);
}

}  // namespace

TEST_CASE("custom_gradient with several outputs: the backward gets one gradient per output, undefined where unused") {
    Tensor a = wavy({2, 3}, 0.3, 0.1, 1.0), b = wavy({2, 3}, 0.5, 0.7, 1.0);
    const Tensor wy = projection({2, 3}, 0.2), wz = projection({2, 3}, 1.3);
    int backward_calls = 0;
    bool z_gradient_seen = false;
    // y = a * b, z = a + b, with the backward written by hand.
    auto product_and_sum = [&](const Tensor& x0, const Tensor& x1) {
        return custom_gradient("product_and_sum", {x0, x1}, [&](const std::vector<Tensor>& in) {
            const Tensor p = in[0], q = in[1];
            autodiff::MultiBackwardFn backward = [&, p, q](const std::vector<Tensor>& dys) {
                ++backward_calls;
                z_gradient_seen = dys.at(1).defined();
                Tensor dp = ops::multiply(dys.at(0), q), dq = ops::multiply(dys.at(0), p);
                if (dys[1].defined()) dp = ops::add(dp, dys[1]), dq = ops::add(dq, dys[1]);
                return std::vector<Tensor>{dp, dq};
            };
            return std::pair{std::vector<Tensor>{ops::multiply(p, q), ops::add(p, q)}, backward};
        });
    };
    auto objective = [&] {
        auto yz = product_and_sum(a, b);
        return ops::add(ops::sum(ops::multiply(yz[0], wy)), ops::sum(ops::square(ops::multiply(yz[1], wz))));
    };
    std::vector<Tensor> g;
    {
        GradientTape tape;
        Tensor ta = a, tb = b;
        tape.watch(ta);
        tape.watch(tb);
        auto yz = product_and_sum(ta, tb);
        Tensor loss = ops::add(ops::sum(ops::multiply(yz[0], wy)), ops::sum(ops::square(ops::multiply(yz[1], wz))));
        g = tape.gradient(loss, std::vector<Tensor>{ta, tb});
    }
    CHECK(backward_calls == 1);   // one op: its backward runs once for both outputs
    CHECK(z_gradient_seen);
    auto value = [&] { return objective().item(); };
    check_against_differences(g[0], a, value);
    check_against_differences(g[1], b, value);

    // Only y used: z's gradient reaches the backward undefined.
    {
        GradientTape tape;
        Tensor ta = a, tb = b;
        tape.watch(ta);
        tape.watch(tb);
        Tensor loss = ops::sum(ops::multiply(product_and_sum(ta, tb)[0], wy));
        const Tensor ga = tape.gradient(loss, std::vector<Tensor>{ta})[0];
        CHECK_FALSE(z_gradient_seen);
        const auto gv = values_of(ga), bv = values_of(b), wv = values_of(wy);
        for (size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == doctest::Approx(bv[i] * wv[i]));
    }

    // A backward that returns the wrong count is named.
    {
        GradientTape tape;
        Tensor ta = a;
        tape.watch(ta);
        auto out = custom_gradient("bad_op", {ta}, [](const std::vector<Tensor>& in) {
            autodiff::MultiBackwardFn backward = [](const std::vector<Tensor>&) { return std::vector<Tensor>{}; };
            return std::pair{std::vector<Tensor>{in[0], in[0]}, backward};
        });
        CHECK(message_of([&] { tape.gradient(ops::sum(out[1]), ta); }).find("bad_op") != std::string::npos);
    }
}

TEST_CASE("a layer of two inputs written with ops: shape by trial, gradients per input, trains in a functional model") {
    utils::set_random_seed(5);
    auto attention = std::make_shared<ScaledDotAttention>();
    Tensor query = wavy({2, 3, 4}, 0.3, 0.2, 0.8), value = wavy({2, 5, 4}, 0.45, 0.9, 0.8);
    const Tensor w = projection({2, 3, 4}, 0.4);

    // Eager: built on first use, output shape from the query, recorded on a tape.
    std::vector<Tensor> g;
    Tensor g_scale;
    {
        GradientTape tape({.persistent = true});
        Tensor q = query, v = value;
        tape.watch(q);
        tape.watch(v);
        Tensor loss = ops::sum(ops::multiply((*attention)(std::vector<Tensor>{q, v}), w));
        g = tape.gradient(loss, std::vector<Tensor>{q, v});
        g_scale = tape.gradient(loss, attention->trainable_weights())[0];
    }
    auto objective = [&] { return ops::sum(ops::multiply((*attention)(std::vector<Tensor>{query, value}), w)).item(); };
    check_against_differences(g[0], query, objective);
    check_against_differences(g[1], value, objective);
    check_against_differences(g_scale, attention->scale->value, objective);

    // Functional: the output shape comes from a trial run with None axes found.
    auto q_in = Input({-1, 4}), v_in = Input({-1, 4});
    auto attended = (*attention)(std::vector<KerasTensor>{q_in, v_in});
    CHECK(attended.shape == Shape{-1, -1, 4});
    auto out = share(layers::Dense(1))->operator()(share(layers::GlobalMaxPooling1D())->operator()(attended));
    Model model({q_in, v_in}, {out});
    model.compile(optimizers::Adam(0.05f), "mse");
    const Tensor target = wavy({2, 1}, 0.8, 0.1, 0.5);
    const double before = model.evaluate({query, value}, {target}, {.verbose = 0}).loss();
    const float scale_before = attention->scale->value.item();
    model.fit({query, value}, {target}, {.batch_size = 2, .epochs = 30, .verbose = 0});
    CHECK(model.evaluate({query, value}, {target}, {.verbose = 0}).loss() < 0.2 * before);
    CHECK(attention->scale->value.item() != scale_before);   // the automatic backward reached its weight

    // The model's backward sends each input its own gradient: fit's step equals a tape step.
    // (Checked through the layer's recorded_backward against the eager tape gradient.)
    CallContext ctx{.training = true};
    const Tensor y = attention->call_multi({query, value}, ctx);
    const auto grads = attention->backward_multi(w, ctx);
    REQUIRE(grads.size() == 2);
    auto objective2 = [&] { return ops::sum(ops::multiply((*attention)(std::vector<Tensor>{query, value}), w)).item(); };
    check_against_differences(grads[0], query, objective2);
    check_against_differences(grads[1], value, objective2);
    CHECK(y.shape() == Shape{2, 3, 4});

    // A layer of one input given two keeps Keras's message.
    auto dense = share(layers::Dense(2));
    CHECK(message_of([&] { (*dense)(std::vector<KerasTensor>{q_in, v_in}); }) ==
          "Layer \"" + dense->name() + "\" expects 1 input(s), but it received 2 input tensors.");
    CHECK_FALSE(dense->built());
}

TEST_CASE("a model of two inputs and two outputs called on a batch: call_all under a tape takes fit()'s step") {
    auto make = [] {
        utils::set_random_seed(31);
        auto a = Input({3}), b = Input({2});
        auto joined = share(layers::Concatenate())->operator()(std::vector<KerasTensor>{a, b});
        auto hidden = share(layers::Dense(4, "tanh"))->operator()(joined);
        auto out1 = share(layers::Dense(1, {.name = "first"}))->operator()(hidden);
        auto out2 = share(layers::Dense(2, {.name = "second"}))->operator()(hidden);
        auto m = std::make_shared<Model>(std::vector<KerasTensor>{a, b}, std::vector<KerasTensor>{out1, out2});
        m->compile(optimizers::SGD(0.1f), "mse");
        return m;
    };
    const Tensor xa = wavy({6, 3}, 0.3, 0.2, 1.0), xb = wavy({6, 2}, 0.7, 0.5, 1.0);
    const Tensor y1 = wavy({6, 1}, 0.2, 0.9, 0.5), y2 = wavy({6, 2}, 0.6, 0.1, 0.5);
    auto by_fit = make(), by_tape = make();
    by_fit->fit({xa, xb}, {y1, y2}, {.batch_size = 6, .epochs = 1, .shuffle = false, .verbose = 0});
    optimizers::SGD sgd(0.1f);
    {
        GradientTape tape;
        auto outs = by_tape->call_all({xa, xb}, {.training = true});
        REQUIRE(outs.size() == 2);
        Tensor loss = ops::add(ops::mean(ops::square(ops::subtract(y1, outs[0]))),
                               ops::mean(ops::square(ops::subtract(y2, outs[1]))));
        sgd.apply(tape.gradient(loss, by_tape->trainable_weights()), by_tape->trainable_weights());
    }
    const auto a = by_fit->get_weights(), b = by_tape->get_weights();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
    }
    // Only the second output in the loss: the first output's head gets no gradient.
    {
        GradientTape tape;
        auto outs = by_tape->call_all({xa, xb});
        const auto grads = tape.gradient(ops::sum(outs[1]), by_tape->trainable_weights());
        int undefined = 0;
        for (const auto& g : grads) undefined += !g.defined() || ops::max(ops::abs(g)).item() == 0.0f;
        CHECK(undefined == 2);   // first's kernel and bias
    }
    CHECK(message_of([&] { (*by_tape)(std::vector<Tensor>{xa, xb}); }).find("call_all") != std::string::npos);
}

TEST_CASE("a fused LSTM's y, h, c as one recorded op: gradients reach x, h0, c0 and the weights") {
    utils::set_random_seed(8);
    layers::LSTM lstm(3, {.return_sequences = true, .return_state = true});
    Tensor x = wavy({2, 4, 2}, 0.3, 0.1, 1.0), h0 = wavy({2, 3}, 0.5, 0.4, 0.5), c0 = wavy({2, 3}, 0.7, 0.8, 0.5);
    const Tensor wy = projection({2, 4, 3}, 0.3), wh = projection({2, 3}, 0.9), wc = projection({2, 3}, 1.7);
    auto loss_of = [&](const std::vector<Tensor>& out) {
        return ops::add(ops::add(ops::sum(ops::multiply(out[0], wy)), ops::sum(ops::multiply(out[1], wh))),
                        ops::sum(ops::multiply(out[2], wc)));
    };
    std::vector<Tensor> g, gw;
    {
        GradientTape tape;
        Tensor tx = x, th = h0, tc = c0;
        tape.watch(tx);
        tape.watch(th);
        tape.watch(tc);
        auto out = lstm.call_all(tx, {th, tc}, true);
        REQUIRE(out.size() == 3);
        g = tape.gradient(loss_of(out), std::vector<Tensor>{tx, th, tc});
    }
    {
        GradientTape tape({.persistent = true});
        Tensor loss = loss_of(lstm.call_all(x, {h0, c0}, true));
        gw = tape.gradient(loss, lstm.trainable_weights());
        // The fused primitive's forward serves one backward: a second request says so.
        CHECK(message_of([&] { tape.gradient(loss, lstm.trainable_weights()); })
                  .find("a fused RNN forward serves one backward") != std::string::npos);
    }
    CHECK(lstm.implementation_note().find("oneDNN") != std::string::npos);   // the fused primitive ran
    auto objective = [&] { return loss_of(lstm.call_all(x, {h0, c0})).item(); };
    check_against_differences(g[0], x, objective);
    check_against_differences(g[1], h0, objective);
    check_against_differences(g[2], c0, objective);
    for (size_t k = 0; k < gw.size(); ++k) {
        INFO("weight " << lstm.trainable_weights()[k]->name);
        check_against_differences(gw[k], lstm.trainable_weights()[k]->value, objective);
    }
}
