// save_weights / load_weights: files written by real Keras (tests/fixtures/gen_weights_fixtures.py)
// load and predict what Keras predicted; our files round-trip bit for bit in both layouts and have
// Keras's structure; bad files and mismatched models fail with messages naming what is wrong, and
// leave the model untouched.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <keras/keras.hpp>

#include "saving/h5_file.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "h5";

nlohmann::json fixtures() {
    std::ifstream in(kFixtures / "weights_fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

// The fixtures' architecture: Input((5,), int32) -> Embedding(12, 4) -> LSTM(3, seq) -> GRU(2) -> Dense(1, sigmoid).
std::shared_ptr<Sequential> fixture_model(int64_t lstm_units = 3) {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({5}, {.dtype = DType::int32}));
    model->add(layers::Embedding(12, 4));
    model->add(layers::LSTM(lstm_units, {.return_sequences = true}));
    model->add(layers::GRU(2));
    model->add(layers::Dense(1, "sigmoid"));
    return model;
}

Tensor fixture_x(const nlohmann::json& f) {
    std::vector<std::vector<int32_t>> rows = f["x"].get<std::vector<std::vector<int32_t>>>();
    return Tensor::from_rows(rows);
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
}

// A temporary directory removed at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / fmt::format("kerascpp_weights_{}_{}", ::getpid(), counter()++);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
    static int& counter() { static int n = 0; return n; }
};

// Every layer kind that has weights, and some that do not; two layers of one class (Keras 3 paths
// count them: dense, dense_1).
std::shared_ptr<Sequential> all_layers_model() {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({6}, {.dtype = DType::int32}));
    model->add(layers::Embedding(20, 5));
    model->add(layers::SimpleRNN(4, {.return_sequences = true}));
    model->add(layers::LSTM(3, {.return_sequences = true}));
    model->add(layers::GRU(3, {.return_sequences = true, .reset_after = false}));
    model->add(layers::GRU(2, {.return_sequences = true}));
    model->add(layers::GlobalAveragePooling1D());
    model->add(layers::Dense(4, "relu"));
    model->add(layers::Dropout(0.3f));
    model->add(layers::Dense(1, "sigmoid"));
    return model;
}

Tensor ids(int64_t n, int64_t t, int vocab, int salt) {
    std::vector<std::vector<int32_t>> rows(n, std::vector<int32_t>(t));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < t; ++j) rows[i][j] = static_cast<int32_t>((i * 7 + j * 3 + salt) % vocab);
    return Tensor::from_rows(rows);
}

bool same_weights(const Model& a, const Model& b) {
    const auto wa = a.get_weights(), wb = b.get_weights();
    if (wa.size() != wb.size()) return false;
    for (size_t i = 0; i < wa.size(); ++i)
        if (wa[i].shape() != wb[i].shape() || wa[i].to_vector<float>() != wb[i].to_vector<float>()) return false;
    return true;
}

}  // namespace

TEST_CASE("Keras 2 (tf_keras) legacy .h5 weights load and predict what Keras predicted") {
    const auto f = fixtures();
    auto model = fixture_model();
    model->load_weights((kFixtures / "tfkeras_weights.h5").string());
    const Tensor pred = model->predict(fixture_x(f), {.verbose = 0});
    check_close(pred.to_vector<float>(), f["tfkeras_predictions"].get<std::vector<double>>(), 1e-5);
}

TEST_CASE("Keras 2.0.x-style weights (fixed-length strings, old weight names) load by position") {
    const auto f = fixtures();
    auto model = fixture_model();
    model->load_weights((kFixtures / "keras2_0_weights.h5").string());
    const Tensor pred = model->predict(fixture_x(f), {.verbose = 0});
    check_close(pred.to_vector<float>(), f["tfkeras_predictions"].get<std::vector<double>>(), 1e-5);
}

TEST_CASE("Keras 3 .weights.h5 loads with Adam's state: predictions and the next step match Keras") {
    const auto f = fixtures();
    auto model = fixture_model();
    model->compile(optimizers::Adam(0.5f), "binary_crossentropy");   // the file's learning rate must win
    model->load_weights((kFixtures / "keras3.weights.h5").string());
    CHECK(model->optimizer().iterations == 2);
    CHECK(model->optimizer().learning_rate == doctest::Approx(f["keras3_adam_learning_rate"].get<double>()));
    const Tensor x = fixture_x(f);
    check_close(model->predict(x, {.verbose = 0}).to_vector<float>(), f["keras3_predictions"].get<std::vector<double>>(),
                1e-5);

    const auto y_values = f["y"].get<std::vector<double>>();
    model->train_on_batch(x, test_helpers::floats(y_values, {static_cast<int64_t>(y_values.size()), 1}));
    const auto after = f["keras3_weights_after_one_more_step"];
    const auto weights = model->get_weights();
    REQUIRE(weights.size() == after.size());
    for (size_t i = 0; i < weights.size(); ++i) {
        INFO("weight " << i);
        check_close(weights[i].to_vector<float>(), after[i].get<std::vector<double>>(), 2e-5);
    }
}

TEST_CASE("Our weights files round-trip bit for bit in both layouts, for every layer kind") {
    TempDir dir;
    for (const std::string name : {"w.h5", "w.weights.h5"}) {
        CAPTURE(name);
        utils::set_random_seed(1);
        auto a = all_layers_model();
        utils::set_random_seed(2);
        auto b = all_layers_model();
        REQUIRE_FALSE(same_weights(*a, *b));
        a->save_weights(dir.file(name));
        b->load_weights(dir.file(name));
        CHECK(same_weights(*a, *b));
        const Tensor x = ids(7, 6, 20, 1);
        CHECK(a->predict(x, {.verbose = 0}).to_vector<float>() == b->predict(x, {.verbose = 0}).to_vector<float>());
        // Only the file itself is left in the directory (the temporary file was renamed over it).
        std::set<std::string> files;
        for (const auto& e : fs::directory_iterator(dir.path)) files.insert(e.path().filename().string());
        CHECK(files.count(name) == 1);
        for (const auto& file : files) CHECK(file.find(".tmp") == std::string::npos);
        fs::remove(dir.file(name));
    }
}

TEST_CASE("Optimizer state round-trips through .weights.h5: the next steps are identical") {
    TempDir dir;
    struct Case {
        const char* what;
        std::function<optimizers::OptimizerPtr()> make;
    };
    const std::vector<Case> cases = {
        {"Adam amsgrad", [] { return std::make_shared<optimizers::Adam>(optimizers::AdamOptions{.learning_rate = 0.01f, .amsgrad = true}); }},
        {"RMSprop momentum centered", [] { return std::make_shared<optimizers::RMSprop>(optimizers::RMSpropOptions{.learning_rate = 0.01f, .momentum = 0.5f, .centered = true}); }},
        {"SGD momentum", [] { return std::make_shared<optimizers::SGD>(optimizers::SGDOptions{.learning_rate = 0.05f, .momentum = 0.9f}); }},
    };
    const Tensor x = ids(8, 5, 12, 2);
    const Tensor y = test_helpers::floats({0, 1, 1, 0, 1, 0, 0, 1}, {8, 1});
    for (const auto& c : cases) {
        CAPTURE(c.what);
        utils::set_random_seed(3);
        auto a = fixture_model();
        a->compile(c.make(), losses::get("binary_crossentropy"));
        a->train_on_batch(x, y);
        a->train_on_batch(x, y);
        a->save_weights(dir.file("opt.weights.h5"));
        utils::set_random_seed(4);
        auto b = fixture_model();
        b->compile(c.make(), losses::get("binary_crossentropy"));
        b->load_weights(dir.file("opt.weights.h5"));
        CHECK(b->optimizer().iterations == 2);
        for (int step = 0; step < 3; ++step) {
            a->train_on_batch(x, y);
            b->train_on_batch(x, y);
        }
        CHECK(same_weights(*a, *b));
    }
}

TEST_CASE("A different optimizer than the saved one: weights load, its state is skipped with a warning") {
    const auto f = fixtures();
    auto model = fixture_model();
    model->compile(optimizers::SGD(0.1f), "binary_crossentropy");
    std::ostringstream err;
    auto* old = std::cerr.rdbuf(err.rdbuf());
    model->load_weights((kFixtures / "keras3.weights.h5").string());
    std::cerr.rdbuf(old);
    CHECK(err.str().starts_with("WARNING: Skipping variable loading for optimizer 'SGD', because it has 2 variables "
                                "whereas the saved optimizer has 20 variables"));
    CHECK(model->optimizer().iterations == 0);
    check_close(model->predict(fixture_x(f), {.verbose = 0}).to_vector<float>(),
                f["keras3_predictions"].get<std::vector<double>>(), 1e-5);
}

TEST_CASE("Our files have Keras's structure") {
    TempDir dir;
    auto model = fixture_model();
    model->compile(optimizers::Adam(), "binary_crossentropy");
    model->save_weights(dir.file("legacy.h5"));
    model->save_weights(dir.file("k3.weights.h5"));

    const auto legacy = saving::H5File::open(dir.file("legacy.h5"));
    const std::vector<std::string> layer_names = {model->layers()[0]->name(), model->layers()[1]->name(),
                                                  model->layers()[2]->name(), model->layers()[3]->name()};
    CHECK(legacy.string_array_attr("layer_names") == layer_names);
    CHECK(legacy.string_attr("backend") == "tensorflow");
    CHECK_FALSE(legacy.string_attr("keras_version").empty());
    CHECK(legacy.string_attr("kerascpp_version") == keras::version());   // which program wrote it
    const std::string lstm = layer_names[1];
    CHECK(legacy.group(lstm).string_array_attr("weight_names") ==
          std::vector<std::string>{lstm + "/lstm_cell/kernel:0", lstm + "/lstm_cell/recurrent_kernel:0",
                                   lstm + "/lstm_cell/bias:0"});
    CHECK(legacy.group(lstm).dataset_shape(lstm + "/lstm_cell/kernel:0") == std::vector<int64_t>{4, 12});
    CHECK(legacy.group(layer_names[2]).dataset_shape(layer_names[2] + "/gru_cell/bias:0") == std::vector<int64_t>{2, 6});

    const auto k3 = saving::H5File::open(dir.file("k3.weights.h5"));
    CHECK(k3.dataset_shape("layers/embedding/vars/0") == std::vector<int64_t>{12, 4});
    CHECK(k3.dataset_shape("layers/lstm/cell/vars/1") == std::vector<int64_t>{3, 12});
    CHECK(k3.dataset_shape("layers/gru/cell/vars/2") == std::vector<int64_t>{2, 6});
    CHECK(k3.dataset_shape("layers/dense/vars/0") == std::vector<int64_t>{2, 1});
    CHECK(k3.has_group("layers/lstm/vars"));
    CHECK(k3.has_group("vars"));
    CHECK(k3.string_attr("kerascpp_version") == keras::version());
    // Adam: iterations, learning rate, then momentum and velocity of each of the 9 trainable weights.
    CHECK(k3.dataset_shape("optimizer/vars/0").empty());
    CHECK(k3.dataset_shape("optimizer/vars/2") == std::vector<int64_t>{12, 4});
    CHECK(k3.dataset_shape("optimizer/vars/3") == std::vector<int64_t>{12, 4});
    CHECK(k3.dataset_shape("optimizer/vars/4") == std::vector<int64_t>{4, 12});
    CHECK(k3.has_dataset("optimizer/vars/19"));
    CHECK_FALSE(k3.has_dataset("optimizer/vars/20"));
}

TEST_CASE("load_weights errors name the file, the layer and the shapes, and load nothing") {
    TempDir dir;
    const std::string legacy = (kFixtures / "tfkeras_weights.h5").string();
    const std::string k3 = (kFixtures / "keras3.weights.h5").string();

    SUBCASE("a weight of the wrong shape (legacy)") {
        auto model = fixture_model(4);
        const auto before = model->get_weights();
        const std::string msg = message_of<ValueError>([&] { model->load_weights(legacy); });
        CHECK(msg.find("Shape mismatch in layer #1 (named " + model->layers()[1]->name() + ")") != std::string::npos);
        CHECK(msg.find("Weight expects shape (4, 16)") != std::string::npos);
        CHECK(msg.find("Received saved weight with shape (4, 12)") != std::string::npos);
        CHECK(msg.find("tfkeras_weights.h5") != std::string::npos);
        const auto after = model->get_weights();
        for (size_t i = 0; i < before.size(); ++i) CHECK(before[i].to_vector<float>() == after[i].to_vector<float>());
    }
    SUBCASE("a weight of the wrong shape (Keras 3)") {
        auto model = fixture_model(4);
        const auto before = model->get_weights();
        const std::string msg = message_of<ValueError>([&] { model->load_weights(k3); });
        CHECK(msg.find("Layer '" + model->layers()[1]->name() + "'") != std::string::npos);
        CHECK(msg.find("expects shape (4, 16), but the file has shape (4, 12)") != std::string::npos);
        CHECK(msg.find("layers/lstm/cell/vars/0") != std::string::npos);
        CHECK(before[0].to_vector<float>() == model->get_weights()[0].to_vector<float>());
    }
    SUBCASE("a different number of layers") {
        auto model = fixture_model();
        model->add(layers::Dense(1));
        CHECK(message_of<ValueError>([&] { model->load_weights(legacy); }) ==
              "Layer count mismatch when loading weights from file " + legacy +
                  ". Model expected 5 layers, found 4 saved layers.");
        const std::string msg = message_of<ValueError>([&] { model->load_weights(k3); });
        CHECK(msg.find("has 2 weights, but the file has no group 'layers/dense_1/vars'") != std::string::npos);
    }
    SUBCASE("a layer with a different number of weights") {
        auto model = std::make_shared<Sequential>();
        model->add(layers::Input({5}, {.dtype = DType::int32}));
        model->add(layers::Embedding(12, 4));
        model->add(layers::LSTM(3, {.use_bias = false, .return_sequences = true}));
        model->add(layers::GRU(2));
        model->add(layers::Dense(1, "sigmoid"));
        const std::string msg = message_of<ValueError>([&] { model->load_weights(legacy); });
        CHECK(msg.find("expects 2 weights, but the saved weights have 3 elements") != std::string::npos);
        CHECK(message_of<ValueError>([&] { model->load_weights(k3); }).find("expected 2 variables, but received 3") !=
              std::string::npos);
    }
    SUBCASE("not an HDF5 file, missing, empty HDF5, truncated") {
        auto model = fixture_model();
        std::ofstream(dir.file("text.h5")) << "not hdf5";
        CHECK(message_of<ValueError>([&] { model->load_weights(dir.file("text.h5")); }).find("text.h5") !=
              std::string::npos);
        CHECK(message_of<ValueError>([&] { model->load_weights(dir.file("missing.h5")); }).find("missing.h5") !=
              std::string::npos);
        saving::H5File::create(dir.file("empty.h5")).close();
        CHECK(message_of<ValueError>([&] { model->load_weights(dir.file("empty.h5")); }).find(
                  "not a Keras weights file") != std::string::npos);
        fs::copy_file(legacy, dir.file("cut.h5"));
        fs::resize_file(dir.file("cut.h5"), fs::file_size(legacy) / 2);
        const std::string cut = message_of<std::exception>([&] { model->load_weights(dir.file("cut.h5")); });
        CHECK(cut.find("cut.h5") != std::string::npos);
    }
    SUBCASE("listed groups or weights missing") {
        auto model = fixture_model();
        {
            auto file = saving::H5File::create(dir.file("no_group.h5"));
            file.write_string_array_attr("layer_names", {"embedding", "lstm"});
            file.close();
        }
        CHECK(message_of<ValueError>([&] { model->load_weights(dir.file("no_group.h5")); }).find(
                  "layer_names lists layer 'embedding' but the file has no group for it") != std::string::npos);
        {
            auto file = saving::H5File::create(dir.file("no_dataset.h5"));
            file.write_string_array_attr("layer_names", {"embedding"});
            file.create_group("embedding").write_string_array_attr("weight_names", {"embedding/embeddings:0"});
            file.close();
        }
        Sequential one_layer;
        one_layer.add(layers::Input({5}, {.dtype = DType::int32}));
        one_layer.add(layers::Embedding(12, 4));
        const std::string msg = message_of<ValueError>([&] { one_layer.load_weights(dir.file("no_dataset.h5")); });
        CHECK_MESSAGE(msg.find("weight 'embedding/embeddings:0' is listed in weight_names but missing") !=
                          std::string::npos, msg);
    }
}

TEST_CASE("save_weights: file name rules, overwrite=false, unbuilt models") {
    TempDir dir;
    auto model = fixture_model();
    CHECK(message_of<ValueError>([&] { model->save_weights(dir.file("w.txt")); }) ==
          "save_weights(): the filename must end in `.weights.h5` (Keras 3's layout) or `.h5` (Keras's legacy layout). "
          "Received: filepath=" + dir.file("w.txt"));
    model->save_weights(dir.file("w.h5"));
    const auto size = fs::file_size(dir.file("w.h5"));
    CHECK(message_of<ValueError>([&] { model->save_weights(dir.file("w.h5"), false); }).find("already exists") !=
          std::string::npos);
    CHECK(fs::file_size(dir.file("w.h5")) == size);

    Sequential unbuilt;
    unbuilt.add(layers::Dense(2));
    CHECK(message_of<ValueError>([&] { unbuilt.load_weights(dir.file("w.h5")); }).find("it is not built yet") !=
          std::string::npos);
}

// ---------------------------------------------------------------- Keras 3 layout: wrappers and functional models

namespace {

// tests/fixtures/gen_keras3_wrapper_weights.py's two models.
std::shared_ptr<Model> wrapper_weights_model(const std::string& name) {
    if (name == "keras3_wrappers") {
        auto model = std::make_shared<Sequential>();
        model->add(layers::Input({5, 3}));
        model->add(layers::Bidirectional(layers::LSTM(4, {.return_sequences = true})));
        model->add(layers::TimeDistributed(layers::Dense(2)));
        model->add(layers::Bidirectional(layers::GRU(3), {.merge_mode = "sum"}));
        model->add(layers::Dense(1));
        return model;
    }
    const auto a = Input({4}, {.dtype = DType::int32}), b = Input({4, 3});
    auto call = [](auto layer, const auto& x) { return (*share(std::move(layer)))(x); };
    const auto joined = call(layers::Concatenate(), std::vector<KerasTensor>{call(layers::Embedding(7, 3), a), b});
    const auto out1 = call(layers::Dense(1), call(layers::LSTM(2), joined));
    const auto out2 = call(layers::Dense(2), call(layers::Bidirectional(layers::SimpleRNN(2)),
                                                  call(layers::TimeDistributed(layers::Dense(2)), b)));
    return std::make_shared<Model>(std::vector<KerasTensor>{a, b}, std::vector<KerasTensor>{out1, out2});
}

std::vector<Tensor> wrapper_weights_inputs(const nlohmann::json& c) {
    std::vector<Tensor> xs;
    for (const auto& x : c["inputs"]) {
        const auto shape = x["shape"].get<Shape>();
        if (c["name"] == "keras3_functional" && xs.empty()) {   // token ids
            const auto v = x["values"].get<std::vector<int32_t>>();
            xs.emplace_back(v, shape);
        } else {
            xs.push_back(test_helpers::floats(x["values"].get<std::vector<double>>(), shape));
        }
    }
    return xs;
}

}  // namespace

TEST_CASE("Keras 3 .weights.h5 with Bidirectional, TimeDistributed and functional models: both ways, Keras's paths") {
    std::ifstream in(kFixtures / "keras3_wrapper_weights.json");
    REQUIRE(in.good());
    const auto fixture = nlohmann::json::parse(in);
    for (const auto& c : fixture["cases"]) {
        const std::string name = c["name"];
        INFO(name);
        // Real Keras's file loads and predicts what Keras predicted.
        auto model = wrapper_weights_model(name);
        model->load_weights((kFixtures / (name + ".weights.h5")).string());
        const auto xs = wrapper_weights_inputs(c);
        const auto predictions = model->predict(xs, {.verbose = 0});
        REQUIRE(predictions.size() == c["predictions"].size());
        for (size_t i = 0; i < predictions.size(); ++i)
            check_close(predictions[i].to_vector<float>(), c["predictions"][i].get<std::vector<double>>(), 1e-5);

        // Ours has every dataset of Keras's file at the same path, with the same shape and values.
        TempDir dir;
        model->save_weights(dir.file("ours.weights.h5"));
        const auto ours = saving::H5File::open(dir.file("ours.weights.h5"));
        const auto keras_file = saving::H5File::open((kFixtures / (name + ".weights.h5")).string());
        for (const auto& [p, shape] : c["datasets"].items()) {
            const std::string path = p;   // INFO's lambda cannot capture a structured binding in clang 14
            INFO(path);
            REQUIRE(ours.has_dataset(path));
            CHECK(ours.dataset_shape(path) == shape.get<std::vector<int64_t>>());
            const auto any_shape = [](const std::vector<int64_t>&) {};
            CHECK(ours.read_dataset(path, any_shape).values == keras_file.read_dataset(path, any_shape).values);
        }
        // ... and nothing else: each vars group holds only the datasets Keras's does.
        for (const auto& [path, shape] : c["datasets"].items()) {
            const std::string group = path.substr(0, path.rfind('/'));
            const size_t next = std::stoul(path.substr(path.rfind('/') + 1)) + 1;
            if (!c["datasets"].contains(group + "/" + std::to_string(next)))
                CHECK_FALSE(ours.has_dataset(group + "/" + std::to_string(next)));
        }
        CHECK(ours.has_group(name == "keras3_wrappers" ? "layers/bidirectional/forward_layer/vars"
                                                       : "layers/input_layer_1/vars"));

        if (const char* export_dir = std::getenv("KERASCPP_EXPORT_DIR")) {
            // For `gen_keras3_wrapper_weights.py <folder>`, run by hand: real Keras loads our file.
            model->save_weights(std::string(export_dir) + "/" + name + ".weights.h5");
            nlohmann::json out = {{"inputs", nlohmann::json::array()}, {"predictions", nlohmann::json::array()}};
            for (const auto& x : xs)
                out["inputs"].push_back({{"shape", x.shape()}, {"dtype", x.dtype() == DType::int32 ? "int32" : "float32"},
                                         {"values", x.dtype() == DType::int32 ? nlohmann::json(x.to_vector<int32_t>())
                                                                              : nlohmann::json(x.to_vector<float>())}});
            for (const auto& p : predictions) out["predictions"].push_back(p.to_vector<float>());
            std::ofstream(std::string(export_dir) + "/" + name + ".json") << out.dump();
        }
    }
}
