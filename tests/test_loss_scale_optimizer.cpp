// optimizers::LossScaleOptimizer and the mixed_float16 policy: each step against real Keras 3's
// LossScaleOptimizer (tests/fixtures/gen_loss_scale_fixtures.py: the variable, dynamic_scale,
// step_counter and iterations after gradients with inf and NaN in them); fit with loss scaling
// against fit without (bit for bit while nothing overflows: the scale is a power of two); an
// overflowing scale skipping steps; compile's wrapping under mixed_float16; and a Keras 3 model file
// and weights file holding a LossScaleOptimizer's state, loaded and saved in Keras's layout.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <keras/keras.hpp>

#include "saving/h5_file.hpp"
#include "saving/optimizer_weights.hpp"
#include "saving/training_config.hpp"
#include "test_helpers.hpp"

using namespace keras;
using nlohmann::json;
using test_helpers::message_of;
namespace fs = std::filesystem;
namespace mp = keras::mixed_precision;

namespace {

const fs::path kFixtures = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "loss_scale";

json read_json(const std::string& name) {
    std::ifstream in(kFixtures / name);
    REQUIRE(in.good());
    return json::parse(in);
}

// The fixture writes inf and NaN as the strings Python prints.
float number(const json& v) {
    if (v.is_number()) return v.get<float>();
    const std::string s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<float>::infinity();
    if (s == "nan") return std::numeric_limits<float>::quiet_NaN();
    FAIL("unexpected number in the fixture: " << s);
    return 0.0f;
}

Tensor matrix(const json& rows) {
    std::vector<float> values;
    for (const auto& row : rows)
        for (const auto& v : row) values.push_back(number(v));
    return Tensor(values, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

std::vector<float> floats_of(const Tensor& t) {
    const Tensor c = t.to(Device::cpu());
    return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

// Restores the global policy however a test case ends.
struct PolicyGuard {
    ~PolicyGuard() { mp::set_global_policy("float32"); }
};

struct TempFile {
    fs::path path;
    explicit TempFile(const std::string& name)
        : path(fs::temp_directory_path() / ("kerascpp_lso_" + std::to_string(::getpid()) + "_" + name)) {}
    ~TempFile() { fs::remove(path); }
};

// The fixture model's architecture: (3,) -> Dense(4, relu) -> Dense(1, float32).
std::shared_ptr<Sequential> fixture_model() {
    auto model = std::make_shared<Sequential>("lso_model");
    model->add(layers::Input({3}));
    model->add(layers::Dense(4, {.activation = "relu", .name = "hidden"}));
    model->add(layers::Dense(1, {.name = "out", .dtype = "float32"}));
    return model;
}

const optimizers::LossScaleOptimizer& lso_of(const Model& model) {
    const auto* lso = dynamic_cast<const optimizers::LossScaleOptimizer*>(&model.optimizer());
    REQUIRE(lso != nullptr);
    return *lso;
}

std::vector<double> loss_history(const callbacks::History& history) {
    for (const auto& [name, values] : history.history)
        if (name == "loss") return values;
    FAIL("no loss in the history");
    return {};
}

std::vector<std::string> weight_names(const std::string& path) {
    const saving::H5File file = saving::H5File::open(path);
    return file.group("optimizer_weights").string_array_attr("weight_names");
}

}  // namespace

TEST_CASE("LossScaleOptimizer follows Keras 3 step by step: skips and halves on inf / NaN, grows after the growth steps") {
    const json traces = read_json("trace.json");
    for (const std::string name : {"sgd", "adam"}) {
        CAPTURE(name);
        const json& trace = traces[name];
        optimizers::OptimizerPtr inner;
        if (name == "sgd") inner = std::make_shared<optimizers::SGD>(optimizers::SGDOptions{.learning_rate = 0.1f, .momentum = 0.9f});
        else inner = std::make_shared<optimizers::Adam>(0.01);
        optimizers::LossScaleOptimizer opt(inner, {.initial_scale = 8.0f, .dynamic_growth_steps = 3});
        auto var = std::make_shared<Variable>(Variable{.name = "w", .value = matrix(trace["initial"])});
        int step = 0;
        for (const auto& s : trace["steps"]) {
            CAPTURE(step++);
            const std::vector<float> before = floats_of(var->value);
            opt.apply({matrix(s["grad"])}, {var});
            const std::vector<float> got = floats_of(var->value);
            const Tensor want = matrix(s["value"]);
            for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want.data<float>()[i]).epsilon(1e-6));
            CHECK(opt.dynamic_scale == s["dynamic_scale"].get<float>());
            CHECK(opt.step_counter == s["step_counter"].get<int64_t>());
            CHECK(opt.iterations == s["iterations"].get<int64_t>());
            // A skipped step leaves the variable exactly as it was.
            if (opt.step_counter == 0 && opt.dynamic_scale < 8.0f) CHECK(got == before);
        }
    }
}

TEST_CASE("fit with loss scaling trains bit for bit as without while nothing overflows") {
    // Regularizers on a weight and on an activity: their gradients must be scaled with the loss's.
    const auto make = [] {
        auto model = fixture_model();
        model->add(layers::Dense(2, {.kernel_regularizer = regularizers::L2(0.01f), .name = "extra"}));
        model->get_layer("hidden")->activity_regularizer = regularizers::L2(0.001f);
        return model;
    };
    auto plain = make(), scaled = make();
    scaled->set_weights(plain->get_weights());
    plain->compile(optimizers::Adam(0.01), "mse");
    scaled->compile(std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::Adam>(0.01)), "mse");
    const Tensor x = test_helpers::wavy({40, 3}, 0.3, 1.7, 1.0);
    const Tensor y = test_helpers::wavy({40, 2}, 1.1, 0.9, 0.5);
    const auto h1 = plain->fit(x, y, {.batch_size = 8, .epochs = 2, .shuffle = false, .verbose = 0});
    const auto h2 = scaled->fit(x, y, {.batch_size = 8, .epochs = 2, .shuffle = false, .verbose = 0});
    const auto w1 = plain->get_weights(), w2 = scaled->get_weights();
    REQUIRE(w1.size() == w2.size());
    for (size_t i = 0; i < w1.size(); ++i) CHECK(floats_of(w1[i]) == floats_of(w2[i]));
    CHECK(loss_history(h1) == loss_history(h2));   // the logged loss is the unscaled one
    const auto& lso = lso_of(*scaled);
    CHECK(lso.iterations == 10);
    CHECK(lso.step_counter == 10);
    CHECK(lso.dynamic_scale == 32768.0f);
}

TEST_CASE("a scale that makes the gradients overflow skips those steps and halves until they fit") {
    auto model = fixture_model();
    const float huge = std::ldexp(1.0f, 127);
    model->compile(std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::SGD>(0.01),
                                                                   optimizers::LossScaleOptimizerOptions{.initial_scale = huge}),
                   "mse");
    const std::vector<Tensor> before = model->get_weights();
    // Targets of 100: the loss's gradient alone, times 2^127, is past float's range.
    const Tensor x = test_helpers::wavy({64, 3}, 0.2, 1.3, 1.0);
    const Tensor y = Tensor::full({64, 1}, 100.0f);
    model->fit(x, y, {.batch_size = 8, .epochs = 1, .shuffle = false, .verbose = 0});
    const auto& lso = lso_of(*model);
    const int halvings = static_cast<int>(std::lround(std::log2(huge / lso.dynamic_scale)));
    CHECK(halvings >= 1);
    CHECK(lso.dynamic_scale == std::ldexp(huge, -halvings));
    CHECK(lso.iterations + halvings == 8);   // every batch either updated or was skipped
    CHECK(model->get_weights().size() == before.size());
    CHECK(floats_of(model->get_weights()[0]) != floats_of(before[0]));   // the later steps trained
    CHECK(message_of([] { optimizers::LossScaleOptimizer(nullptr); }) == "LossScaleOptimizer: the inner optimizer is null");
    CHECK(message_of([] {
              optimizers::LossScaleOptimizer(std::make_shared<optimizers::SGD>(), {.initial_scale = 0.0f});
          }).find("`initial_scale` must be a positive finite number") != std::string::npos);
    CHECK(message_of([] {
              optimizers::LossScaleOptimizer(std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::SGD>()));
          }) == "LossScaleOptimizer: the inner optimizer is already a LossScaleOptimizer");
}

TEST_CASE("mixed_float16: compile wraps the optimizer (auto_scale_loss), layers compute in float32 and summary() says so") {
    PolicyGuard guard;
    mp::set_global_policy("mixed_float16");
    CHECK(mp::global_policy().compute_dtype() == "float16");
    CHECK(mp::global_policy().variable_dtype() == "float32");
    auto model = fixture_model();
    CHECK(model->dtype_policy().name() == "mixed_float16");
    CHECK(model->get_layer("hidden")->compute_dtype() == "float16");
    CHECK(model->get_layer("out")->compute_dtype() == "float32");
    model->compile(optimizers::Adam(0.01), "mse");
    CHECK(model->optimizer().name() == "LossScaleOptimizer");
    CHECK(lso_of(*model).inner_optimizer()->name() == "Adam");
    CHECK(model->optimizer().learning_rate == doctest::Approx(0.01));

    auto unscaled = fixture_model();
    unscaled->compile(optimizers::Adam(0.01), "mse", CompileOptions{.auto_scale_loss = false});
    CHECK(unscaled->optimizer().name() == "Adam");
    // A LossScaleOptimizer given is kept, not wrapped twice.
    auto given = fixture_model();
    const auto lso = std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::SGD>(),
                                                                      optimizers::LossScaleOptimizerOptions{.initial_scale = 4.0f});
    given->compile(lso, "mse");
    CHECK(&given->optimizer() == lso.get());
    mp::set_global_policy("float32");

    std::ostringstream summary;
    model->summary(&summary);
    CHECK(summary.str().find("Mixed precision: 1 layer(s) with policy mixed_float16 run in float32: no backend has "
                             "float16 kernels yet") != std::string::npos);
    const Tensor x = test_helpers::wavy({16, 3}, 0.2, 1.3, 1.0);
    const auto history = model->fit(x, Tensor::full({16, 1}, 0.5f), {.batch_size = 4, .epochs = 2, .verbose = 0});
    CHECK(std::isfinite(loss_history(history).back()));
    CHECK(lso_of(*model).iterations == 8);
}

TEST_CASE("a Keras 3 model file with a LossScaleOptimizer loads with its state and saves in Keras's layout") {
    const json state = read_json("model.json");
    const std::string keras_file = (kFixtures / "model.h5").string();
    auto model = models::load_model(keras_file);
    CHECK(model->get_layer("hidden")->dtype_policy().name() == "mixed_float16");
    CHECK(model->get_layer("out")->dtype_policy().name() == "float32");
    const auto& lso = lso_of(*model);
    CHECK(lso.inner_optimizer()->name() == "Adam");
    CHECK(lso.initial_scale == 32768.0f);
    CHECK(lso.dynamic_growth_steps == 2000);
    CHECK(lso.dynamic_scale == state["dynamic_scale"].get<float>());
    CHECK(lso.step_counter == state["step_counter"].get<int64_t>());
    CHECK(lso.iterations == state["iterations"].get<int64_t>());
    CHECK(lso.learning_rate == doctest::Approx(0.01));
    REQUIRE(!lso.slots(*model->trainable_weights()[0]).empty());
    // Keras computed in float16: its predictions agree with ours (float32) to float16's precision.
    std::vector<float> xs;
    for (const auto& row : state["x"])
        for (const auto& v : row) xs.push_back(v.get<float>());
    const auto got = floats_of(model->predict(Tensor(xs, {20, 3}), {.verbose = 0}));
    for (size_t i = 0; i < got.size(); ++i)
        CHECK(got[i] == doctest::Approx(state["predictions"][i][0].get<double>()).epsilon(1e-2).scale(1.0));

    // Saved again: Keras's dataset names in Keras's order, the same state read back.
    TempFile ours("model.h5");
    model->save(ours.path.string());
    CHECK(weight_names(ours.path.string()) == weight_names(keras_file));
    auto again = models::load_model(ours.path.string());
    const auto& back = lso_of(*again);
    CHECK(back.dynamic_scale == lso.dynamic_scale);
    CHECK(back.step_counter == lso.step_counter);
    CHECK(back.iterations == lso.iterations);
    const auto trainable = model->trainable_weights(), trainable_again = again->trainable_weights();
    for (size_t v = 0; v < trainable.size(); ++v) {
        const auto a = lso.slots(*trainable[v]), b = back.slots(*trainable_again[v]);
        REQUIRE(a.size() == 2);
        REQUIRE(b.size() == 2);
        for (size_t s = 0; s < a.size(); ++s) CHECK(floats_of(a[s]) == floats_of(b[s]));
    }
    // Training goes on from the loaded state.
    again->fit(Tensor(xs, {20, 3}), Tensor::full({20, 1}, 0.1f), {.batch_size = 20, .epochs = 1, .verbose = 0});
    CHECK(back.step_counter == lso.step_counter + 1);
    CHECK(back.iterations == lso.iterations + 1);
}

TEST_CASE("Keras 3's weights file with a LossScaleOptimizer: its state loads, and ours has Keras's groups") {
    PolicyGuard guard;
    const json state = read_json("model.json");
    mp::set_global_policy("mixed_float16");
    auto model = fixture_model();
    model->compile(optimizers::Adam(0.01), "mse");
    mp::set_global_policy("float32");
    model->load_weights((kFixtures / "model.weights.h5").string());
    const auto& lso = lso_of(*model);
    CHECK(lso.dynamic_scale == state["dynamic_scale"].get<float>());
    CHECK(lso.step_counter == state["step_counter"].get<int64_t>());
    CHECK(lso.iterations == state["iterations"].get<int64_t>());

    TempFile ours("model.weights.h5");
    model->save_weights(ours.path.string());
    const saving::H5File keras_file = saving::H5File::open((kFixtures / "model.weights.h5").string());
    const saving::H5File our_file = saving::H5File::open(ours.path.string());
    for (const std::string group : {"optimizer/vars", "optimizer/inner_optimizer/vars"}) {
        CAPTURE(group);
        const auto count = [](const saving::H5Group& g) {
            size_t n = 0;
            while (g.has_dataset(std::to_string(n))) ++n;
            return n;
        };
        REQUIRE(our_file.has_group("optimizer"));
        const saving::H5Group a = group == "optimizer/vars" ? our_file.group("optimizer").group("vars")
                                                           : our_file.group("optimizer").group("inner_optimizer").group("vars");
        const saving::H5Group b = group == "optimizer/vars" ? keras_file.group("optimizer").group("vars")
                                                           : keras_file.group("optimizer").group("inner_optimizer").group("vars");
        CHECK(count(a) == count(b));
        CHECK(a.string_attr("name") == b.string_attr("name"));
    }
    auto reloaded = fixture_model();
    reloaded->compile(std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::Adam>(0.01)), "mse");
    reloaded->load_weights(ours.path.string());
    CHECK(lso_of(*reloaded).dynamic_scale == lso.dynamic_scale);
    CHECK(lso_of(*reloaded).step_counter == lso.step_counter);
    CHECK(lso_of(*reloaded).iterations == lso.iterations);
}

TEST_CASE("LossScaleOptimizer's config is Keras's and survives the training_config round trip") {
    const optimizers::LossScaleOptimizer lso(std::make_shared<optimizers::Adam>(0.002),
                                             {.initial_scale = 1024.0f, .dynamic_growth_steps = 50});
    const json config = lso.get_config();
    CHECK(config["name"] == "loss_scale_optimizer");
    CHECK(config["initial_scale"] == 1024.0);
    CHECK(config["dynamic_growth_steps"] == 50);
    CHECK(config["inner_optimizer"]["class_name"] == "Adam");
    CHECK(config["inner_optimizer"]["module"] == "keras.optimizers");
    CHECK(config["inner_optimizer"]["config"]["learning_rate"] == 0.002);
    // The Keras fixture's training_config reads back as the same optimizer.
    const saving::H5File file = saving::H5File::open((kFixtures / "model.h5").string());
    const json training = json::parse(file.string_attr("training_config"));
    CHECK(training["optimizer_config"]["class_name"] == "LossScaleOptimizer");
    auto model = models::load_model((kFixtures / "model.h5").string());
    json ours = lso_of(*model).get_config();
    json theirs = training["optimizer_config"]["config"];
    // Keras writes the float32 rate's double value (0.009999999776482582); we write 0.01.
    CHECK(ours["inner_optimizer"]["config"]["learning_rate"].get<double>() ==
          doctest::Approx(theirs["inner_optimizer"]["config"]["learning_rate"].get<double>()));
    ours["inner_optimizer"]["config"].erase("learning_rate");
    theirs["inner_optimizer"]["config"].erase("learning_rate");
    CHECK(ours == theirs);
}

TEST_CASE("lr_find puts a LossScaleOptimizer's scale and counter back as they were") {
    auto model = fixture_model();
    model->compile(std::make_shared<optimizers::LossScaleOptimizer>(std::make_shared<optimizers::SGD>(0.01),
                                                                   optimizers::LossScaleOptimizerOptions{.dynamic_growth_steps = 5}),
                   "mse");
    const Tensor x = test_helpers::wavy({64, 3}, 0.2, 1.3, 1.0);
    // A sweep to a rate of 1e4 diverges: its steps count, grow the scale, then overflow and halve it.
    model->lr_find(x, Tensor::full({64, 1}, 3.0f), {.start_lr = 1e-3, .end_lr = 1e4, .num_it = 30, .batch_size = 8,
                                                    .stop_div = false});
    const auto& lso = lso_of(*model);
    CHECK(lso.dynamic_scale == 32768.0f);
    CHECK(lso.step_counter == 0);
    CHECK(lso.iterations == 0);
}

TEST_CASE("a LossScaleOptimizer config that cannot be run is refused, naming the file and the field") {
    const auto config = [](const std::string& fields) {
        return json::parse(R"({"class_name": "LossScaleOptimizer", "config": {"name": "loss_scale_optimizer", )" + fields +
                           "}}");
    };
    const std::string adam = R"("inner_optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.5}})";
    const auto ok = saving::optimizer_from_config(config(adam + R"(, "initial_scale": 64.0, "dynamic_growth_steps": 7)"), "m.h5");
    const auto* lso = dynamic_cast<const optimizers::LossScaleOptimizer*>(ok.get());
    REQUIRE(lso != nullptr);
    CHECK(lso->dynamic_scale == 64.0f);
    CHECK(lso->dynamic_growth_steps == 7);
    CHECK(lso->learning_rate == 0.5f);
    const auto error = [&](const std::string& fields) {
        return message_of([&] { saving::optimizer_from_config(config(fields), "m.h5"); });
    };
    CHECK(error(R"("initial_scale": 2.0)") == "m.h5: the LossScaleOptimizer's config has no `inner_optimizer`");
    CHECK(error(adam + R"(, "dynamic": false)").find("m.h5: LossScaleOptimizer field `dynamic` = false is not supported") == 0);
    CHECK(error(adam + R"(, "dynamic_growth_steps": "ten")") ==
          "m.h5: LossScaleOptimizer field `dynamic_growth_steps` should be an integer, got \"ten\"");
    CHECK(error(adam + R"(, "dynamic_growth_steps": 0)") ==
          "m.h5: LossScaleOptimizer: `dynamic_growth_steps` must be at least 1. Received: dynamic_growth_steps=0");
    CHECK(error(adam + R"(, "initial_scale": -1.0)").find("m.h5: LossScaleOptimizer: `initial_scale` must be") == 0);
    CHECK(error(R"("inner_optimizer": {"class_name": "LossScaleOptimizer", "config": {}})") ==
          "m.h5: the LossScaleOptimizer's inner optimizer is a LossScaleOptimizer");
    CHECK(error(R"("inner_optimizer": {"class_name": "Nadam", "config": {}})").find("m.h5, inner_optimizer: optimizer 'Nadam' is not supported") == 0);
}

TEST_CASE("a GradientTape loop with scale_loss trains as the same loop without loss scaling") {
    auto plain = fixture_model(), scaled = fixture_model();
    scaled->set_weights(plain->get_weights());
    optimizers::Adam adam(0.01);
    optimizers::LossScaleOptimizer lso(std::make_shared<optimizers::Adam>(0.01));
    CHECK(adam.scale_loss(Tensor::full({}, 3.0f)).item(0) == 3.0f);
    CHECK(lso.scale_loss(Tensor::full({}, 3.0f)).item(0) == 3.0f * 32768.0f);
    const Tensor x = test_helpers::wavy({16, 3}, 0.2, 1.3, 1.0);
    const Tensor y = test_helpers::wavy({16, 1}, 0.7, 0.8, 0.5);
    for (int step = 0; step < 4; ++step) {
        for (auto [model, opt] : {std::pair<Sequential*, optimizers::Optimizer*>{plain.get(), &adam},
                                  std::pair<Sequential*, optimizers::Optimizer*>{scaled.get(), &lso}}) {
            GradientTape tape;
            const Tensor loss = ops::mean(ops::square(ops::subtract((*model)(x, {.training = true}), y)));
            const auto grads = tape.gradient(opt->scale_loss(loss), model->trainable_weights());
            opt->apply(grads, model->trainable_weights());
        }
    }
    const auto w1 = plain->get_weights(), w2 = scaled->get_weights();
    for (size_t i = 0; i < w1.size(); ++i) CHECK(floats_of(w1[i]) == floats_of(w2[i]));
    CHECK(lso.iterations == 4);
    CHECK(lso.step_counter == 4);
}

TEST_CASE("a loss scale that is not one number is refused, naming the dataset") {
    TempFile bad("bad_scale.h5");
    {
        const saving::H5File file = saving::H5File::create(bad.path.string());
        const saving::H5Group group = file.create_group("optimizer_weights");
        const float two[2] = {1.0f, 2.0f};
        group.write_dataset("loss_scale_optimizer/dynamic_scale", {2}, two);
        group.write_string_array_attr("weight_names", {"loss_scale_optimizer/dynamic_scale"});
    }
    const optimizers::LossScaleOptimizer lso(std::make_shared<optimizers::SGD>());
    const saving::H5File file = saving::H5File::open(bad.path.string());
    const std::string message = message_of([&] { saving::read_optimizer_weights(file, lso, {}); });
    CHECK(message.find("loss_scale_optimizer/dynamic_scale") != std::string::npos);
    CHECK(message.find("should hold one number (the loss scale), its shape is (2,)") != std::string::npos);
}
