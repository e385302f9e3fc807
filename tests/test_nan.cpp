// NaN and inf go through as in Keras: relu(NaN) = NaN (oneDNN 2.6's relu gave 0), and the other ops
// in which oneDNN drops a NaN (exp, max / min, clip, softmax, the vanilla RNN with relu) keep it; so a
// NaN sample or label given to fit() makes the loss NaN and TerminateOnNaN stops the training.
#include <doctest/doctest.h>

#include <cmath>
#include <iostream>
#include <limits>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/keras.hpp"
#include "keras/ops.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::captured;
using test_helpers::message_of;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// 64 values (long enough for oneDNN's vector code) with NaN at 3, inf at 5, -inf at 7.
Tensor with_specials() {
    std::vector<float> v(64);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 5) - 2.0f;
    v[3] = kNaN;
    v[5] = kInf;
    v[7] = -kInf;
    return Tensor(v, {8, 8});
}

float at(const Tensor& t, int64_t i) { return static_cast<float>(t.item(i)); }
}  // namespace

TEST_CASE("relu keeps NaN: keras::ops::relu, the Activation layer and Dense(relu)") {
    const Tensor x = with_specials();
    for (const Tensor& y : {ops::relu(x), layers::Activation("relu")(x)}) {
        CHECK(std::isnan(at(y, 3)));
        CHECK(at(y, 5) == kInf);
        CHECK(at(y, 7) == 0.0f);
        CHECK(at(y, 0) == 0.0f);
        CHECK(at(y, 1) == 0.0f);
        CHECK(at(y, 4) == 2.0f);
    }
    Sequential model;
    model.add(layers::Input({8}));
    model.add(layers::Dense(4, "relu"));
    const Tensor y = model.predict(x, {.verbose = 0});
    for (int64_t j = 0; j < 4; ++j) {
        CHECK(std::isnan(at(y, j)));        // row 0 read the NaN
        CHECK_FALSE(std::isnan(at(y, 4 + j)));   // row 1 (inf and -inf) may be inf, never NaN here...
    }
    for (int64_t i = 8; i < 32; ++i) CHECK(std::isfinite(at(y, i)));   // rows 2..7 are finite
}

TEST_CASE("the ops oneDNN would drop a NaN in keep it: exp, maximum, minimum, max, min, clip, softmax, sign") {
    const Tensor x = with_specials();
    const Tensor zeros = Tensor::zeros({8, 8});
    CHECK(std::isnan(at(ops::exp(x), 3)));
    for (const Tensor& y : {ops::maximum(x, zeros), ops::maximum(zeros, x), ops::minimum(x, zeros),
                            ops::minimum(zeros, x), ops::maximum(x, 0.0f), ops::minimum(x, 0.0f)})
        CHECK(std::isnan(at(y, 3)));
    CHECK(at(ops::maximum(x, zeros), 7) == 0.0f);
    CHECK(at(ops::minimum(x, zeros), 5) == 0.0f);
    CHECK(std::isnan(at(ops::max(x, {1}), 0)));
    CHECK(std::isnan(at(ops::min(x, {1}), 0)));
    CHECK(at(ops::max(x, {1}), 1) == 2.0f);   // a row without NaN
    CHECK(std::isnan(at(ops::clip(x, 0.0f, 1.0f), 3)));
    CHECK(at(ops::clip(x, 0.0f, 1.0f), 5) == 1.0f);
    CHECK(std::isnan(at(ops::sign(x), 3)));
    const Tensor s = ops::softmax(x);
    for (int64_t j = 0; j < 8; ++j) CHECK(std::isnan(at(s, j)));   // the row with the NaN: all NaN
    CHECK(std::isfinite(at(s, 16)));
    const Tensor e = layers::Activation("exponential")(x);
    CHECK(std::isnan(at(e, 3)));
    const Tensor sm = layers::Activation("softmax")(x);
    for (int64_t j = 0; j < 8; ++j) CHECK(std::isnan(at(sm, j)));
}

TEST_CASE("SimpleRNN(relu): a NaN or inf in a sample makes that sample's output NaN, not 0") {
    utils::set_random_seed(3);
    Sequential model;
    model.add(layers::Input({5, 3}));
    model.add(layers::SimpleRNN(4, {.activation = "relu"}));
    std::vector<float> v(4 * 5 * 3, 0.25f);
    v[0] = kNaN;               // sample 0, step 0
    v[2 * 15 + 7] = kInf;      // sample 2, step 2: inf * (weights of both signs) = NaN inside the cell
    const Tensor y = model.predict(Tensor(v, {4, 5, 3}), {.verbose = 0});
    for (int64_t j = 0; j < 4; ++j) {
        CHECK(std::isnan(at(y, j)));
        CHECK(std::isfinite(at(y, 4 + j)));
        CHECK(std::isfinite(at(y, 12 + j)));
    }
    bool sample2_nonfinite = false;
    for (int64_t j = 0; j < 4; ++j) sample2_nonfinite |= !std::isfinite(at(y, 8 + j));
    CHECK(sample2_nonfinite);
}

namespace {
// Dense(relu) -> Dense(sigmoid), trained on 8 samples in batches of 4 with TerminateOnNaN; returns
// what it printed and the loss of each epoch.
std::string fit_with_terminate_on_nan(const Tensor& x, const Tensor& y, const std::string& loss,
                                      callbacks::History* history) {
    utils::set_random_seed(11);
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(4, "relu"));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::SGD(0.1f), loss);
    return captured(std::cout, [&] {
        *history = model.fit(x, y, {.batch_size = 4, .epochs = 3, .shuffle = false, .verbose = 0,
                                    .callbacks = {std::make_shared<callbacks::TerminateOnNaN>()}});
    });
}

Tensor features() {
    std::vector<float> v(8 * 3);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.9f * static_cast<float>(i));
    return Tensor(v, {8, 3});
}
Tensor labels() { return Tensor(std::vector<float>{0, 1, 1, 0, 1, 0, 0, 1}, {8, 1}); }
}  // namespace

TEST_CASE("fit(): one NaN sample gives a NaN loss and TerminateOnNaN stops the training") {
    std::vector<float> v = features().to_vector<float>();
    v[5 * 3 + 1] = kNaN;   // sample 5: the second batch
    callbacks::History history;
    CHECK(fit_with_terminate_on_nan(Tensor(v, {8, 3}), labels(), "binary_crossentropy", &history) ==
          "Batch 1: Invalid loss, terminating training\n");
    REQUIRE(history["loss"].size() == 1);
    CHECK(std::isnan(history["loss"][0]));

    // An inf sample: as in Keras the batch's loss can stay finite (relu keeps inf, sigmoid makes 0 or 1
    // of it and the clipped crossentropy is finite), but its gradient is NaN, so the next batch's
    // loss is NaN and TerminateOnNaN stops the training there.
    v[5 * 3 + 1] = kInf;
    CHECK(fit_with_terminate_on_nan(Tensor(v, {8, 3}), labels(), "binary_crossentropy", &history) ==
          "Batch 0: Invalid loss, terminating training\n");   // epoch 2's first batch
    CHECK(history["loss"].size() == 2);
}

TEST_CASE("fit(): a NaN or inf label gives a NaN / inf loss and TerminateOnNaN stops the training") {
    for (const std::string loss : {"binary_crossentropy", "mse"}) {
        for (float bad : {kNaN, kInf}) {
            CAPTURE(loss);
            CAPTURE(bad);
            std::vector<float> y = labels().to_vector<float>();
            y[2] = bad;   // the first batch
            callbacks::History history;
            CHECK(fit_with_terminate_on_nan(features(), Tensor(y, {8, 1}), loss, &history) ==
                  "Batch 0: Invalid loss, terminating training\n");
            CHECK_FALSE(std::isfinite(history["loss"][0]));
        }
    }
    // Integer class ids cannot be NaN: a NaN float id is refused as Keras refuses an id out of range.
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(2, "softmax"));
    model.compile(optimizers::SGD(0.1f), "sparse_categorical_crossentropy");
    std::vector<float> ids{0, 1, kNaN, 0, 1, 0, 0, 1};
    CHECK(message_of<ValueError>([&] { model.fit(features(), Tensor(ids, {8, 1}), {.batch_size = 4, .verbose = 0}); })
              .find("Received a label value of nan") != std::string::npos);
}
