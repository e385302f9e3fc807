// GlobalMaxPooling1D, the worked example of a layer written with ops: forward against a naive
// double-precision max, gradient against finite differences, Keras's options and config, and training.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

TEST_CASE("GlobalMaxPooling1D: the maximum over the steps, as Keras's shapes and options say") {
    const Tensor x = wavy({2, 5, 3}, 0.2, 1.7, 1.0);
    const auto v = values_of(x);
    layers::GlobalMaxPooling1D max_pool;
    Layer& pool = max_pool;   // the model's entry points (call(x, ctx) / backward) are Layer's
    CHECK(pool.build_for({-1, 5, 3}) == Shape{-1, 3});
    CallContext ctx;
    const Tensor y = pool.call(x, ctx);
    REQUIRE(y.shape() == Shape{2, 3});
    for (int n = 0; n < 2; ++n)
        for (int f = 0; f < 3; ++f) {
            double m = -1e30;
            for (int t = 0; t < 5; ++t) m = std::max(m, v[(n * 5 + t) * 3 + f]);
            CHECK(y.item(n * 3 + f) == doctest::Approx(m));
        }
    layers::GlobalMaxPooling1D keep({.keepdims = true});
    CHECK(keep.build_for({-1, 5, 3}) == Shape{-1, 1, 3});
    CHECK(message_of<ValueError>([&] { layers::GlobalMaxPooling1D().build_for({-1, 3}); }).find("expected ndim=3") !=
          std::string::npos);
    const auto config = keep.get_config();
    CHECK(config["keepdims"] == true);
    CHECK(config["data_format"] == "channels_last");
}

TEST_CASE("GlobalMaxPooling1D saves and loads through a model file") {
    Sequential model;
    model.add(layers::Input({5, 3}));
    model.add(layers::GlobalMaxPooling1D({.keepdims = true, .name = "pool"}));
    model.add(layers::Flatten());
    model.add(layers::Dense(2));
    const std::string path = "test_pooling_model.h5";
    model.save(path);
    auto loaded = models::load_model(path);
    const Tensor x = wavy({4, 5, 3}, 0.1, 0.8, 1.0);
    CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(model.predict(x, {.verbose = 0})));
    CHECK(loaded->get_layer("pool")->get_config()["keepdims"] == true);
    std::remove(path.c_str());
}

TEST_CASE("GlobalMaxPooling1D: the gradient goes to each feature's maximum step only (finite differences)") {
    const Tensor x = wavy({2, 4, 3}, 0.4, 2.3, 1.0);
    layers::GlobalMaxPooling1D max_pool;
    Layer& pool = max_pool;
    pool.build_for(x.shape());
    CallContext ctx{.training = true};
    const Tensor y = pool.call(x, ctx);
    const Tensor dy = wavy(y.shape(), 0.1, 0.9, 1.0);
    const Tensor dx = pool.backward(dy, ctx);
    auto objective = [&](const Tensor& in) {
        CallContext c;
        const auto out = values_of(pool.call(in, c));
        double s = 0;
        for (size_t i = 0; i < out.size(); ++i) s += out[i] * dy.item(static_cast<int64_t>(i));
        return s;
    };
    for (int64_t i = 0; i < x.numel(); ++i) {
        Tensor up = x.clone(), down = x.clone();
        up.data<float>()[i] += 1e-3f;
        down.data<float>()[i] -= 1e-3f;
        CHECK(dx.item(i) == doctest::Approx((objective(up) - objective(down)) / 2e-3).epsilon(1e-3).scale(1.0));
    }
}

TEST_CASE("GlobalMaxPooling1D in a trained model") {
    utils::set_random_seed(1);
    Tensor x = wavy({64, 6, 2}, 0.3, 0.71, 1.0);
    Tensor y({64, 1}, DType::float32);
    for (int64_t i = 0; i < 64; ++i) {
        double m = -1e30;
        for (int t = 0; t < 6; ++t) m = std::max(m, double(x.data<float>()[(i * 6 + t) * 2]));
        y.data<float>()[i] = m > 0.5 ? 1.0f : 0.0f;
    }
    Sequential model;
    model.add(layers::Input({6, 2}));
    model.add(layers::SimpleRNN(6, {.return_sequences = true}));
    model.add(layers::GlobalMaxPooling1D());
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.02f), "binary_crossentropy", {"accuracy"});
    const double before = model.evaluate(x, y, {.verbose = 0}).loss();
    model.fit(x, y, {.batch_size = 16, .epochs = 20, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).loss() < 0.7 * before);
}
