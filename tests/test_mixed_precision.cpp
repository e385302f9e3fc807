// Mixed precision (keras::mixed_precision): the policy API, per-layer dtype policies, bfloat16 forward
// and backward passes of Dense, Embedding, SimpleRNN, LSTM and GRU against float32 within the
// tolerances of docs/mixed_precision.md, a small IMDb-like training run, the policy's Keras 3 config
// (a fixture from real Keras 3.15) and its round trip, and the float32 fallback where the CPU has no
// bfloat16 (forced with mixed_precision::set_bfloat16_disabled).
//
// The bfloat16 comparisons need a CPU with AVX512_BF16 or AMX; elsewhere they say so and check only
// the fallback (which is then what runs).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/onednn/onednn_backend.hpp"
#include "keras/backend.hpp"
#include "keras/keras.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using keras::CallContext;
using keras::Tensor;
using test_helpers::message_of;
using test_helpers::wavy;
namespace layers = keras::layers;
namespace mp = keras::mixed_precision;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/mixed_precision/";

std::string cpu_bf16_reason() { return keras::backend::get(keras::Device::cpu()).bfloat16_unsupported_reason(); }

// Restores the global policy and the bfloat16 switch however a test case ends.
struct PolicyGuard {
    ~PolicyGuard() {
        mp::set_global_policy("float32");
        mp::set_bfloat16_disabled(false);
    }
};

// max |a - b| / max |b|: the error relative to the reference's scale.
double scaled_error(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double err = 0.0, scale = 1e-6;
    for (int64_t i = 0; i < a.numel(); ++i) {
        err = std::max(err, std::abs(a.item(i) - b.item(i)));
        scale = std::max(scale, std::abs(b.item(i)));
    }
    return err / scale;
}

bool all_bfloat16(const Tensor& t) {
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i)
        if ((std::bit_cast<uint32_t>(p[i]) & 0xffffu) != 0) return false;
    return true;
}

bool identical(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    for (int64_t i = 0; i < a.numel(); ++i)
        if (a.item(i) != b.item(i)) return false;
    return true;
}

// One training-mode forward and backward of a layer: its output, input gradient and weight gradients.
struct Pass {
    Tensor y, dx;
    Tensor inference_y;   // the same forward with training=false (its own primitive)
    std::vector<Tensor> dweights;
};

// The output gradient is the same fixed pattern for both layers.
Pass run_pass(keras::Layer& layer, const Tensor& x, const Tensor& mask) {
    CallContext ctx;
    ctx.training = true;
    ctx.mask = mask;
    Pass p;
    p.y = layer.call(x, ctx);
    p.dx = layer.backward(wavy(p.y.shape(), 0.3, 0.7, 1.0), ctx);
    for (const auto& w : layer.weights()) {
        p.dweights.push_back(w->grad.clone());
        w->grad = Tensor();
    }
    CallContext inference;
    inference.mask = mask;
    p.inference_y = layer.call(x, inference);
    return p;
}

// A layer made twice, float32 and mixed_bfloat16, with the same weights.
using MakeLayer = std::function<std::shared_ptr<keras::Layer>(const std::string& dtype)>;

struct Comparison {
    Pass f32, bf16;
    double forward = 0, input_grad = 0, weight_grad = 0;   // scaled errors
};

Comparison compare(const MakeLayer& make, const Tensor& x, const keras::Shape& input_shape, const Tensor& mask = {}) {
    auto a = make("float32"), b = make("mixed_bfloat16");
    a->build_for(input_shape);
    b->build_for(input_shape);
    b->set_weights(a->get_weights());
    Comparison c;
    c.f32 = run_pass(*a, x, mask);
    c.bf16 = run_pass(*b, x, mask);
    c.forward = std::max(scaled_error(c.bf16.y, c.f32.y), scaled_error(c.bf16.inference_y, c.f32.inference_y));
    if (c.f32.dx.defined()) c.input_grad = scaled_error(c.bf16.dx, c.f32.dx);
    for (size_t i = 0; i < c.f32.dweights.size(); ++i)
        c.weight_grad = std::max(c.weight_grad, scaled_error(c.bf16.dweights[i], c.f32.dweights[i]));
    return c;
}

}  // namespace

TEST_CASE("the global policy and DTypePolicy follow Keras") {
    PolicyGuard guard;
    CHECK(mp::global_policy().name() == "float32");
    const mp::DTypePolicy policy("mixed_bfloat16");
    CHECK(policy.compute_dtype() == "bfloat16");
    CHECK(policy.variable_dtype() == "float32");

    mp::set_global_policy("mixed_bfloat16");
    CHECK(mp::global_policy().name() == "mixed_bfloat16");
    layers::Dense under_global(3);
    layers::Dense own(3, {.dtype = "float32"});
    CHECK(under_global.dtype_policy().name() == "mixed_bfloat16");
    CHECK(under_global.compute_dtype() == "bfloat16");
    CHECK(under_global.variable_dtype() == "float32");
    CHECK(own.dtype_policy().name() == "float32");
    mp::set_global_policy("float32");
    CHECK(under_global.dtype_policy().name() == "mixed_bfloat16");   // fixed when the layer was made
    CHECK(layers::LSTM(4, {.dtype = "mixed_bfloat16"}).compute_dtype() == "bfloat16");

    // Weights and their gradients stay float32 whatever the policy.
    layers::Embedding emb(10, 4, {.dtype = "mixed_bfloat16"});
    emb.build_for({-1, 3});
    CHECK(emb.weights()[0]->value.dtype() == keras::DType::float32);

    CHECK(message_of([] { mp::set_global_policy("float16"); }) ==
          "Unsupported dtype policy 'float16': kerascpp supports 'float32', 'mixed_bfloat16' and 'mixed_float16' "
          "(float32 variables, bfloat16 or float16 compute); pure bfloat16 and float16 policies are not supported yet");
    CHECK(message_of([] { layers::GRU(3, {.dtype = "float64"}); }).find("Unsupported dtype policy 'float64'") == 0);
}

TEST_CASE("bfloat16 forward and backward of each layer against float32") {
    PolicyGuard guard;
    if (const std::string why = cpu_bf16_reason(); !why.empty()) {
        MESSAGE("bfloat16 comparisons skipped: " << why);
        return;
    }
    keras::utils::set_random_seed(5);
    const int64_t N = 6, T = 9, C = 12;
    const Tensor seq = wavy({N, T, C}, 0.1, 0.37, 1.0);

    SUBCASE("Dense") {
        const auto c = compare([](const std::string& d) { return std::make_shared<layers::Dense>(16, layers::DenseOptions{.dtype = d}); },
                               wavy({N, C}, 0.2, 0.53, 1.0), {-1, C});
        MESSAGE("Dense: forward " << c.forward << ", dx " << c.input_grad << ", dweights " << c.weight_grad);
        CHECK(all_bfloat16(c.bf16.y));   // linear: the output is the bfloat16 product
        CHECK(!identical(c.bf16.y, c.f32.y));
        CHECK(c.forward < 1e-2);
        CHECK(c.input_grad < 2e-2);
        CHECK(c.weight_grad < 2e-2);
    }
    SUBCASE("Embedding") {
        std::vector<int32_t> ids(N * T);
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7) % 20);
        const auto c = compare([](const std::string& d) { return std::make_shared<layers::Embedding>(20, 8, layers::EmbeddingOptions{.dtype = d}); },
                               Tensor(ids, {N, T}), {-1, T});
        MESSAGE("Embedding: forward " << c.forward << ", dweights " << c.weight_grad);
        CHECK(all_bfloat16(c.bf16.y));
        CHECK(c.forward <= std::ldexp(1.0, -8));   // one rounding
        CHECK(c.weight_grad == 0.0);   // the scatter-add of float32 gradients
    }
    const std::vector<std::pair<std::string, MakeLayer>> rnns = {
        {"SimpleRNN", [](const std::string& d) { return std::make_shared<layers::SimpleRNN>(10, layers::SimpleRNNOptions{.return_sequences = true, .dtype = d}); }},
        {"LSTM", [](const std::string& d) { return std::make_shared<layers::LSTM>(10, layers::LSTMOptions{.return_sequences = true, .dtype = d}); }},
        {"GRU", [](const std::string& d) { return std::make_shared<layers::GRU>(10, layers::GRUOptions{.return_sequences = true, .dtype = d}); }},
        {"GRU reset_after=false", [](const std::string& d) { return std::make_shared<layers::GRU>(10, layers::GRUOptions{.return_sequences = true, .reset_after = false, .dtype = d}); }},
        {"LSTM go_backwards", [](const std::string& d) { return std::make_shared<layers::LSTM>(10, layers::LSTMOptions{.go_backwards = true, .dtype = d}); }},
    };
    // Keras's mask (1 = real step): samples of 9, 7, 5, 3, 1 and 0 steps, run as per-sample lengths.
    std::vector<float> steps(N * T);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t) steps[n * T + t] = t < T - 2 * n ? 1.0f : 0.0f;
    const Tensor mask(steps, {N, T});
    for (const auto& [label, make] : rnns) {
        SUBCASE(label.c_str()) {
            // SimpleRNN(10) would run the small-RNN kernel, in float32 (the case below): oneDNN's here.
            keras::backend::set_small_rnn_mode(keras::backend::SmallRnnMode::never);
            const auto c = compare(make, seq, {-1, T, C});
            keras::backend::set_small_rnn_mode(std::nullopt);
            MESSAGE(label << ": forward " << c.forward << ", dx " << c.input_grad << ", dweights " << c.weight_grad);
            CHECK(all_bfloat16(c.bf16.y));   // the primitive's bfloat16 output
            CHECK(!identical(c.bf16.y, c.f32.y));
            CHECK(c.forward < 2e-2);
            CHECK(c.input_grad < 3e-2);
            CHECK(c.weight_grad < 3e-2);
            CHECK(make("mixed_bfloat16")->implementation_note().find(", in bfloat16") != std::string::npos);
        }
    }
    SUBCASE("a SimpleRNN small enough for the small-RNN kernel runs it in float32 and says so") {
        // Measured on W1: oneDNN's bfloat16 vanilla_rnn ran at 0.6x its float32 speed, the kernel above both.
        keras::backend::set_small_rnn_mode(keras::backend::SmallRnnMode::automatic);
        const auto c = compare(rnns[0].second, seq, {-1, T, C});
        keras::backend::set_small_rnn_mode(std::nullopt);
        CHECK(identical(c.bf16.y, c.f32.y));
        CHECK(identical(c.bf16.dx, c.f32.dx));
        const std::string note = rnns[0].second("mixed_bfloat16")->implementation_note();
        CHECK(note.find("small-RNN kernel (tanh), in float32 (bfloat16 does not pay at this size); oneDNN "
                        "vanilla_rnn (tanh), in bfloat16 past 2048 input features") == 0);
    }
    SUBCASE("LSTM and GRU with a mask") {
        for (const auto& [label, make] : {rnns[1], rnns[2]}) {
            const auto c = compare(make, seq, {-1, T, C}, mask);
            MESSAGE(label << " masked: forward " << c.forward << ", dx " << c.input_grad << ", dweights " << c.weight_grad);
            CHECK(c.forward < 2e-2);
            CHECK(c.input_grad < 3e-2);
            CHECK(c.weight_grad < 3e-2);
        }
    }
}

TEST_CASE("without bfloat16 on the CPU a mixed_bfloat16 model runs float32 and summary() says so") {
    PolicyGuard guard;
    mp::set_bfloat16_disabled(true);
    CHECK(cpu_bf16_reason() == "bfloat16 is disabled by mixed_precision::set_bfloat16_disabled");
    const int64_t N = 4, T = 5, C = 6;
    for (const MakeLayer& make : std::vector<MakeLayer>{
             [](const std::string& d) { return std::make_shared<layers::LSTM>(7, layers::LSTMOptions{.dtype = d}); },
             [](const std::string& d) { return std::make_shared<layers::Dense>(7, layers::DenseOptions{.dtype = d}); }}) {
        const bool rnn = make("float32")->class_name() == "LSTM";
        const auto c = compare(make, rnn ? wavy({N, T, C}, 0.1, 0.4, 1.0) : wavy({N, C}, 0.1, 0.4, 1.0),
                               rnn ? keras::Shape{-1, T, C} : keras::Shape{-1, C});
        CHECK(identical(c.bf16.y, c.f32.y));
        CHECK(identical(c.bf16.dx, c.f32.dx));
    }
    mp::set_global_policy("mixed_bfloat16");
    keras::Sequential model;
    model.add(layers::Input({5}, {.dtype = keras::DType::int32}));
    model.add(layers::Embedding(10, 4));
    model.add(layers::LSTM(3));
    model.add(layers::Dense(1, {.activation = "sigmoid", .dtype = "float32"}));
    std::ostringstream out;
    model.summary(&out);
    CHECK(out.str().find("runs on: GEMM-step lstm (oneDNN matmul) in training; oneDNN lstm in inference, in float32 "
                         "(bfloat16 is disabled") != std::string::npos);
    CHECK(out.str().find("Mixed precision: 2 layer(s) with policy mixed_bfloat16 run in float32: bfloat16 is "
                         "disabled by mixed_precision::set_bfloat16_disabled") != std::string::npos);
    mp::set_bfloat16_disabled(false);
    if (cpu_bf16_reason().empty()) {
        std::ostringstream on;
        model.summary(&on);
        CHECK(on.str().find("Mixed precision: 2 layer(s) with policy mixed_bfloat16 compute in bfloat16") !=
              std::string::npos);
    }
}

TEST_CASE("an IMDb-like model trains under mixed_bfloat16 to the loss float32 reaches") {
    PolicyGuard guard;
    if (const std::string why = cpu_bf16_reason(); !why.empty()) {
        MESSAGE("bfloat16 training skipped: " << why);
        return;
    }
    namespace synth = keras::datasets::synthetic_sentiment;
    const auto [train, test] = synth::load_data({.num_train = 3000, .num_test = 1000, .num_words = 500, .min_length = 20,
                                                 .max_length = 60, .sentiment_words = 10, .seed = 7});
    const Tensor x = keras::utils::pad_sequences(train.x, {.maxlen = 40});
    const Tensor x_test = keras::utils::pad_sequences(test.x, {.maxlen = 40});
    struct Result {
        double train_loss, test_loss, test_accuracy;
    };
    auto train_with = [&](const std::string& policy) {
        mp::set_global_policy(policy);
        keras::utils::set_random_seed(11);
        keras::Sequential model;
        model.add(layers::Input({40}, {.dtype = keras::DType::int32}));
        model.add(layers::Embedding(500, 16));
        model.add(layers::LSTM(16));
        model.add(layers::Dense(1, {.activation = "sigmoid", .dtype = "float32"}));   // Keras's advice
        model.compile(keras::optimizers::Adam(0.005), "binary_crossentropy", {"accuracy"});
        const auto history = model.fit(x, train.y, {.batch_size = 50, .epochs = 3, .shuffle = false, .verbose = 0});
        mp::set_global_policy("float32");
        for (const auto& w : model.get_weights()) CHECK(w.dtype() == keras::DType::float32);
        const auto [loss, accuracy] = model.evaluate(x_test, test.y, {.verbose = 0});
        return Result{history["loss"].back(), loss, accuracy};
    };
    const Result f32 = train_with("float32");
    const Result bf16 = train_with("mixed_bfloat16");
    MESSAGE("float32: train loss " << f32.train_loss << ", test loss " << f32.test_loss << ", test accuracy "
            << f32.test_accuracy << "; mixed_bfloat16: " << bf16.train_loss << ", " << bf16.test_loss << ", "
            << bf16.test_accuracy);
    CHECK(f32.train_loss < 0.3);   // it learned
    CHECK(std::abs(bf16.train_loss - f32.train_loss) < 0.1);
    CHECK(std::abs(bf16.test_loss - f32.test_loss) < 0.05);
    CHECK(std::abs(bf16.test_accuracy - f32.test_accuracy) < 0.02);
}

TEST_CASE("policies load from a Keras 3.15 file and round-trip through get_config and save") {
    PolicyGuard guard;
    const auto model = keras::models::load_model(kFixtures + "mixed_bf16.h5");
    for (const std::string name : {"embedding", "lstm", "gru", "hidden"})
        CHECK(model->get_layer(name)->dtype_policy().name() == "mixed_bfloat16");
    CHECK(model->get_layer("out")->dtype_policy().name() == "float32");

    // get_config writes each policy as Keras 3 does (compared with the fixture's to_json()).
    std::ifstream in(kFixtures + "mixed_bf16.json");
    const auto keras_json = nlohmann::json::parse(in);
    for (const auto& layer : keras_json["config"]["layers"]) {
        if (layer["class_name"] == "InputLayer") continue;
        const std::string name = layer["config"]["name"];
        CHECK_MESSAGE(model->get_layer(name)->get_config()["dtype"] == layer["config"]["dtype"], name);
    }

    const std::string path = (std::filesystem::temp_directory_path() / "kerascpp_mixed_bf16_roundtrip.h5").string();
    model->save(path);
    const auto again = keras::models::load_model(path);
    std::remove(path.c_str());
    CHECK(again->get_layer("lstm")->dtype_policy().name() == "mixed_bfloat16");
    CHECK(again->get_layer("out")->dtype_policy().name() == "float32");
    const Tensor ids = Tensor(std::vector<int32_t>(24, 3), {2, 12});
    CHECK(identical(model->predict(ids, {.verbose = 0}), again->predict(ids, {.verbose = 0})));

    // A policy kerascpp cannot run is refused, naming the layer.
    auto config = keras_json["config"]["layers"][2]["config"];
    config["dtype"]["config"]["name"] = "bfloat16";
    const std::string message =
        message_of([&] { layers::layer_from_config("LSTM", config, {.keras_major = 3, .file = "edited.h5"}); });
    CHECK(message.find("Layer \"lstm\" (LSTM) in file 'edited.h5'") != std::string::npos);
    CHECK(message.find("field `dtype`") != std::string::npos);
    CHECK(message.find("is not supported (float32, mixed_bfloat16 or mixed_float16)") != std::string::npos);

    // Keras 2 wrote a Policy object (tf.keras.mixed_precision.Policy); a missing dtype is the global policy.
    config["dtype"] = nlohmann::json::parse(R"({"class_name": "Policy", "config": {"name": "mixed_bfloat16"}})");
    CHECK(layers::layer_from_config("LSTM", config, {.keras_major = 2, .file = "k2.h5"})->dtype_policy().name() ==
          "mixed_bfloat16");
    config.erase("dtype");
    mp::set_global_policy("mixed_bfloat16");
    CHECK(layers::layer_from_config("LSTM", config, {.keras_major = 3, .file = "k3.h5"})->compute_dtype() == "bfloat16");
}

// Run by the mixed_precision_no_bf16_isa test (tests/meson.build), with oneDNN's ISA capped below
// AVX512_BF16 as on an older CPU: the real ISA query, not the override, sends the model to float32.
TEST_CASE("a CPU without AVX512_BF16 runs mixed_bfloat16 layers in float32") {
    PolicyGuard guard;
    const char* isa = std::getenv("DNNL_MAX_CPU_ISA");
    if (!isa || std::string(isa) != "AVX512_CORE") {
        MESSAGE("needs DNNL_MAX_CPU_ISA=AVX512_CORE (the mixed_precision_no_bf16_isa test sets it)");
        return;
    }
    CHECK(cpu_bf16_reason() == "this CPU lacks AVX512_BF16 and AMX (oneDNN's effective ISA)");
    const auto c = compare([](const std::string& d) { return std::make_shared<layers::GRU>(5, layers::GRUOptions{.dtype = d}); },
                           wavy({3, 4, 6}, 0.2, 0.5, 1.0), {-1, 4, 6});
    CHECK(identical(c.bf16.y, c.f32.y));
    CHECK(identical(c.bf16.dx, c.f32.dx));
    keras::Sequential model;
    model.add(layers::Input({4, 6}));
    model.add(layers::GRU(5, {.dtype = "mixed_bfloat16"}));
    std::ostringstream out;
    model.summary(&out);
    CHECK(out.str().find("runs on: GEMM-step gru (oneDNN matmul) in training; oneDNN lbr_gru in inference, in float32 "
                         "(this CPU lacks AVX512_BF16 and AMX") != std::string::npos);
    CHECK(out.str().find("Mixed precision: 1 layer(s) with policy mixed_bfloat16 run in float32: this CPU lacks "
                         "AVX512_BF16 and AMX (oneDNN's effective ISA)") != std::string::npos);
}
