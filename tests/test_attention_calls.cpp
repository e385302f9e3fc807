// The attention layers' call arguments in the functional API and in files: models saved by REAL Keras 3
// and REAL tf.keras 2 (tests/fixtures/gen_attention_call_fixtures.py) whose attention calls return
// {output, scores} (return_attention_scores=True) or take MultiHeadAttention's attention_mask load,
// predict every output as Keras, and train one step as Keras 3 with a loss that reaches the scores; a
// functional node of two outputs matches the eager call_with_scores; its gradients (through the graph's
// backward) match central differences; save / load keeps the keywords; malformed keywords are named.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "functional_loader.hpp"
#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

using Vec = std::vector<double>;
const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/attention_calls/";

const nlohmann::json& fixtures() {
    static const nlohmann::json data = [] {
        std::ifstream in(kFixtures + "scores.json");
        REQUIRE(in.good());
        return nlohmann::json::parse(in);
    }();
    return data;
}

Tensor from_json(const nlohmann::json& a) {
    return floats(a["values"].get<Vec>(), a["shape"].get<Shape>());
}

std::vector<Tensor> inputs() {
    return {from_json(fixtures()["ids"]).astype(DType::int32), from_json(fixtures()["val"])};
}

void check_close(const Tensor& got, const nlohmann::json& want, double tol) {
    CHECK(got.shape() == want["shape"].get<Shape>());
    const Vec g = values_of(got), w = want["values"].get<Vec>();
    REQUIRE(g.size() == w.size());
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(w[i]).epsilon(tol).scale(1.0));
}

void check_outputs(Model& model, const nlohmann::json& want, double tol, std::vector<Tensor> x = inputs()) {
    const std::vector<Tensor> got = model.predict(x, {.verbose = 0});
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < got.size(); ++k) {
        INFO("output " << k);
        check_close(got[k], want[k], tol);
    }
}

std::filesystem::path temp_dir() {
    const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_scores_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace

TEST_CASE("models whose attention calls return their scores, saved by Keras 3 and tf.keras 2, predict as Keras") {
    for (const std::string name : {"scores_k3", "scores_k2"}) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        REQUIRE(model->outputs().size() == 5);
        CHECK(model->outputs()[2].shape == Shape{-1, 2, 5, 5});   // MultiHeadAttention: (batch, heads, Tq, Ts)
        CHECK(model->outputs()[3].shape == Shape{-1, 5, 4});      // Attention: (batch, Tq, Tv)
        check_outputs(*model, fixtures()[name], 1e-5);
    }
}

TEST_CASE("models whose MultiHeadAttention calls take an attention_mask, saved by Keras 3 and tf.keras 2, predict as Keras") {
    std::vector<Tensor> x = inputs();
    x.push_back(from_json(fixtures()["m"]));
    const auto dir = temp_dir();
    for (const std::string name : {"mask_k3", "mask_k2"}) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        check_outputs(*model, fixtures()[name], 1e-5, x);
        // saved again, the mask stays the calls' fourth input (Keras 3's attention_mask keyword)
        model->save((dir / (name + ".h5")).string());
        check_outputs(*models::load_model((dir / (name + ".h5")).string()), fixtures()[name], 1e-5, x);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("a loss on the scores trains one step as Keras 3 does") {
    auto model = models::load_model(kFixtures + "scores_train_k3.h5");
    const auto& train = fixtures()["train"];
    model->compile(optimizers::SGD(0.1), "mse");
    const auto history = model->fit(inputs(), {from_json(train["y"][0]), from_json(train["y"][1])},
                                    {.batch_size = 4, .epochs = 1, .shuffle = false, .verbose = 0});
    CHECK(history["loss"][0] == doctest::Approx(train["loss"].get<double>()).epsilon(1e-5));
    check_outputs(*model, train["predict_after"], 1e-4);
}

TEST_CASE("save / load keeps return_attention_scores in the node's kwargs") {
    auto model = models::load_model(kFixtures + "scores_k3.h5");
    const std::vector<Tensor> before = model->predict(inputs(), {.verbose = 0});
    const auto dir = temp_dir();
    model->save((dir / "scores.h5").string());
    auto loaded = models::load_model((dir / "scores.h5").string());
    const std::vector<Tensor> after = loaded->predict(inputs(), {.verbose = 0});
    REQUIRE(after.size() == before.size());
    for (size_t k = 0; k < after.size(); ++k) CHECK(values_of(after[k]) == values_of(before[k]));
    std::filesystem::remove_all(dir);
}

TEST_CASE("call_with_scores on KerasTensors: a node of two outputs that matches the eager call") {
    utils::set_random_seed(7);
    auto query = Input({4, 6}), value = Input({3, 5});
    auto mha = share(layers::MultiHeadAttention(2, 3));
    auto att = share(layers::AdditiveAttention());
    const std::vector<KerasTensor> m = mha->call_with_scores({query, value});
    auto projected = (*share(layers::Dense(6)))(value);
    const std::vector<KerasTensor> a = att->call_with_scores({query, projected});
    REQUIRE(m.size() == 2);
    CHECK(m[0].shape == Shape{-1, 4, 6});
    CHECK(m[1].shape == Shape{-1, 2, 4, 3});
    CHECK(a[1].shape == Shape{-1, 4, 3});
    CHECK(m[1].history_label() == m[0].history_label().substr(0, m[0].history_label().size() - 2) + "1]");
    Model model({query, value}, {m[0], m[1], a[1]});
    std::ostringstream summary;
    model.summary(&summary);   // the node's two outputs, as Keras lists a layer of several
    CHECK(summary.str().find("[(None, 4, 6),") != std::string::npos);   // one line per shape, as Keras 2
    CHECK(summary.str().find("(None, 2, 4, 3)]") != std::string::npos);

    const Tensor q = wavy({2, 4, 6}, 0, 1, 1), v = wavy({2, 3, 5}, 1, 1, 1);
    const std::vector<Tensor> got = model.predict({q, v}, {.verbose = 0});
    const std::vector<Tensor> eager = mha->call_with_scores({q, v});
    CHECK(values_of(got[0]) == values_of(eager[0]));
    CHECK(values_of(got[1]) == values_of(eager[1]));
    const Tensor pv = (*model.get_layer(projected.node->layer->name()))(v);
    CHECK(values_of(got[2]) == values_of(att->call_with_scores({q, pv})[1]));
    // Only the attention layers have such a call.
    CHECK(message_of([&] {
              CallContext ctx;
              model.get_layer(projected.node->layer->name())->call_multi_outputs({q, v}, ctx);
          }).find("several outputs") != std::string::npos);
}

TEST_CASE("call_with_scores on a KerasTensor without history is refused before the layer builds") {
    auto query = Input({4, 6});
    const KerasTensor loose{Shape{-1, 3, 6}, DType::float32, nullptr};
    for (const auto& layer : std::vector<LayerPtr>{share(layers::MultiHeadAttention(2, 3)),
                                                                      share(layers::Attention())}) {
        CAPTURE(layer->class_name());
        const std::string message = message_of([&] {
            if (auto* mha = dynamic_cast<layers::MultiHeadAttention*>(layer.get())) mha->call_with_scores({query, loose});
            else dynamic_cast<layers::Attention&>(*layer).call_with_scores({query, loose});
        });
        CHECK(message.find("was called on a KerasTensor without history") != std::string::npos);
        CHECK_FALSE(layer->built());
    }
}

TEST_CASE("gradients through a functional scores node match central differences") {
    utils::set_random_seed(11);
    auto query = Input({3, 4}), value = Input({5, 4});
    auto mha = share(layers::MultiHeadAttention(2, 2));
    const std::vector<KerasTensor> m = mha->call_with_scores({query, value});
    Model model({query, value}, {m[0], m[1]});
    const std::vector<Tensor> x = {wavy({2, 3, 4}, 0, 1, 1), wavy({2, 5, 4}, 2, 1, 1)};
    const std::vector<Tensor> y = {wavy({2, 3, 4}, 3, 0.5, 1), wavy({2, 2, 3, 5}, 4, 0.2, 1)};
    model.compile(optimizers::SGD(1.0), "mse");
    auto loss = [&] { return model.evaluate(x, y, {.batch_size = 2, .verbose = 0}).loss(); };
    // One SGD step of rate 1 moves each weight by minus its gradient.
    std::vector<Vec> before;
    for (const auto& w : mha->trainable_weights()) before.push_back(values_of(w->value));
    model.fit(x, y, {.batch_size = 2, .epochs = 1, .shuffle = false, .verbose = 0});
    std::vector<Vec> after;
    for (size_t n = 0; n < before.size(); ++n) {   // every weight back to the start
        Tensor& value = mha->trainable_weights()[n]->value;
        after.push_back(values_of(value));
        value = floats(before[n], value.shape());
    }
    for (size_t n = 0; n < before.size(); ++n) {
        const VariablePtr var = mha->trainable_weights()[n];
        INFO(var->name);
        auto* p = static_cast<float*>(var->value.raw());
        const double eps = 1e-3;
        for (size_t i = 0; i < after[n].size(); i += 3) {
            const float keep = p[i];
            p[i] = keep + static_cast<float>(eps);
            const double up = loss();
            p[i] = keep - static_cast<float>(eps);
            const double down = loss();
            p[i] = keep;
            CHECK(before[n][i] - after[n][i] == doctest::Approx((up - down) / (2 * eps)).epsilon(2e-2).scale(1e-3));
        }
    }
}

TEST_CASE("malformed attention keywords in a node are refused, naming what is wrong") {
    // A tf.keras 2 layout: the call's keywords ride on the first inbound reference.
    const nlohmann::json mha_config = {{"name", "mha"}, {"num_heads", 2}, {"key_dim", 2}};
    auto config_with = [&](const nlohmann::json& kwargs, const std::string& class_name = "MultiHeadAttention",
                           const nlohmann::json& layer_config = nullptr) {
        nlohmann::json input = {{"class_name", "InputLayer"},
                                {"config", {{"name", "in"}, {"batch_input_shape", {nullptr, 3, 4}}}},
                                {"name", "in"}, {"inbound_nodes", nlohmann::json::array()}};
        nlohmann::json mha = {{"class_name", class_name},
                              {"config", layer_config.is_null() ? mha_config : layer_config},
                              {"name", "mha"},
                              {"inbound_nodes", {{{"in", 0, 0, kwargs}}}}};
        return nlohmann::json{{"class_name", "Functional"},
                              {"config", {{"name", "m"}, {"layers", {input, mha}}, {"input_layers", {{"in", 0, 0}}},
                                          {"output_layers", {{"mha", 0, 0}}}}}};
    };
    auto load = [&](const nlohmann::json& kwargs, const std::string& class_name = "MultiHeadAttention",
                    const nlohmann::json& layer_config = nullptr) {
        return message_of([&] {
            layers::functional_from_config(config_with(kwargs, class_name, layer_config), {.keras_major = 2, .file = "bad.h5"});
        });
    };
    CHECK(load({{"value", {"in", 0, 0}}}) == "<no exception>");   // the well-formed call loads
    CHECK(load({{"value", "in"}}) ==
          "File 'bad.h5': a functional model_config refers to a tensor as \"in\", expected [layer, node, tensor]");
    CHECK(load({{"value", {"in", 0, 0}}, {"return_attention_scores", "yes"}}) ==
          "File 'bad.h5': a MultiHeadAttention layer is called with return_attention_scores=\"yes\", expected true or "
          "false");
    CHECK(load({{"value", {"in", 0, 0}}, {"use_causal_mask", 1}}) ==
          "File 'bad.h5': a MultiHeadAttention layer is called with use_causal_mask=1, expected true or false");
    CHECK(load({{"value", {"nowhere", 0, 0}}}) == "File 'bad.h5': layer \"mha\" of the functional model_config reads "
                                                    "[\"nowhere\", 0, 0], which no layer produces (or the graph has a cycle)");
    CHECK(load({{"value", {"in", 0, 0}}, {"attention_mask", {"in", 0, 0}}}).find("attention_mask") != std::string::npos);
    CHECK(load({{"attention_mask", {"in", 0, 0}}}) ==   // no value
          "File 'bad.h5': a MultiHeadAttention layer is called with an attention_mask and 1 other tensors, expected "
          "query, value and optionally key");
    CHECK(load({{"return_attention_scores", true}}, "Dense", {{"name", "mha"}, {"units", 2}}) ==
          "File 'bad.h5': layer \"mha\" (Dense) is called with return_attention_scores=True, which only the attention "
          "layers take");
}
