// Layers, losses and cells written with ops (the examples of docs/custom_layers.md, compiled here from
// the same files the page quotes): each trained, each one's gradients against finite differences,
// and ops-written layers against the built-in layers that compute the same thing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "read_text.hpp"
#include "keras/keras.hpp"
#include "test_helpers.hpp"

#include "../docs/custom_layers/attention_pooling.hpp"
#include "../docs/custom_layers/huber_loss.hpp"
#include "../docs/custom_layers/minimal_rnn_cell.hpp"
#include "../docs/custom_layers/my_dense.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

using test_helpers::read_text;

namespace {

// sum(layer(x) * fixed weights): a scalar that every output element feeds.
Tensor projected_output(Layer& layer, const Tensor& x, bool training = false) {
    CallContext ctx{.training = training};
    Tensor y = layer.call(x, ctx);
    std::vector<float> w(static_cast<size_t>(y.numel()));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::cos(0.37 * double(i) + 0.1));
    return ops::sum(ops::multiply(y, Tensor(w, y.shape())));
}

// The layer's automatic backward (through the model's entry points, call(x, ctx) + backward(dy, ctx))
// against central differences of projected_output, for every weight and for the input.
void check_layer_gradients(Layer& layer, const Tensor& x, double tolerance = 2e-3) {
    layer.build_for(x.shape());
    for (const auto& w : layer.weights()) w->grad = Tensor{};
    CallContext ctx{.training = true};
    Tensor y = layer.call(x, ctx);
    std::vector<float> proj(static_cast<size_t>(y.numel()));
    for (size_t i = 0; i < proj.size(); ++i) proj[i] = static_cast<float>(std::cos(0.37 * double(i) + 0.1));
    const Tensor dx = layer.backward(Tensor(proj, y.shape()), ctx);
    const double h = 1e-2;
    auto numeric = [&](float* p) {
        const float saved = *p;
        *p = saved + static_cast<float>(h);
        const double up = projected_output(layer, x).item();
        *p = saved - static_cast<float>(h);
        const double down = projected_output(layer, x).item();
        *p = saved;
        return (up - down) / (2 * h);
    };
    for (const auto& w : layer.weights()) {
        REQUIRE(w->grad.defined());
        for (int64_t i = 0; i < w->value.numel(); ++i) {
            INFO("weight " << w->name << " element " << i);
            CHECK(w->grad.item(i) == doctest::Approx(numeric(w->value.data<float>() + i)).epsilon(tolerance).scale(1.0));
        }
    }
    Tensor xc = x.clone();
    for (int64_t i = 0; i < x.numel(); ++i) {
        INFO("input element " << i);
        const float saved = xc.data<float>()[i];
        xc.data<float>()[i] = saved + static_cast<float>(h);
        const double up = projected_output(layer, xc).item();
        xc.data<float>()[i] = saved - static_cast<float>(h);
        const double down = projected_output(layer, xc).item();
        xc.data<float>()[i] = saved;
        CHECK(dx.item(i) == doctest::Approx((up - down) / (2 * h)).epsilon(tolerance).scale(1.0));
    }
}

// A toy sequence task: the label is whether the first feature's sum over the steps is positive.
std::pair<Tensor, Tensor> sequence_task(int64_t n, int64_t steps, int64_t features) {
    Tensor x = wavy({n, steps, features}, 0.3, 0.77, 1.0);
    Tensor y({n, 1}, DType::float32);
    for (int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (int64_t t = 0; t < steps; ++t) s += x.data<float>()[(i * steps + t) * features];
        y.data<float>()[i] = s > 0 ? 1.0f : 0.0f;
    }
    return {x, y};
}

}  // namespace

TEST_CASE("docs/custom_layers.md quotes the example files this test compiles, verbatim") {
    const std::string docs = std::string(KERASCPP_TESTS_DIR) + "/../docs/";
    const std::string page = read_text(docs + "custom_layers.md");
    for (const char* file : {"my_dense.hpp", "attention_pooling.hpp", "scaled_dot_attention.hpp", "huber_loss.hpp",
                             "minimal_rnn_cell.hpp"}) {
        INFO(file);
        CHECK(page.find(read_text(docs + "custom_layers/" + file)) != std::string::npos);
    }
}

TEST_CASE("MyDense: gradients against finite differences; trains to the same weights as the built-in Dense") {
    utils::set_random_seed(3);
    MyDense probe(3, "relu");
    check_layer_gradients(probe, wavy({4, 5}, 0.2, 1.1, 1.0));

    const Tensor x = wavy({64, 5}, 0.1, 0.53, 1.0);
    Tensor y({64, 1}, DType::float32);
    for (int64_t i = 0; i < 64; ++i) y.data<float>()[i] = x.data<float>()[i * 5] + x.data<float>()[i * 5 + 2] > 0 ? 1.0f : 0.0f;

    utils::set_random_seed(7);
    Sequential mine;
    mine.add(layers::Input({5}));
    mine.add(std::make_shared<MyDense>(4, "relu"));
    mine.add(layers::Dense(1, "sigmoid"));
    Sequential builtin;
    builtin.add(layers::Input({5}));
    builtin.add(layers::Dense(4, "relu"));
    builtin.add(layers::Dense(1, "sigmoid"));
    builtin.set_weights(mine.get_weights());
    const auto initial = mine.get_weights();
    for (Model* m : {static_cast<Model*>(&mine), static_cast<Model*>(&builtin)}) {
        m->compile(optimizers::SGD(0.1f), "binary_crossentropy", {"accuracy"});
        m->fit(x, y, {.batch_size = 16, .epochs = 5, .shuffle = false, .verbose = 0});
    }
    const auto a = mine.get_weights(), b = builtin.get_weights();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
    }
    // The weights moved (the comparison above is not between two untouched models).
    CHECK(values_of(a[0]) != values_of(initial[0]));
}

TEST_CASE("AttentionPooling over SimpleRNN outputs: gradients and training") {
    utils::set_random_seed(11);
    AttentionPooling probe(3);
    check_layer_gradients(probe, wavy({2, 4, 3}, 0.4, 0.9, 1.0));

    auto [x, y] = sequence_task(128, 6, 2);
    Sequential model;
    model.add(layers::Input({6, 2}));
    model.add(layers::SimpleRNN(8, {.return_sequences = true}));
    model.add(std::make_shared<AttentionPooling>(4));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.02f), "binary_crossentropy", {"accuracy"});
    const auto before = model.evaluate(x, y, {.verbose = 0});
    model.fit(x, y, {.batch_size = 32, .epochs = 15, .verbose = 0});
    const auto after = model.evaluate(x, y, {.verbose = 0});
    CHECK(after.loss() < 0.7 * before.loss());
    CHECK(after["accuracy"] > 0.85);
}

TEST_CASE("a custom loss: LossFunctionWrapper's gradient against finite differences, and training with it") {
    losses::LossFunctionWrapper loss(huber, "huber");
    const Tensor y_true = wavy({4, 3}, 0.0, 1.3, 2.0);
    Tensor y_pred = wavy({4, 3}, 0.5, 0.7, 2.0);
    Tensor grad;
    const double value = loss.compute(y_true, y_pred, &grad);
    // Huber by hand in double: mean over the last axis, then over the batch.
    double want = 0;
    const auto t = values_of(y_true), p = values_of(y_pred);
    for (size_t i = 0; i < t.size(); ++i) {
        const double e = std::fabs(t[i] - p[i]);
        want += (e <= 1 ? 0.5 * e * e : e - 0.5) / double(t.size());
    }
    CHECK(value == doctest::Approx(want).epsilon(1e-6));
    for (int64_t i = 0; i < y_pred.numel(); ++i) {
        float* q = y_pred.data<float>() + i;
        const float saved = *q;
        *q = saved + 1e-3f;
        const double up = loss.compute(y_true, y_pred, nullptr);
        *q = saved - 1e-3f;
        const double down = loss.compute(y_true, y_pred, nullptr);
        *q = saved;
        CHECK(grad.item(i) == doctest::Approx((up - down) / 2e-3).epsilon(2e-3).scale(1.0));
    }

    utils::set_random_seed(5);
    const Tensor x = wavy({96, 3}, 0.2, 0.61, 1.0);
    Tensor target({96, 1}, DType::float32);
    for (int64_t i = 0; i < 96; ++i)
        target.data<float>()[i] = 2.0f * x.data<float>()[i * 3] - x.data<float>()[i * 3 + 1] + 0.5f;
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(1));
    model.compile(optimizers::Adam(0.05f), losses::LossFunctionWrapper(huber, "huber"));
    const double before = model.evaluate(x, target, {.verbose = 0}).loss();
    auto history = model.fit(x, target, {.batch_size = 16, .epochs = 30, .verbose = 0});
    CHECK(history["loss"].size() == 30);
    CHECK(model.evaluate(x, target, {.verbose = 0}).loss() < 0.05 * before);
}

TEST_CASE("RNN(MinimalRNNCell) computes what the built-in SimpleRNN computes, masks and go_backwards included") {
    utils::set_random_seed(2);
    const Tensor x = wavy({3, 5, 2}, 0.1, 0.83, 1.0);
    Tensor mask = Tensor::full({3, 5}, 1.0f);
    mask.data<float>()[0 * 5 + 0] = 0;   // left padding, a hole, right padding
    mask.data<float>()[1 * 5 + 2] = 0;
    mask.data<float>()[2 * 5 + 4] = 0;
    for (bool go_backwards : {false, true})
        for (bool sequences : {false, true})
            for (bool masked : {false, true}) {
                INFO("go_backwards " << go_backwards << " return_sequences " << sequences << " masked " << masked);
                layers::RNN mine(std::make_shared<MinimalRNNCell>(4),
                                 {.return_sequences = sequences, .go_backwards = go_backwards});
                layers::SimpleRNN builtin(4, {.use_bias = false, .return_sequences = sequences, .go_backwards = go_backwards});
                mine.build_for(x.shape());
                builtin.build_for(x.shape());
                for (size_t k = 0; k < 2; ++k) builtin.weights()[k]->value.copy_from(mine.weights()[k]->value);
                CallContext a{.training = true, .mask = masked ? mask : Tensor{}};
                CallContext b{.training = true, .mask = masked ? mask : Tensor{}};
                const Tensor ya = mine.call(x, a), yb = builtin.call(x, b);
                REQUIRE(ya.shape() == yb.shape());
                const auto va = values_of(ya), vb = values_of(yb);
                for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
                const Tensor dy = wavy(ya.shape(), 0.7, 1.9, 1.0);
                const auto dxa = values_of(mine.backward(dy, a)), dxb = values_of(builtin.backward(dy, b));
                for (size_t i = 0; i < dxa.size(); ++i) CHECK(dxa[i] == doctest::Approx(dxb[i]).epsilon(1e-5).scale(1.0));
                for (size_t k = 0; k < 2; ++k) {
                    const auto ga = values_of(mine.weights()[k]->grad), gb = values_of(builtin.weights()[k]->grad);
                    for (size_t i = 0; i < ga.size(); ++i) CHECK(ga[i] == doctest::Approx(gb[i]).epsilon(1e-5).scale(1.0));
                }
            }
}

TEST_CASE("RNN(MinimalRNNCell): gradients against finite differences, training, return_state and stateful") {
    utils::set_random_seed(4);
    layers::RNN probe(std::make_shared<MinimalRNNCell>(3), {.return_sequences = true});
    check_layer_gradients(probe, wavy({2, 4, 2}, 0.3, 1.2, 1.0));

    auto [x, y] = sequence_task(128, 6, 2);
    Sequential model;
    model.add(layers::Input({6, 2}));
    model.add(layers::RNN(std::make_shared<MinimalRNNCell>(8)));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.02f), "binary_crossentropy", {"accuracy"});
    const double before = model.evaluate(x, y, {.verbose = 0}).loss();
    model.fit(x, y, {.batch_size = 32, .epochs = 15, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).loss() < 0.7 * before);

    layers::RNN with_state(std::make_shared<MinimalRNNCell>(3), {.return_state = true});
    CallContext ctx;
    const Tensor seq = wavy({2, 4, 2}, 0.1, 0.5, 1.0);
    with_state.build_for(seq.shape());
    const auto outs = with_state.call_outputs(seq, {}, ctx);
    REQUIRE(outs.size() == 2);
    CHECK(values_of(outs[0]) == values_of(outs[1]));   // the output is the state for this cell
    // Stateful: two halves of a sequence give the whole sequence's final state.
    layers::RNN stateful(std::make_shared<MinimalRNNCell>(3), {.stateful = true});
    layers::RNN whole(std::make_shared<MinimalRNNCell>(3));
    stateful.build_for({2, 2, 2});
    whole.build_for({2, 4, 2});
    for (size_t k = 0; k < 2; ++k) whole.weights()[k]->value.copy_from(stateful.weights()[k]->value);
    CallContext c1, c2, c3;
    stateful.call(ops::slice(seq, {0, 0, 0}, {2, 2, 2}), c1);
    const auto split = values_of(stateful.call(ops::slice(seq, {0, 2, 0}, {2, 2, 2}), c2));
    const auto full = values_of(whole.call(seq, c3));
    for (size_t i = 0; i < full.size(); ++i) CHECK(split[i] == doctest::Approx(full[i]).epsilon(1e-6));
    stateful.reset_states();
    CHECK(stateful.states().empty());
}

TEST_CASE("Lambda: a function as a layer, output shape found by running it, automatic backward") {
    layers::Lambda halve([](const Tensor& t) { return ops::multiply(ops::sum(t, -1, true), 0.5f); });
    CHECK(halve.build_for({-1, 7, 3}) == Shape{-1, 7, 1});
    layers::Lambda fixed([](const Tensor& t) { return ops::reshape(t, {t.dim(0), -1}); }, {.output_shape = Shape{21}});
    CHECK(fixed.build_for({-1, 7, 3}) == Shape{-1, 21});
    check_layer_gradients(halve, wavy({2, 3, 3}, 0.2, 0.4, 1.0));
    CHECK(halve.get_config()["function"] == "<C++ function: not serializable>");

    Sequential model;
    model.add(layers::Input({4}));
    model.add(layers::Lambda([](const Tensor& t) { return ops::square(t); }));
    model.add(layers::Dense(1));
    model.compile("sgd", "mse");
    const Tensor x = wavy({32, 4}, 0.1, 0.3, 1.0);
    Tensor y = ops::sum(ops::square(x), -1, true);
    const double before = model.evaluate(x, y, {.verbose = 0}).loss();
    model.fit(x, y, {.batch_size = 8, .epochs = 20, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).loss() < 0.2 * before);
}

TEST_CASE("a custom training loop with GradientTape takes the same step as fit()") {
    const Tensor x = wavy({16, 3}, 0.2, 0.7, 1.0);
    const Tensor y = wavy({16, 2}, 0.9, 0.4, 1.0);
    auto make = [] {
        utils::set_random_seed(9);
        auto m = std::make_shared<Sequential>();
        m->add(layers::Input({3}));
        m->add(layers::Dense(4, "tanh"));
        m->add(std::make_shared<MyDense>(2));
        m->compile(optimizers::SGD(0.1f), "mse");
        return m;
    };
    auto by_fit = make(), by_tape = make();
    by_fit->fit(x, y, {.batch_size = 16, .epochs = 1, .shuffle = false, .verbose = 0});

    optimizers::SGD sgd(0.1f);
    {
        GradientTape tape;
        Tensor pred = (*by_tape)(x, {.training = true});
        Tensor loss = ops::mean(ops::square(ops::subtract(y, pred)));
        auto grads = tape.gradient(loss, by_tape->trainable_weights());
        for (const auto& g : grads) REQUIRE(g.defined());
        sgd.apply(grads, by_tape->trainable_weights());
    }
    const auto a = by_fit->get_weights(), b = by_tape->get_weights();
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("clear errors for layers that forget a piece") {
    struct NoCall : Layer {
        NoCall() : Layer("NoCall", "") {}
    } no_call;
    CHECK(message_of<NotImplementedError>([&] {
              CallContext ctx;
              no_call.call(ops::ones({2, 2}), ctx);
          }).find("does not have a `call()` method implemented") != std::string::npos);
    layers::Lambda f([](const Tensor& t) { return t; });
    CallContext ctx;
    CHECK(message_of<RuntimeError>([&] { f.backward(ops::ones({1}), ctx); }).find("no recorded call") != std::string::npos);
}

TEST_CASE("a custom metric and a registered custom loss: by name in compile(), and through a saved model") {
    metrics::register_metric("abs_error", [] {
        return std::make_shared<metrics::MeanMetricWrapper>(
            [](const Tensor& y, const Tensor& p) { return ops::mean(ops::abs(ops::subtract(y, p)), -1); }, "abs_error");
    });
    losses::register_loss("huber", [] { return std::make_shared<losses::LossFunctionWrapper>(huber, "huber"); });
    utils::set_random_seed(8);
    const Tensor x = wavy({40, 3}, 0.2, 0.61, 1.0);
    const Tensor y = wavy({40, 2}, 0.5, 0.37, 2.0);
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(2));
    model.compile("adam", "huber", {"abs_error", "mae"});
    auto history = model.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
    // The ops-written metric agrees with the built-in mean absolute error, epoch by epoch.
    for (size_t e = 0; e < 2; ++e) CHECK(history["abs_error"][e] == doctest::Approx(history["mae"][e]).epsilon(1e-6));
    const auto result = model.evaluate(x, y, {.verbose = 0});
    CHECK(result["abs_error"] == doctest::Approx(result["mae"]).epsilon(1e-6));

    const std::string path = "test_custom_loss_model.h5";
    model.save(path);
    auto loaded = models::load_model(path);   // the training config names "huber": resolved by the registry
    CHECK(loaded->evaluate(x, y, {.verbose = 0}).loss() == doctest::Approx(result.loss()).epsilon(1e-6));
    std::remove(path.c_str());
    CHECK(message_of<ValueError>([] { metrics::get("no_such_metric", "mse", 1); }) ==
          "Could not interpret metric identifier: no_such_metric");
}

TEST_CASE("GradientTape through fused layers: an Embedding + LSTM model's tape step equals fit()'s step") {
    Tensor ids({12, 7}, DType::int32);
    for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int32_t>()[i] = static_cast<int32_t>((i * 7 + 3) % 20);
    const Tensor y = wavy({12, 1}, 0.4, 0.9, 0.5);
    auto make = [] {
        utils::set_random_seed(21);
        auto m = std::make_shared<Sequential>();
        m->add(layers::Input({7}));
        m->add(layers::Embedding(20, 4));
        m->add(layers::LSTM(5, {.return_sequences = true}));
        m->add(std::make_shared<AttentionPooling>(3));   // an ops-written layer between fused ones
        m->add(layers::Dense(1));
        m->compile(optimizers::SGD(0.2f), "mse");
        return m;
    };
    auto by_fit = make(), by_tape = make();
    by_fit->fit(ids, y, {.batch_size = 12, .epochs = 1, .shuffle = false, .verbose = 0});
    optimizers::SGD sgd(0.2f);
    {
        GradientTape tape;
        Tensor loss = ops::mean(ops::square(ops::subtract(y, (*by_tape)(ids, {.training = true}))));
        sgd.apply(tape.gradient(loss, by_tape->trainable_weights()), by_tape->trainable_weights());
    }
    const auto a = by_fit->get_weights(), b = by_tape->get_weights();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("train_step overridden with a GradientTape: fit() runs it, and it takes the default step") {
    // Keras's "customizing what happens in fit()": the loss computed with ops under a tape.
    struct TapeModel : Sequential {
        Logs train_step(const Batch& batch) override {
            GradientTape tape;
            Tensor pred = (*this)(batch.x[0], {.training = true});
            Tensor loss = ops::mean(ops::square(ops::subtract(batch.y[0].to(pred.device()), pred)));
            optimizer().apply(tape.gradient(loss, trainable_weights()), trainable_weights());
            Logs logs;
            logs.set("loss", loss.to(Device::cpu()).item());
            ++steps;
            return logs;
        }
        int steps = 0;
    };
    const Tensor x = wavy({24, 3}, 0.2, 0.7, 1.0);
    const Tensor y = wavy({24, 2}, 0.9, 0.4, 1.0);
    auto build = [](Sequential& m) {
        utils::set_random_seed(13);
        m.add(layers::Input({3}));
        m.add(layers::Dense(4, "tanh"));
        m.add(std::make_shared<MyDense>(2));
        m.compile(optimizers::SGD(0.1f), "mse");
    };
    TapeModel custom;
    Sequential plain;
    build(custom);
    build(plain);
    auto history = custom.fit(x, y, {.batch_size = 8, .epochs = 2, .shuffle = false, .verbose = 0});
    plain.fit(x, y, {.batch_size = 8, .epochs = 2, .shuffle = false, .verbose = 0});
    CHECK(custom.steps == 6);
    CHECK(history["loss"].size() == 2);
    const auto a = custom.get_weights(), b = plain.get_weights();
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("layer(x) on a batch: built on first use, recorded on a tape for fused and ops-written layers alike") {
    utils::set_random_seed(17);
    layers::Dense dense(3);
    MyDense mine(2);
    const Tensor x = wavy({4, 5}, 0.3, 0.9, 1.0);
    CHECK(dense(x).shape() == Shape{4, 3});
    auto objective = [&] { return ops::sum(ops::square(mine(ops::tanh(dense(x, true)), true))); };
    std::vector<Tensor> g_dense, g_mine;
    {
        GradientTape tape({.persistent = true});
        Tensor loss = objective();
        g_dense = tape.gradient(loss, dense.trainable_weights());
        g_mine = tape.gradient(loss, mine.trainable_weights());
    }
    REQUIRE(g_dense.size() == 2);
    REQUIRE(g_mine.size() == 2);
    // Variable::grad is left as it was (the tape hands the gradients back instead).
    CHECK_FALSE(dense.weights()[0]->grad.defined());
    // Each weight's gradient against a central difference of the eager objective.
    for (auto [w, g] : {std::pair{dense.weights()[0], g_dense[0]}, std::pair{dense.weights()[1], g_dense[1]},
                        std::pair{mine.weights()[0], g_mine[0]}}) {
        for (int64_t i = 0; i < w->value.numel(); i += 3) {
            float* p = w->value.data<float>() + i;
            const float saved = *p;
            *p = saved + 1e-2f;
            const double up = objective().item();
            *p = saved - 1e-2f;
            const double down = objective().item();
            *p = saved;
            CHECK(g.item(i) == doctest::Approx((up - down) / 2e-2).epsilon(5e-3).scale(1.0));
        }
    }
}

TEST_CASE("an ops-written layer's output shape is found by trial runs once per input shape") {
    int calls = 0;
    layers::Lambda counted([&calls](const Tensor& t) {
        ++calls;
        return ops::sum(t, -1);
    });
    Layer& layer = counted;
    CHECK(layer.compute_output_shape({-1, 4, 3}) == Shape{-1, 4});
    CHECK(calls == 2);   // None axis: two trial sizes
    CHECK(layer.compute_output_shape({-1, 4, 3}) == Shape{-1, 4});
    CHECK(layer.compute_output_shape({2, 4, 3}) == Shape{2, 4});
    CHECK(calls == 3);   // the repeated shape ran nothing; a new, fully known one ran once
}

TEST_CASE("bad input to the new entry points gets a message naming what is wrong") {
    // RNN(cell): initial_state of the wrong count / shape.
    layers::RNN rnn(std::make_shared<MinimalRNNCell>(3), {.name = "my_rnn"});
    CHECK(message_of<ValueError>([&] { rnn.check_initial_state({-1, 4, 2}, {{-1, 3}, {-1, 3}}); }) ==
          "Layer \"my_rnn\" expects 1 state(s) in `initial_state`, but it received 2");
    CHECK(message_of<ValueError>([&] { rnn.check_initial_state({-1, 4, 2}, {{-1, 5}}); }) ==
          "Layer \"my_rnn\": initial state 0 has shape (None, 5), expected (batch, 3)");
    CHECK(message_of<ValueError>([] { layers::RNN(std::shared_ptr<layers::AbstractRNNCell>{}); }) == "RNN: the cell is null");
    // A loss returning one value per sample while the output's mask asks for one per step.
    losses::LossFunctionWrapper per_sample([](const Tensor& y, const Tensor& p) { return ops::mean(ops::subtract(y, p), {1, 2}); },
                                           "per_sample");
    const Tensor y = wavy({2, 3, 4}, 0.1, 1.0, 1.0);
    CHECK(message_of<ValueError>([&] { per_sample.compute_masked(y, y, Tensor::full({2, 3}, 1.0f), nullptr); })
              .find("returned 2 values of shape (2,), but the output's mask needs one per step (6 of them)") !=
          std::string::npos);
    // A metric returning integers; a null variable given to an op; an unwatched tape source.
    metrics::MeanMetricWrapper ints([](const Tensor&, const Tensor& p) { return ops::cast(p, DType::int32); }, "ints");
    CHECK(message_of<ValueError>([&] { ints.update_state(y, y); }) ==
          "Metric \"ints\" must return a float32 tensor of per-sample (or per-step) values");
    CHECK(message_of<ValueError>([] { ops::matmul(ops::ones({2, 2}), VariablePtr{}); }) == "ops: a variable argument is null");
    GradientTape tape;
    const Tensor plain = ops::ones({2});
    CHECK(message_of<ValueError>([&] { tape.gradient(ops::sum(plain), plain); }).find("source 0 was not watched") !=
          std::string::npos);
    CHECK(message_of<ValueError>([] { metrics::register_metric("", nullptr); }) == "register_metric: needs a name and a factory");
}

TEST_CASE("a built-in loss called as a function (Keras's loss_fn(y_true, y_pred)): one op with its own gradient") {
    const Tensor y = wavy({6, 2}, 0.3, 0.8, 1.0);
    Tensor labels({6, 2}, DType::float32);
    for (int64_t i = 0; i < labels.numel(); ++i) labels.data<float>()[i] = y.data<float>()[i] > 0 ? 1.0f : 0.0f;
    Tensor logits = wavy({6, 2}, 0.9, 0.4, 2.0);
    const losses::BinaryCrossentropy bce({.from_logits = true});
    Tensor expected_grad;
    const double expected = bce.compute(labels, logits, &expected_grad);
    Tensor g;
    {
        GradientTape tape;
        Tensor p = logits;
        tape.watch(p);
        Tensor loss = bce(labels, p);
        CHECK(loss.shape() == Shape{});
        CHECK(loss.item() == doctest::Approx(expected).epsilon(1e-6));
        g = tape.gradient(ops::multiply(loss, 3.0f), p);   // the op's backward scales by what follows it
    }
    const auto gv = values_of(g), ev = values_of(expected_grad);
    for (size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == doctest::Approx(3.0 * ev[i]).epsilon(1e-6));
    for (int64_t i = 0; i < logits.numel(); i += 3) {
        float* p = logits.data<float>() + i;
        const float saved = *p;
        *p = saved + 1e-2f;
        const double up = bce(labels, logits).item();
        *p = saved - 1e-2f;
        const double down = bce(labels, logits).item();
        *p = saved;
        CHECK(g.item(i) == doctest::Approx(3.0 * (up - down) / 2e-2).epsilon(2e-3).scale(1.0));
    }

    // A tape step with the loss as a function is fit()'s step with the loss compiled by name.
    auto make = [] {
        utils::set_random_seed(41);
        auto m = std::make_shared<Sequential>();
        m->add(layers::Input({2}));
        m->add(layers::Dense(3, "tanh"));
        m->add(layers::Dense(2));
        m->compile(optimizers::SGD(0.3f), losses::BinaryCrossentropy({.from_logits = true}));
        return m;
    };
    auto by_fit = make(), by_tape = make();
    by_fit->fit(y, labels, {.batch_size = 6, .epochs = 1, .shuffle = false, .verbose = 0});
    optimizers::SGD sgd(0.3f);
    {
        GradientTape tape;
        Tensor loss = bce(labels, (*by_tape)(y, {.training = true}));
        sgd.apply(tape.gradient(loss, by_tape->trainable_weights()), by_tape->trainable_weights());
    }
    const auto a = by_fit->get_weights(), b = by_tape->get_weights();
    for (size_t k = 0; k < a.size(); ++k) {
        const auto va = values_of(a[k]), vb = values_of(b[k]);
        for (size_t i = 0; i < va.size(); ++i) CHECK(va[i] == doctest::Approx(vb[i]).epsilon(1e-6).scale(1.0));
    }
    CHECK(message_of([&] { bce(Tensor(), logits); }) == "Loss 'binary_crossentropy': y_true and y_pred must both be defined tensors");
}

TEST_CASE("accumulate_gradient: a temporary nothing else shares is taken; anything else is copied, then added") {
    Variable v;
    v.name = "kernel";
    v.value = Tensor::zeros({2, 3});
    SUBCASE("a temporary, alone with its storage: becomes v.grad, no copy") {
        Tensor g = Tensor::full({2, 3}, 1.5f);
        const void* storage = g.raw();
        accumulate_gradient(v, std::move(g));
        CHECK(v.grad.raw() == storage);
        CHECK(values_of(v.grad) == std::vector<double>(6, 1.5f));
    }
    SUBCASE("a tensor the caller keeps: copied, so the caller's later changes do not reach v.grad") {
        Tensor g = Tensor::full({2, 3}, 1.5f);
        accumulate_gradient(v, g);
        CHECK(v.grad.raw() != g.raw());
        g.fill(9.0f);
        CHECK(values_of(v.grad) == std::vector<double>(6, 1.5f));
    }
    SUBCASE("a temporary that shares its storage (a reshape of a kept tensor): copied") {
        Tensor kept = Tensor::full({6}, 2.0f);
        accumulate_gradient(v, kept.reshape({2, 3}));
        CHECK(v.grad.raw() != kept.raw());
        kept.fill(9.0f);
        CHECK(values_of(v.grad) == std::vector<double>(6, 2.0f));
    }
    SUBCASE("a second gradient is added to the first, whichever way it comes") {
        accumulate_gradient(v, Tensor::full({2, 3}, 1.0f));
        accumulate_gradient(v, Tensor::full({2, 3}, 2.0f));
        const Tensor third = Tensor::full({2, 3}, 4.0f);
        accumulate_gradient(v, third);
        CHECK(values_of(v.grad) == std::vector<double>(6, 7.0f));
        CHECK(values_of(third) == std::vector<double>(6, 4.0f));
    }
    SUBCASE("a temporary of the wrong shape: the same error as before") {
        CHECK(message_of([&] { accumulate_gradient(v, Tensor::full({3, 2}, 1.0f)); }) ==
              "Gradient of shape (3, 2) does not match weight 'kernel' of shape (2, 3)");
    }
}
