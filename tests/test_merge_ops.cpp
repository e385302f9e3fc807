// Subtract, Maximum, Minimum and Dot: forward against double-precision loops, gradients against finite
// differences, Keras 3's masked Maximum / Minimum, Keras's shape rules and messages, configs, and files
// saved by real tf.keras 2 and Keras 3 (tests/fixtures/gen_tfkeras2_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "keras/keras.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

const std::string fixture_dir = std::string(KERASCPP_TESTS_DIR) + "/fixtures/tfkeras2/";

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
    }
}

Tensor run(Layer& layer, const std::vector<Tensor>& xs, const std::vector<Tensor>& masks = {}) {
    CallContext ctx;
    ctx.input_masks = masks;
    return layer.call_multi(xs, ctx);
}

// d(sum(y * dy))/d(each input) from backward_multi against central finite differences (inputs chosen
// with no ties, where max / min have no derivative).
void check_gradients(Layer& layer, std::vector<Tensor> xs, const std::vector<Tensor>& masks = {}) {
    CallContext ctx{.training = true};
    ctx.input_masks = masks;
    const Tensor y = layer.call_multi(xs, ctx);
    const Tensor dy = wavy(y.shape(), 0.1, 0.9, 1.0);
    const std::vector<Tensor> dxs = layer.backward_multi(dy, ctx);
    REQUIRE(dxs.size() == xs.size());
    auto objective = [&] {
        const auto out = values_of(run(layer, xs, masks));
        double s = 0;
        for (size_t i = 0; i < out.size(); ++i) s += out[i] * dy.item(static_cast<int64_t>(i));
        return s;
    };
    for (size_t k = 0; k < xs.size(); ++k)
        for (int64_t i = 0; i < xs[k].numel(); ++i) {
            float& value = xs[k].data<float>()[i];
            const float keep = value;
            value = keep + 1e-3f;
            const double up = objective();
            value = keep - 1e-3f;
            const double down = objective();
            value = keep;
            INFO("input " << k << " element " << i);
            CHECK(dxs[k].item(i) == doctest::Approx((up - down) / 2e-3).epsilon(3e-3).scale(1.0));
        }
}

// batch_dot in double precision for x (b, m, k) . y (b, k, n) after moving the summed axes: a1 of x
// and a2 of y, for inputs of rank 3 (the cases below).
std::vector<double> reference_dot3(const Tensor& x, const Tensor& y, int a1, int a2, bool normalize) {
    const int64_t b = x.dim(0);
    auto at = [](const Tensor& t, int64_t i, int64_t j, int64_t l) {
        return static_cast<double>(t.item((i * t.dim(1) + j) * t.dim(2) + l));
    };
    // x's element (batch, free index f, summed index s), y's likewise.
    auto xv = [&](int64_t n, int64_t f, int64_t s) { return a1 == 2 ? at(x, n, f, s) : at(x, n, s, f); };
    auto yv = [&](int64_t n, int64_t s, int64_t f) { return a2 == 2 ? at(y, n, f, s) : at(y, n, s, f); };
    const int64_t k = x.dim(a1), fx = x.dim(3 - a1), fy = y.dim(3 - a2);
    std::vector<double> out;
    for (int64_t n = 0; n < b; ++n)
        for (int64_t i = 0; i < fx; ++i)
            for (int64_t j = 0; j < fy; ++j) {
                double dot = 0, nx = 0, ny = 0;
                for (int64_t s = 0; s < k; ++s) dot += xv(n, i, s) * yv(n, s, j);
                if (normalize) {   // the norms along the summed axes
                    for (int64_t s = 0; s < k; ++s) nx += xv(n, i, s) * xv(n, i, s), ny += yv(n, s, j) * yv(n, s, j);
                    dot /= std::sqrt(nx) * std::sqrt(ny);
                }
                out.push_back(dot);
            }
    return out;
}

Tensor from_json(const nlohmann::json& a) {
    return test_helpers::floats(a["values"].get<std::vector<double>>(), a["shape"].get<Shape>());
}

}  // namespace

TEST_CASE("Subtract, Maximum, Minimum: forward against double precision, gradients against finite differences") {
    const Tensor a = wavy({2, 3, 4}, 0.2, 0.7, 1.0), b = wavy({2, 3, 4}, 1.1, 0.45, 0.9), c = wavy({2, 3, 4}, 2.3, 0.3, 0.8);
    const auto va = values_of(a), vb = values_of(b), vc = values_of(c);
    std::vector<double> sub, mx, mn;
    for (size_t i = 0; i < va.size(); ++i) {
        sub.push_back(va[i] - vb[i]);
        mx.push_back(std::max({va[i], vb[i], vc[i]}));
        mn.push_back(std::min({va[i], vb[i], vc[i]}));
    }
    layers::Subtract subtract;
    layers::Maximum maximum;
    layers::Minimum minimum;
    check_close(values_of(run(subtract, {a, b})), sub, 1e-6);
    check_close(values_of(run(maximum, {a, b, c})), mx, 1e-6);
    check_close(values_of(run(minimum, {a, b, c})), mn, 1e-6);
    check_gradients(subtract, {a.clone(), b.clone()});
    check_gradients(maximum, {a.clone(), b.clone(), c.clone()});
    check_gradients(minimum, {a.clone(), b.clone(), c.clone()});
    // Keras's layer(x) form and the symbolic shape
    CHECK(values_of(subtract({a, b})) == values_of(run(subtract, {a, b})));
    CHECK(layers::Maximum().compute_output_shape_multi({{-1, 3, 4}, {-1, 3, 4}}) == Shape{-1, 3, 4});
}

TEST_CASE("Maximum and Minimum with masks, as Keras 3: padded steps take the other input's value") {
    const Tensor a = test_helpers::floats({1, 2, -3, 4, 5, -6, 7, 8}, {2, 2, 2});
    const Tensor b = test_helpers::floats({-1, 9, 3, -4, -5, 6, 0, 2}, {2, 2, 2});
    const Tensor ma = test_helpers::floats({1, 0, 0, 1}, {2, 2}), mb = test_helpers::floats({0, 1, 0, 1}, {2, 2});
    layers::Maximum maximum;
    layers::Minimum minimum;
    // step by step: a real only -> a; b real only -> b; neither -> a (each took the other's value, the
    // running result first); both -> max(a, b)
    CHECK(values_of(run(maximum, {a, b}, {ma, mb})) == std::vector<double>{1, 2, 3, -4, 5, -6, 7, 8});
    CHECK(values_of(run(minimum, {a, b}, {ma, mb})) == std::vector<double>{1, 2, 3, -4, 5, -6, 0, 2});
    // one input unmasked: it counts everywhere; the masked one only at its real steps
    CHECK(values_of(run(maximum, {a, b}, {ma, Tensor()})) == std::vector<double>{1, 9, 3, -4, -5, 6, 7, 8});
    CHECK(maximum.compute_mask_multi({a, b}, {ma, mb}).defined());
    CHECK_FALSE(maximum.compute_mask_multi({a, b}, {ma, Tensor()}).defined());
    check_gradients(maximum, {a.clone(), b.clone()}, {ma, mb});
    CHECK(message_of<ValueError>([&] { run(maximum, {a, b}, {test_helpers::floats({1, 0}, {1, 2}), mb}); })
              .find("the mask of input 0 has shape (1, 2)") != std::string::npos);
}

TEST_CASE("Dot: batch_dot against double precision for each axes form, with normalize; gradients") {
    const Tensor x = wavy({2, 3, 4}, 0.2, 0.7, 1.0), y = wavy({2, 3, 4}, 1.1, 0.45, 0.9);
    const Tensor yt = wavy({2, 4, 3}, 0.6, 0.35, 1.2);
    layers::Dot last(2), last_negative(-1), pair(std::vector<int>{1, 2}), cosine(2, {.normalize = true});
    CHECK(run(last, {x, y}).shape() == Shape{2, 3, 3});
    check_close(values_of(run(last, {x, y})), reference_dot3(x, y, 2, 2, false), 1e-5);
    check_close(values_of(run(last_negative, {x, y})), reference_dot3(x, y, 2, 2, false), 1e-5);
    CHECK(run(pair, {x, yt}).shape() == Shape{2, 4, 4});
    check_close(values_of(run(pair, {x, yt})), reference_dot3(x, yt, 1, 2, false), 1e-5);
    check_close(values_of(run(cosine, {x, y})), reference_dot3(x, y, 2, 2, true), 1e-5);
    check_gradients(last, {x.clone(), y.clone()});
    check_gradients(pair, {x.clone(), yt.clone()});
    check_gradients(cosine, {x.clone(), y.clone()});
    // rank 2: the dot of two vectors per sample, shaped (batch, 1)
    layers::Dot vectors(1);
    const Tensor u = test_helpers::floats({1, 2, 3, 4}, {2, 2}), v = test_helpers::floats({5, 6, 7, 8}, {2, 2});
    CHECK(run(vectors, {u, v}).shape() == Shape{2, 1});
    CHECK(values_of(run(vectors, {u, v})) == std::vector<double>{17, 53});
    CHECK(layers::Dot(1).compute_output_shape_multi({{-1, 5}, {-1, 5, 2}}) == Shape{-1, 2});
    CHECK_FALSE(vectors.compute_mask_multi({u, v}, {Tensor(), Tensor()}).defined());
}

TEST_CASE("Subtract, Maximum, Minimum, Dot: Keras's messages for bad calls and arguments") {
    const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 4});
    CHECK(message_of<ValueError>([&] { run(*share(layers::Subtract()), {a, a, a}); }) ==
          "A `Subtract` layer should be called on exactly 2 inputs. Received: input_shape=[(2, 3), (2, 3), (2, 3)]");
    CHECK(message_of<ValueError>([&] { run(*share(layers::Maximum()), {a, b}); }) ==
          "Inputs have incompatible shapes. Received shapes (3,) and (4,)");
    CHECK(message_of<ValueError>([&] { run(*share(layers::Dot(1)), {a, b}); }) ==
          "Incompatible input shapes: axis values 3 (at axis 1) != 4 (at axis 1). Full input shapes: (2, 3), (2, 4)");
    CHECK(message_of<ValueError>([&] { run(*share(layers::Dot(1)), {a, a, a}); }) ==
          "A `Dot` layer should be called on a list of 2 inputs. Received: input_shape=[(2, 3), (2, 3), (2, 3)]");
    CHECK(message_of<ValueError>([] { layers::Dot(std::vector<int>{1, 2, 3}); }) ==
          "Invalid format for argument `axes`: it should contain two elements. Received: axes=[1,2,3]");
    CHECK(message_of<ValueError>([&] { run(*share(layers::Dot(0, {.name = "d0"})), {a, a}); }).find(
              "Layer \"d0\": Cannot perform batch_dot over axis 0") == 0);
    CHECK(message_of<ValueError>([&] { run(*share(layers::Dot(2, {.name = "d2"})), {a, a}); }) ==
          "Layer \"d2\": axes=[2] are out of range for inputs of shapes (2, 3) and (2, 3)");
    CHECK(message_of<ValueError>([&] { run(*share(layers::Dot(1)), {Tensor::zeros({2}), a}); }) ==
          "Cannot do batch_dot on inputs with rank < 2. Received inputs with shapes (2,) and (2, 3).");
}

TEST_CASE("Dot's config: axes as Keras writes it (an int or a pair), read back; bad axes in a file are named") {
    CHECK(layers::Dot(1).get_config()["axes"] == 1);
    CHECK(layers::Dot(std::vector<int>{1, 2}, {.normalize = true}).get_config()["axes"] == nlohmann::json{1, 2});
    CHECK(layers::Dot(std::vector<int>{1, 2}, {.normalize = true}).get_config()["normalize"] == true);
    const layers::ConfigSource keras3{.keras_major = 3, .file = "(test)"};
    auto bad = [&](const nlohmann::json& axes) {
        return message_of<ValueError>([&] {
            layers::layer_from_config("Dot", {{"name", "dot"}, {"axes", axes}}, keras3);
        });
    };
    CHECK(bad({1, 2, 3}).find("axes") != std::string::npos);
    CHECK(bad("x").find("expected an integer or a list of two integers") != std::string::npos);
}

TEST_CASE("Merge models saved by real tf.keras 2 and Keras 3 predict what Keras predicted") {
    std::ifstream in(fixture_dir + "fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    for (const std::string name : {"merge_k2", "merge_k3", "merge_mask_k3"}) {
        INFO(name);
        const auto& c = fixtures.at(name);
        std::vector<Tensor> xs;
        for (const auto& x : c["inputs"]) xs.push_back(from_json(x));
        if (name == "merge_mask_k3")
            for (auto& x : xs) x = ops::cast(x, DType::int32);
        auto model = models::load_model(fixture_dir + name + ".h5", {.compile = false});
        const std::vector<Tensor> ys = model->predict(xs, {.verbose = 0});
        REQUIRE(ys.size() == c["outputs"].size());
        for (size_t k = 0; k < ys.size(); ++k) {
            INFO("output " << k);
            CHECK(ys[k].shape() == c["outputs"][k]["shape"].get<Shape>());
            check_close(values_of(ys[k]), c["outputs"][k]["values"].get<std::vector<double>>(), 1e-5);
        }
        // and the same after our own save and load (Keras 3's layout)
        const std::string path = "merge_ops_roundtrip_" + name + ".h5";
        model->save(path);
        auto again = models::load_model(path, {.compile = false});
        const std::vector<Tensor> ys2 = again->predict(xs, {.verbose = 0});
        for (size_t k = 0; k < ys.size(); ++k) CHECK(values_of(ys2[k]) == values_of(ys[k]));
        std::remove(path.c_str());
    }
}
