// Conv1D, SeparableConv1D, MaxPooling1D, AveragePooling1D and the shape layers (Cropping1D,
// ZeroPadding1D, UpSampling1D, Reshape, Permute, Identity): forward against naive double-precision
// loops, gradients (input and weights) against finite differences, Keras's messages for bad
// arguments, files written by real Keras 3 and in the Keras 2 layout (tests/fixtures/gen_conv_fixtures.py),
// save / load round trips, masks, and training an Embedding -> Conv1D -> MaxPooling1D -> LSTM model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "h5_test_helpers.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

const std::string fixture_dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

// Gives every weight of a built layer irregular values (so a swapped axis shows).
void set_wavy_weights(Layer& layer) {
    double phase = 0.3;
    for (const auto& w : layer.weights()) {
        w->value = wavy(w->value.shape(), phase, 0.77, 0.6);
        phase += 1.1;
    }
}

// The layer's output on x.
Tensor run(Layer& layer, const Tensor& x) {
    CallContext ctx;
    return layer.call(x, ctx);
}

// d(sum(y * dy))/d(x) and /d(each weight) from the layer's backward pass against central finite
// differences.
void check_gradients(Layer& layer, const Tensor& x) {
    for (const auto& w : layer.weights()) w->grad = Tensor();
    CallContext ctx{.training = true};
    const Tensor y = layer.call(x, ctx);
    const Tensor dy = wavy(y.shape(), 0.1, 0.9, 1.0);
    const Tensor dx = layer.backward(dy, ctx);
    auto objective = [&] {
        const auto out = values_of(run(layer, x));
        double s = 0;
        for (size_t i = 0; i < out.size(); ++i) s += out[i] * dy.item(static_cast<int64_t>(i));
        return s;
    };
    auto finite_difference = [&](float& value) {
        const float keep = value;
        value = keep + 1e-3f;
        const double up = objective();
        value = keep - 1e-3f;
        const double down = objective();
        value = keep;
        return (up - down) / 2e-3;
    };
    Tensor probe = x;   // x itself is perturbed in place: run() reads it
    for (int64_t i = 0; i < x.numel(); ++i) {
        INFO("input element " << i);
        CHECK(dx.item(i) == doctest::Approx(finite_difference(probe.data<float>()[i])).epsilon(3e-3).scale(1.0));
    }
    for (const auto& w : layer.weights()) {
        REQUIRE(w->grad.defined());
        for (int64_t i = 0; i < w->value.numel(); ++i) {
            INFO(w->name << " element " << i);
            CHECK(w->grad.item(i) == doctest::Approx(finite_difference(w->value.data<float>()[i])).epsilon(3e-3).scale(1.0));
        }
    }
}

// Naive Conv1D in double precision, channels_last, TensorFlow's padding.
std::vector<double> reference_conv(const Tensor& x, const Tensor& kernel, const Tensor* bias, int64_t stride,
                                   int64_t dilation, const std::string& padding, int64_t groups, bool tanh_out) {
    const int64_t n = x.dim(0), steps = x.dim(1), channels = x.dim(2);
    const int64_t k = kernel.dim(0), cg = kernel.dim(1), filters = kernel.dim(2), fg = filters / groups;
    const int64_t span = (k - 1) * dilation + 1;
    int64_t out = 0, before = 0;
    if (padding == "valid") out = (steps - span) / stride + 1;
    else out = (steps + stride - 1) / stride;
    if (padding == "same") before = std::max<int64_t>((out - 1) * stride + span - steps, 0) / 2;
    if (padding == "causal") before = span - 1;
    std::vector<double> y;
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t f = 0; f < filters; ++f) {
                double s = bias ? bias->item(f) : 0.0;
                const int64_t g = f / fg;
                for (int64_t j = 0; j < k; ++j) {
                    const int64_t t = o * stride + j * dilation - before;
                    if (t < 0 || t >= steps) continue;
                    for (int64_t c = 0; c < cg; ++c)
                        s += double(x.item((b * steps + t) * channels + g * cg + c)) *
                             kernel.item((j * cg + c) * filters + f);
                }
                y.push_back(tanh_out ? std::tanh(s) : s);
            }
    return y;
}

// Naive pooling: max or mean over each window's real steps.
std::vector<double> reference_pool(const Tensor& x, int64_t size, int64_t stride, const std::string& padding,
                                   bool max) {
    const int64_t n = x.dim(0), steps = x.dim(1), channels = x.dim(2);
    const int64_t out = padding == "valid" ? (steps - size) / stride + 1 : (steps + stride - 1) / stride;
    const int64_t before = padding == "same" ? std::max<int64_t>((out - 1) * stride + size - steps, 0) / 2 : 0;
    std::vector<double> y;
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t c = 0; c < channels; ++c) {
                double acc = max ? -1e300 : 0.0;
                int count = 0;
                for (int64_t j = 0; j < size; ++j) {
                    const int64_t t = o * stride + j - before;
                    if (t < 0 || t >= steps) continue;
                    const double v = x.item((b * steps + t) * channels + c);
                    acc = max ? std::max(acc, v) : acc + v;
                    ++count;
                }
                y.push_back(max ? acc : acc / count);
            }
    return y;
}

struct ConvCase {
    std::string padding;
    int strides, dilation, groups;
};

}  // namespace

TEST_CASE("Conv1D: every padding, stride, dilation and group count against a naive double-precision convolution") {
    const std::vector<ConvCase> cases = {{"valid", 1, 1, 1}, {"valid", 2, 1, 2}, {"valid", 1, 2, 1},
                                         {"same", 1, 1, 2},  {"same", 2, 1, 1},  {"same", 3, 1, 1},
                                         {"same", 1, 3, 1},  {"causal", 1, 1, 1}, {"causal", 2, 1, 2},
                                         {"causal", 1, 2, 2}};
    for (const auto& c : cases)
        for (int64_t kernel_size : {1, 2, 3}) {
            INFO("padding " << c.padding << ", strides " << c.strides << ", dilation " << c.dilation << ", groups "
                            << c.groups << ", kernel_size " << kernel_size);
            layers::Conv1D conv(4, kernel_size, {.strides = c.strides, .padding = c.padding,
                                                 .dilation_rate = c.dilation, .groups = c.groups,
                                                 .activation = "tanh"});
            Layer& layer = conv;
            const Shape out_shape = layer.build_for({-1, 9, 4});
            set_wavy_weights(layer);
            const Tensor x = wavy({2, 9, 4}, 0.2, 1.3, 1.0);
            const Tensor y = run(layer, x);
            CHECK(y.shape() == Shape{2, out_shape[1], 4});
            check_close(values_of(y), reference_conv(x, conv.kernel->value, &conv.bias->value, c.strides, c.dilation,
                                                     c.padding, c.groups, true), 1e-5);
        }
}

TEST_CASE("Conv1D: gradients of the input, kernel and bias against finite differences") {
    for (const auto& c : std::vector<ConvCase>{{"valid", 1, 1, 1}, {"same", 2, 1, 2}, {"causal", 1, 2, 1}}) {
        INFO("padding " << c.padding);
        layers::Conv1D conv(4, 3, {.strides = c.strides, .padding = c.padding, .dilation_rate = c.dilation,
                                   .groups = c.groups, .activation = "tanh"});
        Layer& layer = conv;
        layer.build_for({-1, 6, 2});
        set_wavy_weights(layer);
        check_gradients(layer, wavy({2, 6, 2}, 0.4, 1.1, 1.0));
    }
}

TEST_CASE("SeparableConv1D: a depthwise then a pointwise convolution, forward and gradients") {
    for (const auto& padding : {"valid", "same", "causal"}) {
        INFO("padding " << padding);
        layers::SeparableConv1D sep(3, 3, {.strides = 1, .padding = padding, .depth_multiplier = 2});
        Layer& layer = sep;
        CHECK(layer.build_for({-1, 7, 2}) == Shape{-1, std::string(padding) == "valid" ? 5 : 7, 3});
        CHECK(sep.depthwise_kernel->value.shape() == Shape{3, 2, 2});
        CHECK(sep.pointwise_kernel->value.shape() == Shape{1, 4, 3});
        set_wavy_weights(layer);
        const Tensor x = wavy({2, 7, 2}, 0.7, 0.9, 1.0);
        // The depthwise kernel as a grouped convolution's (groups = channels): channel c, multiplier m
        // -> filter c * 2 + m, then the pointwise kernel as a kernel_size-1 convolution.
        Tensor grouped({3, 1, 4}, DType::float32);
        for (int j = 0; j < 3; ++j)
            for (int c = 0; c < 2; ++c)
                for (int m = 0; m < 2; ++m)
                    grouped.data<float>()[j * 4 + c * 2 + m] = sep.depthwise_kernel->value.data<float>()[(j * 2 + c) * 2 + m];
        const auto depthwise = reference_conv(x, grouped, nullptr, 1, 1, padding, 2, false);
        const int64_t out = static_cast<int64_t>(depthwise.size()) / 8;
        const auto want = reference_conv(test_helpers::floats(depthwise, {2, out, 4}), sep.pointwise_kernel->value,
                                         &sep.bias->value, 1, 1, "valid", 1, false);
        check_close(values_of(run(layer, x)), want, 1e-5);
        check_gradients(layer, wavy({1, 5, 2}, 0.5, 1.7, 1.0));
    }
}

TEST_CASE("MaxPooling1D and AveragePooling1D: windows, strides and padding against naive loops; gradients") {
    const Tensor x = wavy({2, 7, 3}, 0.3, 1.9, 1.0);
    for (bool max : {true, false})
        for (const auto& padding : {"valid", "same"})
            for (auto [size, stride] : std::vector<std::pair<int, int>>{{2, 0}, {3, 1}, {3, 2}, {4, 3}, {1, 2}}) {
                INFO((max ? "max" : "average") << " pool_size " << size << " strides " << stride << " " << padding);
                layers::Pooling1DOptions options{.strides = stride, .padding = padding};
                std::shared_ptr<Layer> layer;
                if (max) layer = std::make_shared<layers::MaxPooling1D>(size, options);
                else layer = std::make_shared<layers::AveragePooling1D>(size, options);
                const Shape out_shape = layer->build_for({-1, 7, 3});
                const Tensor y = run(*layer, x);
                CHECK(y.shape() == Shape{2, out_shape[1], 3});
                check_close(values_of(y), reference_pool(x, size, stride ? stride : size, padding, max), 1e-6);
                check_gradients(*layer, wavy({1, 7, 2}, 0.6, 2.3, 1.0));
            }
    CHECK(layers::MaxPooling1D().get_config()["strides"] == nlohmann::json::array({2}));
}

TEST_CASE("Cropping1D, ZeroPadding1D, UpSampling1D, Reshape, Permute, Identity: values and gradients") {
    const Tensor x = wavy({2, 5, 3}, 0.1, 0.7, 1.0);
    auto at = [&](int64_t b, int64_t t, int64_t c) { return x.item((b * 5 + t) * 3 + c); };
    std::vector<double> want;

    layers::Cropping1D crop({1, 2});
    CHECK(static_cast<Layer&>(crop).build_for({-1, 5, 3}) == Shape{-1, 2, 3});
    for (int b = 0; b < 2; ++b)
        for (int t = 1; t < 3; ++t)
            for (int c = 0; c < 3; ++c) want.push_back(at(b, t, c));
    check_close(values_of(run(crop, x)), want, 0);
    check_gradients(crop, x.clone());

    layers::ZeroPadding1D pad({2, 1});
    CHECK(static_cast<Layer&>(pad).build_for({-1, 5, 3}) == Shape{-1, 8, 3});
    want.clear();
    for (int b = 0; b < 2; ++b)
        for (int t = -2; t < 6; ++t)
            for (int c = 0; c < 3; ++c) want.push_back(t >= 0 && t < 5 ? at(b, t, c) : 0.0);
    check_close(values_of(run(pad, x)), want, 0);
    check_gradients(pad, x.clone());

    layers::UpSampling1D up(3);
    CHECK(static_cast<Layer&>(up).build_for({-1, 5, 3}) == Shape{-1, 15, 3});
    want.clear();
    for (int b = 0; b < 2; ++b)
        for (int t = 0; t < 15; ++t)
            for (int c = 0; c < 3; ++c) want.push_back(at(b, t / 3, c));
    check_close(values_of(run(up, x)), want, 0);
    check_gradients(up, x.clone());

    layers::Reshape reshape({3, -1});
    CHECK(static_cast<Layer&>(reshape).build_for({-1, 5, 3}) == Shape{-1, 3, 5});
    CHECK(run(reshape, x).shape() == Shape{2, 3, 5});
    check_close(values_of(run(reshape, x)), values_of(x), 0);
    check_gradients(reshape, x.clone());

    layers::Permute permute({2, 1});
    CHECK(static_cast<Layer&>(permute).build_for({-1, 5, 3}) == Shape{-1, 3, 5});
    want.clear();
    for (int b = 0; b < 2; ++b)
        for (int c = 0; c < 3; ++c)
            for (int t = 0; t < 5; ++t) want.push_back(at(b, t, c));
    check_close(values_of(run(permute, x)), want, 0);
    check_gradients(permute, x.clone());

    layers::Identity identity;
    CHECK(static_cast<Layer&>(identity).build_for({-1, 5, 3}) == Shape{-1, 5, 3});
    check_close(values_of(run(identity, x)), values_of(x), 0);
}

TEST_CASE("data_format channels_first: the channels_last result on (batch, channels, steps), and its gradients") {
    const Tensor x = wavy({2, 9, 4}, 0.2, 1.3, 1.0);   // channels_last
    const Tensor x_first = ops::transpose(x, {0, 2, 1});
    auto check_pair = [&](Layer& last, Layer& first) {
        CHECK(first.build_for({-1, 4, 9}) == [&] {
            const Shape s = last.build_for({-1, 9, 4});
            return Shape{s[0], s[2], s[1]};
        }());
        for (size_t i = 0; i < first.weights().size(); ++i) first.weights()[i]->value = last.weights()[i]->value;
        check_close(values_of(run(first, x_first)), values_of(ops::transpose(run(last, x), {0, 2, 1})), 1e-6);
    };
    layers::Conv1D conv_last(6, 3, {.strides = 2, .padding = "same", .groups = 2, .activation = "tanh"});
    layers::Conv1D conv_first(6, 3, {.strides = 2, .padding = "same", .data_format = "channels_first", .groups = 2,
                                     .activation = "tanh"});
    check_pair(conv_last, conv_first);
    set_wavy_weights(conv_first);
    check_gradients(conv_first, x_first.clone());
    layers::SeparableConv1D sep_last(3, 2, {.padding = "causal", .depth_multiplier = 2});
    layers::SeparableConv1D sep_first(3, 2, {.padding = "causal", .data_format = "channels_first", .depth_multiplier = 2});
    check_pair(sep_last, sep_first);
    layers::AveragePooling1D avg_last(3, {.strides = 2, .padding = "same"});
    layers::AveragePooling1D avg_first(3, {.strides = 2, .padding = "same", .data_format = "channels_first"});
    check_pair(avg_last, avg_first);
    layers::MaxPooling1D max_last(2);
    layers::MaxPooling1D max_first(2, {.data_format = "channels_first"});
    check_pair(max_last, max_first);
    // Built, a channels_first layer pins its channels (axis 1), not the steps.
    CHECK(message_of<ValueError>([&] { static_cast<Layer&>(conv_first).build_for({-1, 2, 9}); }).find(
              "expected axis 1 of input shape to have value 4, but received input with shape (None, 2, 9)") !=
          std::string::npos);
    CHECK(static_cast<Layer&>(conv_first).build_for({-1, 4, 20}) == Shape{-1, 6, 10});
    CHECK(conv_first.get_config()["data_format"] == "channels_first");

    // As Keras, the activation applies to the channels_first output as it is: a softmax runs over
    // its last axis, the steps.
    layers::Conv1D soft_first(6, 3, {.padding = "same", .data_format = "channels_first", .activation = "softmax"});
    soft_first.build_for({-1, 4, 9});
    set_wavy_weights(soft_first);
    const auto y = values_of(run(soft_first, x_first));   // (2, 6, 9)
    for (size_t row = 0; row < 2 * 6; ++row) {
        double sum = 0;
        for (size_t t = 0; t < 9; ++t) sum += y[row * 9 + t];
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
    }
}

TEST_CASE("Bad arguments give Keras's messages") {
    auto message = [](auto f) { return message_of<ValueError>(f); };
    CHECK(message([] { layers::Conv1D(0, 3); }) ==
          "Invalid value for argument `filters`. Expected a strictly positive value. Received filters=0.");
    CHECK(message([] { layers::Conv1D(4, 3, {.groups = 3}); }) ==
          "The number of filters must be evenly divisible by the number of groups. Received: groups=3, filters=4.");
    CHECK(message([] { layers::Conv1D(4, 3, {.padding = "full"}); }) ==
          "The `padding` argument must be a list/tuple or one of {'valid', 'same', 'causal'}. Received: full");
    CHECK(message([] { layers::MaxPooling1D(2, {.padding = "causal"}); }) ==
          "The `padding` argument must be a list/tuple or one of {'valid', 'same'}. Received: causal");
    CHECK(message([] { layers::Conv1D(4, 3, {.strides = 2, .dilation_rate = 2}); }) ==
          "`strides > 1` not supported in conjunction with `dilation_rate > 1`. Received: strides=(2,) and "
          "dilation_rate=(2,)");
    CHECK(message([] { layers::Conv1D(4, 0); }) ==
          "The `kernel_size` argument must be a tuple of 1 integers. Received kernel_size=0, including values {0} "
          "that do not satisfy `value > 0`");
    CHECK(message([] { layers::MaxPooling1D(2, {.data_format = "channels_middle"}); }) ==
          "The `data_format` argument must be one of {'channels_first', 'channels_last'}. Received: "
          "data_format=channels_middle");
    CHECK(message([] { layers::SeparableConv1D(4, 3, {.depth_multiplier = 0}); }) ==
          "Invalid value for argument `depth_multiplier`. Expected a strictly positive value. Received "
          "depth_multiplier=0.");
    CHECK(message([] { layers::Conv1D(4, 3, {.groups = 2}).build_for({-1, 5, 3}); }) ==
          "The number of input channels must be evenly divisible by the number of groups. Received groups=2, but "
          "the input has 3 channels (full input shape is (None, 5, 3)).");
    // A kernel longer than the input with padding valid, in a model as in Keras.
    CHECK(message([] {
              Sequential m;
              m.add(layers::Input({5, 3}));
              m.add(layers::Conv1D(4, 6));
          }) == "Computed output size would be zero or negative. Received `inputs shape=(None, 5, 3)`, `kernel "
                "shape=(6, 3, 4)`, `dilation_rate=[1]`, `strides=(1,)`, `padding=valid`.");
    CHECK(message([] { layers::MaxPooling1D(6).build_for({-1, 5, 3}); }) ==
          "Computed output size would be zero or negative. Received: `inputs.shape=[None 5 3]`, `pool_size=[6]`, "
          "`strides=(6,)`, `padding=valid`.");
    CHECK(message([] { layers::Cropping1D({3, 3}).build_for({-1, 5, 3}); }) ==
          "`cropping` parameter of `Cropping1D` layer must be smaller than the input length. Received: "
          "input_shape=(None, 5, 3), cropping=(3, 3)");
    CHECK(message([] { layers::Reshape({4, 4}).build_for({-1, 5, 3}); }) ==
          "The total size of the tensor must be unchanged. Received: input_shape=(5, 3), target_shape=(4, 4)");
    CHECK(message([] { layers::Reshape({-1, -1}); }) ==
          "There must be at most one unknown dimension (-1) in `target_shape`. Received: target_shape=(-1, -1).");
    CHECK(message([] { layers::Permute({1, 3}); }) ==
          "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` must be consecutive "
          "and start from 1. Received dims=(1, 3)");
    CHECK(message([] { layers::Conv1D(4, 3).build_for({-1, 5}); }).find("expected ndim=3, found ndim=2") !=
          std::string::npos);
}

TEST_CASE("Models saved by real Keras 3 and in the Keras 2 layout load and predict what Keras predicted") {
    std::ifstream in(fixture_dir + "conv_fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    REQUIRE(fixtures.size() == 10);
    for (const auto& c : fixtures) {
        const std::string name = c["name"];
        const auto xs = c["x"].get<std::vector<double>>();
        const Shape x_shape = c["x_shape"].get<Shape>();
        Tensor x = test_helpers::floats(xs, x_shape);
        if (c["dtype"] == "int32") x = ops::cast(x, DType::int32);
        const auto want = c["y"].get<std::vector<double>>();
        for (const std::string tag : {"k3", "k2"}) {
            INFO(name << " " << tag);
            auto model = models::load_model(fixture_dir + "conv_" + tag + "_" + name + ".h5", {.compile = false});
            const Tensor y = model->predict(x, {.verbose = 0});
            CHECK(y.shape() == c["y_shape"].get<Shape>());
            check_close(values_of(y), want, 1e-5);
        }
        const std::string weights = fixture_dir + "conv_k3_" + name + ".weights.h5";
        if (std::ifstream(weights).good()) {   // Keras 3's weights-only layout, into a model of zeros
            INFO(name << " .weights.h5");
            auto model = models::load_model(fixture_dir + "conv_k3_" + name + ".h5", {.compile = false});
            for (const auto& layer : model->layers())
                for (const auto& w : layer->weights()) w->value = Tensor::zeros(w->value.shape());
            model->load_weights(weights);
            check_close(values_of(model->predict(x, {.verbose = 0})), want, 1e-5);
        }
    }
}

TEST_CASE("Save and load round trips: model files and both weights layouts, configs as Keras writes them") {
    auto build = [] {
        auto model = std::make_shared<Sequential>();
        model->add(layers::Input({10, 4}));
        model->add(layers::Conv1D(6, 3, {.strides = 1, .padding = "causal", .dilation_rate = 2, .groups = 2,
                                         .activation = "relu", .name = "conv"}));
        model->add(layers::SeparableConv1D(4, 2, {.padding = "same", .depth_multiplier = 2, .name = "sep"}));
        model->add(layers::AveragePooling1D(2, {.strides = 1, .padding = "same", .name = "avg"}));
        model->add(layers::MaxPooling1D(3, {.name = "max"}));
        model->add(layers::ZeroPadding1D({1, 2}, {.name = "pad"}));
        model->add(layers::UpSampling1D(2, {.name = "up"}));
        model->add(layers::Cropping1D({2, 1}, {.name = "crop"}));
        model->add(layers::Permute({2, 1}, {.name = "perm"}));
        model->add(layers::Reshape({-1}, {.name = "flat"}));
        model->add(layers::Identity({.name = "id"}));
        model->add(layers::Dense(2));
        return model;
    };
    utils::set_random_seed(3);
    auto model = build();
    const Tensor x = wavy({3, 10, 4}, 0.2, 0.8, 1.0);
    const auto want = values_of(model->predict(x, {.verbose = 0}));

    const auto conv = model->get_layer("conv")->get_config();
    CHECK(conv["kernel_size"] == nlohmann::json::array({3}));
    CHECK(conv["dilation_rate"] == nlohmann::json::array({2}));
    CHECK(conv["padding"] == "causal");
    CHECK(conv["groups"] == 2);
    CHECK(conv["data_format"] == "channels_last");
    CHECK(model->get_layer("max")->get_config()["strides"] == nlohmann::json::array({3}));
    CHECK(model->get_layer("crop")->get_config()["cropping"] == nlohmann::json::array({2, 1}));
    CHECK(model->get_layer("flat")->get_config()["target_shape"] == nlohmann::json::array({-1}));

    const std::string path = "test_conv_model.h5";
    model->save(path);
    auto loaded = models::load_model(path);
    check_close(values_of(loaded->predict(x, {.verbose = 0})), want, 1e-6);
    CHECK(loaded->get_layer("sep")->get_config() == model->get_layer("sep")->get_config());
    std::remove(path.c_str());

    for (const std::string file : {"test_conv.weights.h5", "test_conv_weights.h5"}) {
        INFO(file);
        model->save_weights(file);
        utils::set_random_seed(4);
        auto other = build();
        other->load_weights(file);
        check_close(values_of(other->predict(x, {.verbose = 0})), want, 1e-6);
        std::remove(file.c_str());
    }
}

TEST_CASE("A file's unsupported or malformed convolution fields are errors naming the layer and the field") {
    Sequential model;
    model.add(layers::Input({8, 2}));
    model.add(layers::Conv1D(2, 3, {.name = "conv"}));
    model.add(layers::MaxPooling1D(2, {.name = "pool"}));
    const std::string path = "test_conv_bad_fields.h5";
    model.save(path);
    const auto original = nlohmann::json::parse(test_helpers::read_model_config(path));
    auto load_with = [&](int layer, const std::string& key, const nlohmann::json& value) {
        auto config = original;
        config["config"]["layers"][layer]["config"][key] = value;
        test_helpers::rewrite_model_config(path, config);
        return message_of<ValueError>([&] { models::load_model(path); });
    };
    const std::string conv = "Layer \"conv\" (Conv1D) in file '" + path + "', field ";
    CHECK(load_with(1, "data_format", "channels_middle") ==
          "Layer \"conv\" (Conv1D) in file '" + path + "': The `data_format` argument must be one of "
          "{'channels_first', 'channels_last'}. Received: data_format=channels_middle");
    CHECK(load_with(1, "kernel_size", nlohmann::json::array({3, 3})) ==
          conv + "`kernel_size`: expected a positive integer or a list of one, got [3,3]");
    // regularizers are read (test_tfkeras2_files); an unknown one is named
    CHECK(load_with(1, "kernel_regularizer", {{"class_name", "L7"}, {"config", {{"l2", 0.01}}}}).find(
              conv + "`kernel_regularizer`") == 0);
    // Keras's own messages for values its constructor refuses, with the file and layer in front.
    CHECK(load_with(1, "padding", "full") == "Layer \"conv\" (Conv1D) in file '" + path +
                                                 "': The `padding` argument must be a list/tuple or one of "
                                                 "{'valid', 'same', 'causal'}. Received: full");
    CHECK(load_with(2, "pool_size", nlohmann::json::array({9})).find("Computed output size would be zero or negative") !=
          std::string::npos);
    std::remove(path.c_str());
}

TEST_CASE("Masks: Conv1D and the poolings drop a mask as Keras does, Identity passes it on") {
    Sequential model;
    model.add(layers::Input({6}, {.dtype = DType::int32}));
    model.add(layers::Embedding(10, 3, {.mask_zero = true}));
    model.add(layers::Identity({.name = "id"}));
    model.add(layers::Conv1D(2, 2, {.name = "conv"}));
    const Tensor x = Tensor::from_rows(std::vector<std::vector<int32_t>>{{1, 2, 3, 0, 0, 0}});
    const Tensor mask = Tensor::from_rows(std::vector<std::vector<float>>{{1, 1, 1, 0, 0, 0}});
    CHECK(values_of(model.get_layer("id")->compute_mask(x, mask)) == values_of(mask));
    CHECK_FALSE(model.get_layer("conv")->compute_mask(x, mask).defined());   // with Keras 3's warning
    CHECK(model.predict(x, {.verbose = 0}).shape() == Shape{1, 5, 2});
}

TEST_CASE("Embedding -> Conv1D -> MaxPooling1D -> LSTM -> Dense trains (the loss goes down)") {
    utils::set_random_seed(5);
    // Label 1 when token 7 is followed by token 3 somewhere: a pattern a width-2 kernel sees.
    const int64_t n = 96, steps = 16;
    Tensor x({n, steps}, DType::int32), y({n, 1}, DType::float32);
    uint32_t state = 12345;
    for (int64_t i = 0; i < n; ++i) {
        bool found = false;
        for (int64_t t = 0; t < steps; ++t) {
            state = state * 1664525u + 1013904223u;
            x.data<int32_t>()[i * steps + t] = static_cast<int32_t>(1 + (state >> 16) % 9);
        }
        if (i % 2 == 0) {
            const int64_t t = i % (steps - 1);
            x.data<int32_t>()[i * steps + t] = 7;
            x.data<int32_t>()[i * steps + t + 1] = 3;
        }
        for (int64_t t = 0; t + 1 < steps; ++t)
            found = found || (x.data<int32_t>()[i * steps + t] == 7 && x.data<int32_t>()[i * steps + t + 1] == 3);
        y.data<float>()[i] = found ? 1.0f : 0.0f;
    }
    Sequential model;
    model.add(layers::Input({steps}, {.dtype = DType::int32}));
    model.add(layers::Embedding(10, 8));
    model.add(layers::Conv1D(8, 2, "relu"));
    model.add(layers::MaxPooling1D(2));
    model.add(layers::LSTM(8));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.02f), "binary_crossentropy", {"accuracy"});
    const double before = model.evaluate(x, y, {.verbose = 0}).loss();
    model.fit(x, y, {.batch_size = 16, .epochs = 15, .verbose = 0});
    CHECK(model.evaluate(x, y, {.verbose = 0}).loss() < 0.6 * before);
}

TEST_CASE("Conv1D / SeparableConv1D get_config: null activity_regularizer as Keras writes it, or the one set") {
    layers::Conv1D conv(4, 3);
    CHECK(conv.get_config().at("activity_regularizer").is_null());
    conv.activity_regularizer = regularizers::L2(0.01f);
    CHECK(conv.get_config().at("activity_regularizer") == regularizers::serialize(*conv.activity_regularizer));
    layers::SeparableConv1D separable(4, 3);
    CHECK(separable.get_config().at("activity_regularizer").is_null());
    separable.activity_regularizer = regularizers::L1(0.02f);
    CHECK(separable.get_config().at("activity_regularizer") ==
          regularizers::serialize(*separable.activity_regularizer));
}
