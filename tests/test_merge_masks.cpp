// Masks through merge layers and TimeDistributed, as REAL Keras 3 (tests/fixtures/gen_merge_mask_fixtures.py):
// each merge layer's output mask equals Keras's own compute_mask for every combination of input masks, a
// functional model mixing masked and unmasked branches predicts what Keras predicts, and the errors.
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/errors.hpp"
#include "keras/keras.hpp"
#include "keras/models.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

nlohmann::json fixture() {
    std::ifstream in(kFixtures + "merge_masks.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

LayerPtr make_merge(const std::string& name) {
    if (name == "Add") return std::make_shared<layers::Add>();
    if (name == "Multiply") return std::make_shared<layers::Multiply>();
    if (name == "Average") return std::make_shared<layers::Average>();
    if (name == "Concatenate_-1") return std::make_shared<layers::Concatenate>(layers::ConcatenateOptions{.axis = -1});
    if (name == "Concatenate_1") return std::make_shared<layers::Concatenate>(layers::ConcatenateOptions{.axis = 1});
    FAIL("unknown merge " << name);
    return nullptr;
}

Tensor int_rows(const nlohmann::json& rows) {
    std::vector<std::vector<int32_t>> values;
    for (const auto& r : rows) values.push_back(r.get<std::vector<int32_t>>());
    return Tensor::from_rows(values);
}

}  // namespace

TEST_CASE("merge layers pass on Keras 3's mask: OR for Add / Multiply / Average, Concatenate's own rule") {
    const auto data = fixture()["rules"];
    std::vector<Tensor> xs;
    for (const auto& x : data["x"]) xs.push_back(floats(x.get<std::vector<double>>(), {2, 3, 2}));
    for (const auto& c : data["cases"]) {
        const std::string name = c["layer"];
        std::vector<Tensor> inputs, masks;
        for (size_t i = 0; i < c["masks"].size(); ++i) {
            inputs.push_back(xs[i]);
            masks.push_back(c["masks"][i].is_null() ? Tensor() : floats(c["masks"][i].get<std::vector<double>>(), {2, 3}));
        }
        INFO(name << " with masks " << c["masks"].dump());
        const LayerPtr layer = make_merge(name);
        const Tensor mask = layer->compute_mask_multi(inputs, masks);
        if (c["expected"].is_null()) {
            CHECK_FALSE(mask.defined());
        } else {
            REQUIRE(mask.defined());
            CHECK(values_of(mask) == c["expected"].get<std::vector<double>>());
        }
    }
}

// The model of gen_merge_mask_fixtures.py, built here (Keras 3's .h5 of it holds its mask ops as layers).
static std::shared_ptr<Model> merge_mask_model() {
    const auto a = Input({5}, {.dtype = DType::int32, .name = "a"}), b = Input({5}, {.dtype = DType::int32, .name = "b"});
    auto call = [](auto layer, const auto& x) { return (*share(std::move(layer)))(x); };
    using V = std::vector<KerasTensor>;
    const auto ea = call(layers::Embedding(9, 4, {.mask_zero = true, .name = "emb_a"}), a);
    const auto eb = call(layers::Embedding(9, 4, {.mask_zero = true, .name = "emb_b"}), b);
    const auto eb_plain = call(layers::Embedding(9, 4, {.name = "emb_b_plain"}), b);
    auto pool = [&](const std::string& name, const KerasTensor& x) {
        return call(layers::GlobalAveragePooling1D({.name = name}), x);
    };
    const auto added = call(layers::Add({.name = "add"}), V{call(layers::Dense(3, {.name = "d1"}), ea),
                                                            call(layers::Dense(3, {.activation = "tanh", .name = "d2"}), ea)});
    return std::make_shared<Model>(std::vector<KerasTensor>{a, b}, std::vector<KerasTensor>{
        call(layers::Dense(1, {.name = "out_add"}), pool("pool_add", added)),
        pool("out_time", call(layers::Concatenate({.axis = 1, .name = "cat_time"}), V{ea, eb})),
        pool("out_feat", call(layers::Concatenate({.axis = -1, .name = "cat_feat"}), V{ea, eb_plain})),
        pool("out_mul", call(layers::Multiply({.name = "mul"}), V{ea, eb})),
        pool("out_avg", call(layers::Average({.name = "avg"}), V{ea, eb_plain})),
        pool("out_td", call(layers::TimeDistributed(layers::Dense(3), {.name = "td"}), ea))});
}

static void check_predictions(Model& model, const nlohmann::json& data) {
    const auto outputs = model.predict({int_rows(data["a"]), int_rows(data["b"])}, {.verbose = 0});
    REQUIRE(outputs.size() == data["outputs"].size());
    for (size_t i = 0; i < outputs.size(); ++i) {
        const auto& expected = data["outputs"][i];
        INFO(expected["name"].get<std::string>());
        CHECK(outputs[i].shape() == expected["shape"].get<Shape>());
        const auto got = values_of(outputs[i]);
        const auto want = expected["values"].get<std::vector<double>>();
        REQUIRE(got.size() == want.size());
        for (size_t k = 0; k < got.size(); ++k) CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-5));
    }
}

TEST_CASE("a functional model with masks through Add, Concatenate, Multiply, Average and TimeDistributed predicts as Keras 3") {
    const auto data = fixture()["model"];
    auto model = merge_mask_model();
    for (const auto& [name, weights] : data["weights"].items()) {
        const auto& variables = model->get_layer(name)->weights();
        REQUIRE(variables.size() == weights.size());
        for (size_t i = 0; i < weights.size(); ++i)
            variables[i]->value = floats(weights[i]["values"].get<std::vector<double>>(), weights[i]["shape"].get<Shape>());
    }
    check_predictions(*model, data);
}

TEST_CASE("Keras 3's .h5 file of that model loads without the mask-only op layers Keras writes, and predicts the same") {
    const auto data = fixture()["model"];
    auto model = models::load_model(kFixtures + "merge_masks_k3.h5", {.compile = false});
    for (const auto& layer : model->layers()) {
        INFO(layer->name());
        CHECK(layer->class_name() != "NotEqual");
        CHECK(layer->name().find("logical_or") == std::string::npos);
        CHECK(layer->name().find("concatenate_") == std::string::npos);   // Concatenate layers of masks
    }
    check_predictions(*model, data);
}

TEST_CASE("Multiply with masks: gradients equal finite differences of Keras 3's masked product") {
    const std::vector<double> v0 = {0.5, -1.2, 0.8, 0.3, -0.7, 1.1, 0.9, -0.4, 0.2, 1.5, -0.6, 0.7},
                              v1 = {1.3, 0.4, -0.9, 0.6, 1.0, -0.2, -1.1, 0.8, 0.5, -0.3, 0.9, 1.2},
                              dyv = {1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.5, 1.25, -1.0, 0.3, -0.2, 0.6};
    const Tensor m0 = floats({1, 1, 0, 0, 1, 1}, {2, 3}), m1 = floats({1, 0, 0, 1, 1, 0}, {2, 3});
    for (const auto& masks : {std::vector<Tensor>{m0, m1}, std::vector<Tensor>{m0, Tensor()}}) {
        INFO("second input masked: " << masks[1].defined());
        layers::Multiply mul;
        auto loss = [&](const std::vector<double>& a, const std::vector<double>& b) {   // sum(dy * y)
            CallContext ctx;
            ctx.input_masks = masks;
            const auto y = values_of(mul.call_multi({floats(a, {2, 3, 2}), floats(b, {2, 3, 2})}, ctx));
            double sum = 0.0;
            for (size_t k = 0; k < y.size(); ++k) sum += dyv[k] * y[k];
            return sum;
        };
        CallContext ctx;
        ctx.input_masks = masks;
        mul.call_multi({floats(v0, {2, 3, 2}), floats(v1, {2, 3, 2})}, ctx);
        const auto grads = mul.backward_multi(floats(dyv, {2, 3, 2}), ctx);
        REQUIRE(grads.size() == 2);
        const double eps = 1e-2;
        for (int which = 0; which < 2; ++which) {
            const auto g = values_of(grads[which]);
            for (size_t k = 0; k < v0.size(); ++k) {
                auto plus = which == 0 ? v0 : v1, minus = plus;
                plus[k] += eps;
                minus[k] -= eps;
                const double fd = which == 0 ? (loss(plus, v1) - loss(minus, v1)) / (2 * eps)
                                             : (loss(v0, plus) - loss(v0, minus)) / (2 * eps);
                CHECK(g[k] == doctest::Approx(fd).epsilon(1e-3).scale(1.0));
            }
        }
    }
}

TEST_CASE("TimeDistributed passes its input mask on; RepeatVector drops it") {
    const Tensor x = floats(std::vector<double>(12, 0.5), {2, 3, 2});
    const Tensor mask = floats({1, 0, 1, 1, 1, 0}, {2, 3});
    layers::TimeDistributed td(layers::Dense(2));
    td.build_for({-1, 3, 2});
    CHECK(values_of(td.compute_mask(x, mask)) == values_of(mask));
    layers::RepeatVector repeat(3);
    CHECK_FALSE(repeat.compute_mask(floats({1, 2}, {1, 2}), mask).defined());
}

TEST_CASE("masks through merge layers: clear errors for masks that do not fit") {
    const Tensor x = floats(std::vector<double>(12, 1.0), {2, 3, 2});
    const Tensor m = floats({1, 0, 1, 1, 1, 0}, {2, 3});
    layers::Add add({.name = "add"});
    CHECK(message_of<ValueError>([&] { add.compute_mask_multi({x, x}, {m}); }) ==
          "Layer \"add\": The lists `inputs` and `mask` should have the same length. Received: 2 inputs and 1 masks");
    CHECK(message_of<ValueError>([&] { add.compute_mask_multi({x, x}, {m, floats({1, 1}, {1, 2})}); }) ==
          "Layer \"add\": the mask of input 1 has shape (1, 2), expected (batch, steps) of an input of rank 3 or more, "
          "but the input has shape (2, 3, 2)");
    layers::Concatenate cat({.name = "cat"});
    const Tensor flat = floats(std::vector<double>(4, 1.0), {2, 2});
    CHECK(message_of<ValueError>([&] { cat.compute_mask_multi({x, flat}, {m, Tensor()}); }) ==
          "Layer \"cat\": a masked Concatenate needs inputs of rank 3 or more (batch, steps, ...), input 1 has shape (2, 2)");
}
