// Single-layer models written by REAL tf.keras 2 (tf_keras 2.21) and, for Masking, real Keras 3
// (tests/fixtures/gen_tfkeras2_layer_fixtures.py): each loads and predicts what Keras predicted within 1e-5.
// These are the docs/layers.md rows whose "load Keras 2" evidence was only Keras 3's legacy layout.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::values_of;

namespace {

const std::string fixture_dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/tfkeras2/";

// Loads <name>.h5 and checks its prediction of the recorded input against the recorded output.
void check_file(const std::string& name) {
    INFO(name);
    std::ifstream in(fixture_dir + "layers.json");
    REQUIRE(in.good());
    const auto c = nlohmann::json::parse(in).at(name);
    const auto& x_json = c["inputs"][0];
    const Tensor x = test_helpers::floats(x_json["values"].get<std::vector<double>>(), x_json["shape"].get<Shape>());
    auto model = models::load_model(fixture_dir + name + ".h5");
    const Tensor y = model->predict(x, {.verbose = 0});
    CHECK(y.shape() == c["outputs"][0]["shape"].get<Shape>());
    const auto got = values_of(y);
    const auto want = c["outputs"][0]["values"].get<std::vector<double>>();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= 1e-5 * (1.0 + std::fabs(want[i])));
    }
}

}  // namespace

TEST_CASE("Masking -> LSTM / GRU files of tf.keras 2 and Keras 3 skip masked rows as Keras did") {
    for (const std::string name : {"masking_lstm_k2", "masking_gru_k2", "masking_lstm_k3", "masking_gru_k3"})
        check_file(name);
}

TEST_CASE("A tf.keras 2 GaussianDropout file predicts as the identity, and its rate is read") {
    check_file("gaussian_dropout_k2");
    auto model = models::load_model(fixture_dir + "gaussian_dropout_k2.h5");
    CHECK(model->get_layer("gd")->get_config().at("rate").get<double>() == doctest::Approx(0.3));
}

TEST_CASE("tf.keras 2 files of RNN(SimpleRNNCell / LSTMCell / GRUCell) predict what tf.keras predicted") {
    for (const std::string name : {"rnn_simple_k2", "rnn_lstm_k2", "rnn_gru_k2"}) check_file(name);
}

TEST_CASE("tf.keras 2 files of Attention and AdditiveAttention predict what tf.keras predicted") {
    check_file("attention_k2");
    check_file("additive_attention_k2");
}

TEST_CASE("A tf.keras 2 MultiHeadAttention file (weights under its query/key/value/attention_output sublayers) loads") {
    check_file("mha_k2");
    check_file("mha_key_causal_k2");   // key= and use_causal_mask=True, keywords in tf.keras 2's inbound node
}
