// Model::save and keras::models::load_model: files written by REAL Keras 3, tf-keras (Keras 2) and in
// Keras 2.0.8's layout load and predict what Keras predicted (tests/fixtures/gen_h5_fixtures.py);
// our files have Keras's structure (checked with the raw HDF5 C API) and round-trip exactly; bad
// files give clear errors.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "keras/models.hpp"

using namespace keras;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

std::string temp_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / "kerascpp_test_model_file";
    fs::create_directories(dir);
    return (dir / name).string();
}

const json& fixtures() {
    static const json data = [] {
        std::ifstream in(kFixtures + "model_fixtures.json");
        REQUIRE(in.good());
        return json::parse(in);
    }();
    return data;
}

// A nested JSON list as a tensor of the given dtype.
Tensor tensor_from_json(const json& value, const std::string& dtype) {
    Shape shape;
    for (const json* v = &value; v->is_array(); v = &(*v)[0]) shape.push_back(static_cast<int64_t>(v->size()));
    std::vector<double> flat;
    std::function<void(const json&)> collect = [&](const json& v) {
        if (v.is_array()) for (const auto& item : v) collect(item);
        else flat.push_back(v.get<double>());
    };
    collect(value);
    if (dtype == "int32") return Tensor(std::vector<int32_t>(flat.begin(), flat.end()), shape);
    return Tensor(std::vector<float>(flat.begin(), flat.end()), shape);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double worst = 0;
    for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a.item(i) - b.item(i)));
    return worst;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// ---- raw HDF5 C API helpers (an independent reader of our files)

struct RawFile {
    hid_t id;
    explicit RawFile(const std::string& path, unsigned flags = H5F_ACC_RDONLY) : id(H5Fopen(path.c_str(), flags, H5P_DEFAULT)) {
        REQUIRE(id >= 0);
    }
    ~RawFile() { H5Fclose(id); }
};

std::vector<std::string> raw_strings(hid_t loc, const char* object, const char* attr_name) {
    hid_t attr = H5Aopen_by_name(loc, object, attr_name, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attr >= 0);
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    const auto n = static_cast<size_t>(H5Sget_simple_extent_npoints(space));
    std::vector<std::string> out;
    if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
        std::vector<char*> ptrs(n);
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));   // HDF5 does not convert between ASCII and UTF-8
        REQUIRE(H5Aread(attr, mem, ptrs.data()) >= 0);
        for (char* p : ptrs) out.emplace_back(p);
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
        H5Tclose(mem);
    } else if (H5Tget_class(type) == H5T_STRING) {
        const size_t size = H5Tget_size(type);
        std::vector<char> buffer(size * n);
        H5Aread(attr, type, buffer.data());
        for (size_t i = 0; i < n; ++i) out.emplace_back(buffer.data() + i * size, strnlen(buffer.data() + i * size, size));
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return out;
}

bool raw_is_variable_string(hid_t loc, const char* object, const char* attr_name) {
    hid_t attr = H5Aopen_by_name(loc, object, attr_name, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attr >= 0);
    hid_t type = H5Aget_type(attr);
    const bool vlen = H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0;
    H5Tclose(type);
    H5Aclose(attr);
    return vlen;
}

Shape raw_dataset_shape(hid_t loc, const std::string& path) {
    hid_t d = H5Dopen2(loc, path.c_str(), H5P_DEFAULT);
    REQUIRE_MESSAGE(d >= 0, path);
    hid_t s = H5Dget_space(d);
    std::vector<hsize_t> dims(static_cast<size_t>(H5Sget_simple_extent_ndims(s)));
    H5Sget_simple_extent_dims(s, dims.data(), nullptr);
    H5Sclose(s);
    H5Dclose(d);
    return Shape(dims.begin(), dims.end());
}

void raw_replace_string_attr(const std::string& path, const char* object, const char* name, const std::string& value) {
    RawFile f(path, H5F_ACC_RDWR);
    H5Adelete_by_name(f.id, object, name, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate_by_name(f.id, object, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = value.c_str();
    H5Awrite(attr, type, &p);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

std::string copy_fixture(const std::string& name, const std::string& as) {
    const std::string path = temp_path(as);
    fs::copy_file(kFixtures + name, path, fs::copy_options::overwrite_existing);
    return path;
}

json file_json_attr(const std::string& path, const char* name) {
    RawFile f(path);
    return json::parse(raw_strings(f.id, ".", name).at(0));
}

// Models with every layer and option we can save.
std::shared_ptr<Sequential> token_model() {
    auto m = std::make_shared<Sequential>("tokens_model");
    m->add(layers::Input({7}, {.dtype = DType::int32}));
    m->add(layers::Embedding(13, 4, {.embeddings_initializer = "random_normal", .name = "emb"}));
    m->add(layers::LSTM(5, {.recurrent_activation = "hard_sigmoid", .unit_forget_bias = false, .dropout = 0.25f,
                            .return_sequences = true, .name = "lstm_a"}));
    m->add(layers::GRU(3, {.activation = "relu", .return_sequences = true, .go_backwards = true, .name = "gru_after"}));
    m->add(layers::GRU(4, {.kernel_initializer = "he_uniform", .return_sequences = true, .reset_after = false,
                           .name = "gru_before"}));
    m->add(layers::GlobalAveragePooling1D({.name = "gap"}));
    m->add(layers::Dropout(0.2f, {.name = "drop"}));
    m->add(layers::Dense(3, {.activation = "softmax", .name = "out"}));
    return m;
}

std::shared_ptr<Sequential> float_model() {
    auto m = std::make_shared<Sequential>("floats_model");
    m->add(layers::Input({6, 2}));
    m->add(layers::SimpleRNN(3, {.activation = "tanh", .use_bias = false, .return_sequences = true, .name = "rnn"}));
    m->add(layers::LSTM(2, {.return_sequences = true, .go_backwards = true, .name = "lstm_b"}));
    m->add(layers::Flatten({.name = "flat"}));
    m->add(layers::Dense(4, {.use_bias = false, .kernel_initializer = "lecun_normal", .name = "hidden"}));
    m->add(layers::Activation("hard_sigmoid", {.name = "act"}));
    m->add(layers::Dense(1, {.name = "head"}));
    m->get_layer("rnn")->trainable = false;
    return m;
}

Tensor token_input(int64_t n) {
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n * 7; ++i) ids.push_back(static_cast<int32_t>((i * 5 + 3) % 13));
    return Tensor(ids, {n, 7});
}

Tensor float_input(int64_t n) {
    std::vector<float> v;
    for (int64_t i = 0; i < n * 12; ++i) v.push_back(std::sin(0.7f * static_cast<float>(i)));
    return Tensor(v, {n, 6, 2});
}

void check_same_model(Model& a, Model& b) {
    REQUIRE(a.layers().size() == b.layers().size());
    for (size_t i = 0; i < a.layers().size(); ++i) {
        CHECK(a.layers()[i]->class_name() == b.layers()[i]->class_name());
        CHECK(a.layers()[i]->get_config() == b.layers()[i]->get_config());
        CHECK(a.layers()[i]->trainable == b.layers()[i]->trainable);
    }
    const auto wa = a.weights(), wb = b.weights();
    REQUIRE(wa.size() == wb.size());
    for (size_t i = 0; i < wa.size(); ++i) CHECK(bit_equal(wa[i]->value, wb[i]->value));
}

}  // namespace

TEST_CASE("files saved by real Keras 3, tf-keras and Keras 2.0.8 load and predict what Keras predicted") {
    CHECK(fixtures().size() == 10);
    for (const auto& [name, entry] : fixtures().items()) {
        const std::string file = name;   // CAPTURE's lambda cannot capture a structured binding in clang 14
        CAPTURE(file);
        auto model = models::load_model(kFixtures + file, {.compile = false});
        const Tensor x = tensor_from_json(entry["input"], entry["input_dtype"]);
        const Tensor expected = tensor_from_json(entry["prediction"], "float32");
        const Tensor got = model->predict(x, {.verbose = 0});
        CHECK(max_abs_diff(got, expected) < 1e-5);
    }
}

TEST_CASE("the version differences the fixtures exercise are really there") {
    // Keras 2.0.8 layout: fixed-length strings, a plain list of layers, "lstm_1/kernel:0" names.
    RawFile k20(kFixtures + "model_k20_tokens.h5");
    for (const char* attr : {"keras_version", "model_config", "training_config"})
        CHECK_FALSE(raw_is_variable_string(k20.id, ".", attr));
    CHECK(raw_strings(k20.id, ".", "keras_version") == std::vector<std::string>{"2.0.8"});
    CHECK(json::parse(raw_strings(k20.id, ".", "model_config").at(0))["config"].is_array());
    CHECK(raw_strings(k20.id, "model_weights/lstm_1", "weight_names").at(0) == "lstm_1/kernel:0");
    // tf-keras: "gru/gru_cell/bias:0" of shape (2, 6) for reset_after=True.
    RawFile k2(kFixtures + "model_k2_tokens.h5");
    CHECK(raw_strings(k2.id, ".", "keras_version").at(0).rfind("2.", 0) == 0);
    CHECK(raw_dataset_shape(k2.id, "model_weights/gru/gru/gru_cell/bias:0") == Shape{2, 9});
    // The Keras 2.0 file has no InputLayer: load_model makes one from the first layer's batch_input_shape.
    auto model = models::load_model(kFixtures + "model_k20_tokens.h5");
    CHECK(model->all_layers()[0]->class_name() == "InputLayer");
    CHECK(model->layers()[0]->name() == "embedding_1");   // layers() leaves the InputLayer out, as Keras
}

TEST_CASE("a Keras 3 config without an InputLayer is built from build_input_shape") {
    const std::string path = temp_path("no_input_layer.h5");
    fs::copy_file(kFixtures + "model_k3_pooling.h5", path, fs::copy_options::overwrite_existing);
    json config = file_json_attr(path, "model_config");
    REQUIRE(config["config"]["layers"][0]["class_name"] == "InputLayer");
    config["config"]["layers"].erase(0);
    raw_replace_string_attr(path, ".", "model_config", config.dump());
    auto model = models::load_model(path, {.compile = false});
    const json& entry = fixtures()["model_k3_pooling.h5"];
    CHECK(max_abs_diff(model->predict(tensor_from_json(entry["input"], "float32"), {.verbose = 0}),
                       tensor_from_json(entry["prediction"], "float32")) < 1e-5);
    config["config"].erase("build_input_shape");
    raw_replace_string_attr(path, ".", "model_config", config.dump());
    CHECK_THROWS_WITH_AS(models::load_model(path), doctest::Contains("the model's input shape is unknown"), ValueError);
}

TEST_CASE("hard_sigmoid means what the file's Keras version says, and keeps that meaning when re-saved") {
    auto k2 = models::load_model(kFixtures + "model_k2_floats.h5", {.compile = false});
    auto k3 = models::load_model(kFixtures + "model_k3_floats.h5", {.compile = false});
    // layers()[1] (Keras's model.layers[1]) is the LSTM(recurrent_activation="hard_sigmoid") of both files.
    CHECK(k2->layers()[1]->get_config()["recurrent_activation"] == "hard_sigmoid_keras2");
    CHECK(k3->layers()[1]->get_config()["recurrent_activation"] == "hard_sigmoid");
    auto k20 = models::load_model(kFixtures + "model_k20_tokens.h5", {.compile = false});
    CHECK(k20->get_layer("lstm_1")->get_config()["recurrent_activation"] == "hard_sigmoid_keras2");

    const std::string path = temp_path("resaved_k2.h5");
    k2->save(path);
    auto again = models::load_model(path);
    const json& entry = fixtures()["model_k2_floats.h5"];
    const Tensor x = tensor_from_json(entry["input"], "float32");
    CHECK(max_abs_diff(again->predict(x, {.verbose = 0}), tensor_from_json(entry["prediction"], "float32")) < 1e-5);
    check_same_model(*k2, *again);
}

TEST_CASE("Keras 3 and tf-keras files restore the optimizer: one more step gives Keras's weights") {
    // Adam, RMSprop (momentum, centered) and SGD (momentum), in Keras 3's and in Keras 2's slot names.
    for (const std::string file : {"model_k3_tokens.h5", "model_k3_floats.h5", "model_k3_pooling.h5",
                                   "model_k2_tokens.h5", "model_k2_floats.h5", "model_k2_pooling.h5"}) {
        CAPTURE(file);
        const json& entry = fixtures()[file];
        auto model = models::load_model(kFixtures + file);
        REQUIRE(model->compiled());
        CHECK(model->optimizer().iterations == 2);
        const Tensor x = tensor_from_json(entry["step_input"], entry["input_dtype"]);
        const std::string y_dtype = file.find("tokens") != std::string::npos ? "int32" : "float32";
        model->train_on_batch(x, tensor_from_json(entry["target"], y_dtype));
        const auto weights = model->get_weights();
        REQUIRE(weights.size() == entry["weights_after_one_step"].size());
        for (size_t i = 0; i < weights.size(); ++i) {
            CAPTURE(i);
            CHECK(max_abs_diff(weights[i], tensor_from_json(entry["weights_after_one_step"][i], "float32")) < 1e-5);
        }
    }
    auto tokens = models::load_model(kFixtures + "model_k3_tokens.h5");
    CHECK(tokens->optimizer().name() == "Adam");
    CHECK(tokens->optimizer().learning_rate == doctest::Approx(0.01));
    CHECK(tokens->loss().name() == "sparse_categorical_crossentropy");
    CHECK(tokens->metric_names() == std::vector<std::string>{"accuracy"});
    // Keras 2 files: the optimizer comes back from its config (tf-keras "Custom>Adam", Keras 2.0 "lr").
    auto k2 = models::load_model(kFixtures + "model_k2_tokens.h5");
    CHECK(k2->optimizer().name() == "Adam");
    CHECK(k2->optimizer().iterations == 2);
    CHECK(k2->metric_names() == std::vector<std::string>{"accuracy"});
    auto k20 = models::load_model(kFixtures + "model_k20_tokens.h5");
    CHECK(k20->optimizer().learning_rate == doctest::Approx(0.001));
    CHECK(dynamic_cast<optimizers::Adam&>(k20->optimizer()).epsilon == doctest::Approx(1e-8));
}

TEST_CASE("round trip of every layer and option: same config, bit-exact predictions, exact resume") {
    struct Case {
        std::shared_ptr<Sequential> model;
        Tensor x, y;
        optimizers::OptimizerPtr optimizer;
        std::string loss;
        std::vector<std::string> metrics;
    };
    std::vector<Case> cases;
    cases.push_back({token_model(), token_input(6), Tensor(std::vector<int32_t>{0, 1, 2, 1, 0, 2}, {6}),
                     std::make_shared<optimizers::Adam>(optimizers::AdamOptions{.learning_rate = 0.02f, .amsgrad = true}),
                     "sparse_categorical_crossentropy", {"accuracy"}});
    cases.push_back({float_model(), float_input(5), Tensor(std::vector<float>{0.5f, -1, 2, 0, 1}, {5, 1}),
                     std::make_shared<optimizers::RMSprop>(optimizers::RMSpropOptions{.momentum = 0.3f, .centered = true,
                                                                                       .clipnorm = 1.0f}),
                     "mse", {"mae"}});
    for (auto& c : cases) {
        CAPTURE(c.model->name());
        c.model->compile(c.optimizer, losses::get(c.loss), c.metrics);
        c.model->fit(c.x, c.y, {.batch_size = 2, .epochs = 2, .shuffle = false, .verbose = 0});
        const std::string path = temp_path(c.model->name() + ".h5");
        c.model->save(path);
        auto loaded = models::load_model(path);
        check_same_model(*c.model, *loaded);
        CHECK(loaded->name() == c.model->name());
        CHECK(bit_equal(loaded->predict(c.x, {.verbose = 0}), c.model->predict(c.x, {.verbose = 0})));
        CHECK(loaded->optimizer().get_config() == c.model->optimizer().get_config());
        CHECK(loaded->optimizer().iterations == c.model->optimizer().iterations);
        CHECK(loaded->loss().name() == c.model->loss().name());
        CHECK(loaded->metric_names() == c.metrics);
        const auto wa = c.model->trainable_weights(), wb = loaded->trainable_weights();
        for (size_t i = 0; i < wa.size(); ++i) {
            const auto sa = c.model->optimizer().slots(*wa[i]), sb = loaded->optimizer().slots(*wb[i]);
            REQUIRE(sa.size() == sb.size());
            for (size_t s = 0; s < sa.size(); ++s) CHECK(bit_equal(sa[s], sb[s]));
        }
        // Two more steps on both: the same weights, bit for bit (Dropout in training mode draws from the
        // global generator, so reseed it the same way before each run).
        utils::set_random_seed(5);
        c.model->train_on_batch(c.x, c.y);
        c.model->train_on_batch(c.x, c.y);
        utils::set_random_seed(5);
        loaded->train_on_batch(c.x, c.y);
        loaded->train_on_batch(c.x, c.y);
        check_same_model(*c.model, *loaded);

        if (const char* dir = std::getenv("KERASCPP_EXPORT_DIR")) {
            // For tests/fixtures/check_saved_model.py (h5py + numpy), run by hand.
            c.model->save(std::string(dir) + "/" + c.model->name() + ".h5");
            const Tensor p = c.model->predict(c.x, {.verbose = 0});
            json out = {{"input", c.x.dtype() == DType::int32 ? json(c.x.to_vector<int32_t>()) : json(c.x.to_vector<float>())},
                        {"input_shape", c.x.shape()}, {"prediction", p.to_vector<float>()}, {"prediction_shape", p.shape()}};
            std::ofstream(std::string(dir) + "/" + c.model->name() + ".json") << out.dump();
        }
    }
}

TEST_CASE("our files have Keras 3's structure (read with the raw HDF5 API)") {
    auto m = token_model();
    m->compile(optimizers::Adam(0.01f), "sparse_categorical_crossentropy", {"accuracy"});
    m->fit(token_input(4), Tensor(std::vector<int32_t>{0, 1, 2, 1}, {4}), {.batch_size = 4, .epochs = 1, .verbose = 0});
    const std::string path = temp_path("structure.h5");
    m->save(path);
    RawFile f(path);
    for (const char* attr : {"keras_version", "backend", "model_config", "training_config"})
        CHECK_MESSAGE(raw_is_variable_string(f.id, ".", attr), attr);
    CHECK(raw_strings(f.id, ".", "keras_version") == std::vector<std::string>{"3.15.1"});
    CHECK(raw_strings(f.id, ".", "backend") == std::vector<std::string>{"tensorflow"});
    // One attribute Keras does not read says that kerascpp wrote the file, and which version.
    CHECK(raw_is_variable_string(f.id, ".", "kerascpp_version"));
    CHECK(raw_strings(f.id, ".", "kerascpp_version") == std::vector<std::string>{keras::version()});
    const json config = json::parse(raw_strings(f.id, ".", "model_config").at(0));
    CHECK(config["class_name"] == "Sequential");
    CHECK(config["config"]["name"] == "tokens_model");
    CHECK(config["config"]["build_input_shape"] == json::parse("[null, 7]"));
    json input = config["config"]["layers"][0];
    CHECK(input["config"]["name"].get<std::string>().rfind("input_layer", 0) == 0);   // automatic unique name
    input["config"].erase("name");
    CHECK(input == json::parse(R"({"class_name": "InputLayer", "config": {"batch_shape": [null, 7],
        "dtype": "int32", "sparse": false, "ragged": false, "optional": false}})"));
    CHECK(config["config"]["layers"][2]["config"]["dtype"]["class_name"] == "DTypePolicy");
    const json training = json::parse(raw_strings(f.id, ".", "training_config").at(0));
    CHECK(training["loss"] == "sparse_categorical_crossentropy");
    CHECK(training["metrics"] == json::parse(R"(["accuracy"])"));
    CHECK(training["optimizer_config"]["class_name"] == "Adam");
    CHECK(training["optimizer_config"]["config"]["learning_rate"] == 0.01);

    const std::vector<std::string> names = {"emb", "lstm_a", "gru_after", "gru_before", "gap", "drop", "out"};
    CHECK(raw_strings(f.id, "model_weights", "layer_names") == names);
    CHECK_FALSE(raw_is_variable_string(f.id, "model_weights", "layer_names"));   // numpy 'S' array, as Keras
    CHECK(raw_strings(f.id, "model_weights", "keras_version") == std::vector<std::string>{"3.15.1"});
    CHECK(raw_strings(f.id, "model_weights/lstm_a", "weight_names") ==
          std::vector<std::string>{"tokens_model/lstm_a/lstm_cell/kernel", "tokens_model/lstm_a/lstm_cell/recurrent_kernel",
                                   "tokens_model/lstm_a/lstm_cell/bias"});
    CHECK(raw_strings(f.id, "model_weights/emb", "weight_names") ==
          std::vector<std::string>{"tokens_model/emb/embeddings"});
    CHECK(raw_strings(f.id, "model_weights/gap", "weight_names").empty());
    CHECK(H5Lexists(f.id, "model_weights/top_level_model_weights", H5P_DEFAULT) > 0);
    const std::map<std::string, Shape> shapes = {
        {"model_weights/emb/tokens_model/emb/embeddings", {13, 4}},
        {"model_weights/lstm_a/tokens_model/lstm_a/lstm_cell/kernel", {4, 20}},
        {"model_weights/lstm_a/tokens_model/lstm_a/lstm_cell/recurrent_kernel", {5, 20}},
        {"model_weights/lstm_a/tokens_model/lstm_a/lstm_cell/bias", {20}},
        {"model_weights/gru_after/tokens_model/gru_after/gru_cell/kernel", {5, 9}},
        {"model_weights/gru_after/tokens_model/gru_after/gru_cell/bias", {2, 9}},   // reset_after: input and recurrent bias
        {"model_weights/gru_before/tokens_model/gru_before/gru_cell/bias", {12}},
        {"model_weights/out/tokens_model/out/kernel", {4, 3}},
        {"model_weights/out/tokens_model/out/bias", {3}},
    };
    for (const auto& entry : shapes)   // not a structured binding: CHECK_MESSAGE's lambda captures it (clang 14)
        CHECK_MESSAGE(raw_dataset_shape(f.id, entry.first) == entry.second, entry.first);

    // Keras 3's optimizer layout: iteration, learning_rate, then Adam's momentum and velocity per variable.
    const auto opt = raw_strings(f.id, "optimizer_weights", "weight_names");
    REQUIRE(opt.size() == 2 + 2 * 12);   // 12 trainable weights
    CHECK(opt[0] == "adam/iteration");
    CHECK(opt[1] == "adam/learning_rate");
    CHECK(opt[2] == "adam/tokens_model_emb_embeddings_momentum");
    CHECK(opt[3] == "adam/tokens_model_emb_embeddings_velocity");
    CHECK(opt[4] == "adam/tokens_model_lstm_a_lstm_cell_kernel_momentum");
    CHECK(opt.back() == "adam/tokens_model_out_bias_velocity");
    CHECK(raw_dataset_shape(f.id, "optimizer_weights/adam/iteration").empty());
    CHECK(raw_dataset_shape(f.id, "optimizer_weights/adam/tokens_model_lstm_a_lstm_cell_kernel_velocity") == Shape{4, 20});
}

TEST_CASE("save options and errors") {
    auto m = float_model();
    const std::string path = temp_path("options.h5");
    m->save(path, {.include_optimizer = true});   // not compiled: no training_config, no optimizer_weights
    {
        RawFile f(path);
        CHECK(H5Aexists(f.id, "training_config") == 0);
        CHECK(H5Lexists(f.id, "optimizer_weights", H5P_DEFAULT) == 0);
    }
    CHECK_FALSE(models::load_model(path)->compiled());
    m->compile(optimizers::SGD(0.1f), "mse");
    m->save(path, {.include_optimizer = false});
    {
        RawFile f(path);
        CHECK(H5Aexists(f.id, "training_config") == 0);
    }
    CHECK_THROWS_WITH_AS(m->save(path, {.overwrite = false}), doctest::Contains("already exists"), ValueError);
    CHECK_THROWS_WITH_AS(m->save(temp_path("model.keras")), doctest::Contains("Invalid filepath extension"), ValueError);
    Sequential unbuilt("unbuilt");
    unbuilt.add(layers::Dense(2));
    CHECK_THROWS_WITH_AS(unbuilt.save(temp_path("unbuilt.h5")), doctest::Contains("not yet been built"), ValueError);
}

TEST_CASE("bad files: a clear error naming what is wrong") {
    auto expect_error = [](const std::string& path, const std::string& message) {
        CAPTURE(path);
        CHECK_THROWS_WITH_AS(models::load_model(path), doctest::Contains(message.c_str()), ValueError);
    };
    expect_error(temp_path("missing.h5"), "No file or directory found at");
    // A folder (e.g. a SavedModel): Keras 3's words, saying it is a directory.
    const std::string folder = temp_path("saved_model_dir");
    fs::create_directories(folder);
    expect_error(folder, fmt::format("File format not supported: filepath={}. It is a directory, not a file", folder));
    const std::string text = temp_path("text.h5");
    std::ofstream(text) << "{\"class_name\": \"Sequential\"}";
    expect_error(text, "is not an HDF5 file");

    const std::string truncated = copy_fixture("model_k3_tokens.h5", "truncated.h5");
    fs::resize_file(truncated, fs::file_size(truncated) / 3);
    expect_error(truncated, "truncated");

    // A weights-only file has no model_config.
    expect_error(kFixtures + "tfkeras_weights.h5", "No model config found in the file");

    const std::string no_weights = copy_fixture("model_k3_pooling.h5", "no_weights.h5");
    {
        RawFile f(no_weights, H5F_ACC_RDWR);
        H5Ldelete(f.id, "model_weights", H5P_DEFAULT);
    }
    expect_error(no_weights, "Group '/model_weights' in file");

    const std::string no_names = copy_fixture("model_k3_pooling.h5", "no_layer_names.h5");
    {
        RawFile f(no_names, H5F_ACC_RDWR);
        H5Adelete_by_name(f.id, "model_weights", "layer_names", H5P_DEFAULT);
    }
    expect_error(no_names, "Attribute 'layer_names' of '/model_weights'");

    const std::string missing_dataset = copy_fixture("model_k3_pooling.h5", "missing_dataset.h5");
    {
        RawFile f(missing_dataset, H5F_ACC_RDWR);
        const std::string gru = "model_weights/" + raw_strings(f.id, "model_weights", "layer_names").at(0);
        const auto names = raw_strings(f.id, gru.c_str(), "weight_names");
        REQUIRE(names.size() == 3);
        H5Ldelete(f.id, (gru + "/" + names[1]).c_str(), H5P_DEFAULT);
    }
    // (read_legacy_weights reports this one as a RuntimeError)
    CHECK_THROWS_WITH(models::load_model(missing_dataset),
                      doctest::Contains("gru_cell/recurrent_kernel' is listed in weight_names but missing"));

    // A weight of the wrong shape: the Dense kernel rewritten as (3, 1).
    const std::string wrong_shape = copy_fixture("model_k3_floats.h5", "wrong_shape.h5");
    {
        RawFile f(wrong_shape, H5F_ACC_RDWR);
        const std::string dense = "model_weights/" + raw_strings(f.id, "model_weights", "layer_names").at(3);
        const std::string dataset = dense + "/" + raw_strings(f.id, dense.c_str(), "weight_names").at(0);
        H5Ldelete(f.id, dataset.c_str(), H5P_DEFAULT);
        const hsize_t dims[2] = {3, 1};
        hid_t space = H5Screate_simple(2, dims, nullptr);
        hid_t d = H5Dcreate2(f.id, dataset.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const float zeros[3] = {};
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
        H5Dclose(d);
        H5Sclose(space);
    }
    expect_error(wrong_shape, "Shape mismatch in layer #2 (named dense_1)");
    expect_error(wrong_shape, "Weight expects shape (10, 3). Received saved weight with shape (3, 1)");

    // Config edits: each rewrites model_config of a copy of a real Keras 3 file.
    auto with_config = [&](const std::string& name, const std::function<void(json&)>& edit) {
        const std::string path = copy_fixture("model_k3_tokens.h5", name);
        json config = file_json_attr(path, "model_config");
        edit(config["config"]["layers"]);
        raw_replace_string_attr(path, ".", "model_config", config.dump());
        return path;
    };
    // layers: 0 InputLayer, 1 Embedding, 2 LSTM(4), 3 GRU(3), 4 GRU(2, reset_after=False), 5 Dense(2)
    expect_error(with_config("unknown_class.h5", [](json& l) { l[3]["class_name"] = "ConvLSTM1D"; }),
                 "Unknown layer: 'ConvLSTM1D' (layer \"gru\"");
    expect_error(with_config("units_changed.h5", [](json& l) { l[2]["config"]["units"] = 5; }),
                 "Shape mismatch in layer #1 (named lstm)");
    expect_error(with_config("reset_after_changed.h5", [](json& l) { l[3]["config"]["reset_after"] = false; }),
                 "Received saved weight with shape (2, 9)");
    // L1 / L2 / L1L2 load (tests/test_regularizers.cpp); another regularizer or name is refused, naming it.
    expect_error(with_config("regularizer.h5", [](json& l) {
                     l[5]["config"]["kernel_regularizer"] =
                         json::parse(R"({"class_name": "OrthogonalRegularizer", "config": {"factor": 0.01}})");
                 }),
                 "Layer \"dense\" (Dense) in file");
    expect_error(with_config("regularizer2.h5", [](json& l) { l[5]["config"]["kernel_regularizer"] = "l3"; }),
                 "field `kernel_regularizer`: Could not interpret regularizer identifier: l3");
    expect_error(with_config("activation.h5", [](json& l) { l[2]["config"]["activation"] = "mish"; }),
                 "Layer \"lstm\" (LSTM) in file");
    expect_error(with_config("activation2.h5", [](json& l) { l[2]["config"]["activation"] = "mish"; }),
                 "field `activation`: unknown activation 'mish'");
    {   // stateful is read back, with the batch size of the InputLayer's batch_shape
        auto model = models::load_model(with_config("stateful.h5", [](json& l) {
                                            l[0]["config"]["batch_shape"][0] = 3;
                                            l[3]["config"]["stateful"] = true;
                                        }),
                                        {.compile = false});
        CHECK(model->get_layer("gru")->get_config()["stateful"] == true);
        CHECK(model->get_layer("lstm")->get_config()["stateful"] == false);
        CHECK(std::dynamic_pointer_cast<keras::layers::RNNBase>(model->get_layer("gru"))->stateful_batch_size() == 3);
    }
    // As in Keras 3, a stateful layer after an input of unknown batch size cannot be built.
    expect_error(with_config("stateful_no_batch.h5", [](json& l) { l[3]["config"]["stateful"] = true; }),
                 "Layer \"gru\": When using `stateful=True` in a RNN, the batch size must be static. Found dynamic batch "
                 "size: sequence.shape=(None, 6, 4)");
    {   // mask_zero is read back
        auto model = models::load_model(with_config("mask_zero.h5", [](json& l) { l[1]["config"]["mask_zero"] = true; }),
                                        {.compile = false});
        CHECK(model->get_layer("embedding")->get_config()["mask_zero"] == true);
    }
    expect_error(with_config("units_missing.h5", [](json& l) { l[5]["config"].erase("units"); }),
                 "field `units`: missing");
    expect_error(with_config("initializer.h5", [](json& l) {
                     l[5]["config"]["kernel_initializer"]["config"]["minval"] = -1.0;
                     l[5]["config"]["kernel_initializer"]["class_name"] = "RandomUniform";
                 }),
                 "field `kernel_initializer`: RandomUniform with minval=-1.0 is not supported");
    expect_error(with_config("extra_layer.h5", [](json& l) { l.push_back(l[5]); l[6]["config"]["name"] = "dense_2"; }),
                 "Layer count mismatch");

    const std::string not_json = copy_fixture("model_k3_tokens.h5", "not_json.h5");
    raw_replace_string_attr(not_json, ".", "model_config", "{\"class_name\": \"Sequential\", ");
    expect_error(not_json, "Attribute 'model_config' of file");

    const std::string bad_optimizer = copy_fixture("model_k3_tokens.h5", "bad_optimizer.h5");
    json training = file_json_attr(bad_optimizer, "training_config");
    training["optimizer_config"]["class_name"] = "Nadam";
    raw_replace_string_attr(bad_optimizer, ".", "training_config", training.dump());
    expect_error(bad_optimizer, "optimizer 'Nadam' is not supported");
    CHECK_NOTHROW(models::load_model(bad_optimizer, {.compile = false}));
}

TEST_CASE("the version header and the library agree") {
    CHECK(std::string(keras::version()) == KERASCPP_VERSION_STRING);
    CHECK(std::string(KERASCPP_VERSION_STRING) == std::to_string(KERASCPP_VERSION_MAJOR) + "." +
                                                      std::to_string(KERASCPP_VERSION_MINOR) + "." +
                                                      std::to_string(KERASCPP_VERSION_PATCH));
}

TEST_CASE("a model file with the kerascpp_version attribute loads") {
    auto m = token_model();
    const std::string path = temp_path("stamped.h5");
    m->save(path);
    REQUIRE(raw_strings(RawFile(path).id, ".", "kerascpp_version") == std::vector<std::string>{keras::version()});
    auto loaded = models::load_model(path, {.compile = false});
    const Tensor x = token_input(3);
    CHECK(loaded->predict(x, {.verbose = 0}).to_vector<float>() == m->predict(x, {.verbose = 0}).to_vector<float>());
}
