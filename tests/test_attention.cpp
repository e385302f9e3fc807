// Attention, AdditiveAttention and MultiHeadAttention: forward against a double-precision reference
// (masks, causal mask, scale, concat scores, value_dim / output_shape), gradients against central
// differences, files and configs written by REAL Keras 3 (tests/fixtures/gen_attention_fixtures.py:
// predictions and one training step), save / load round trips (use_causal_mask in the node kwargs,
// MultiHeadAttention's positional arguments), return_attention_scores (call_with_scores: the scores
// against the reference, gradients through them against central differences), and Keras's messages
// for bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "functional_loader.hpp"
#include "keras/keras.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using test_helpers::wavy;

namespace {

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/attention/";

nlohmann::json fixture(const std::string& name) {
    std::ifstream in(kFixtures + "attention_fixtures.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in).at(name);
}

Tensor from_json(const nlohmann::json& a, DType dtype = DType::float32) {
    const Tensor t = floats(a["values"].get<std::vector<double>>(), a["shape"].get<Shape>());
    return dtype == DType::float32 ? t : t.astype(dtype);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
}

// Every `step`-th entry of the gradient `g` of loss() with respect to the floats at `p`, against
// central differences (each entry nudged by ±eps, then restored).
void check_central_differences(const std::vector<double>& g, float* p, size_t step, const std::function<double()>& loss) {
    const double eps = 1e-3;
    for (size_t i = 0; i < g.size(); i += step) {
        const float keep = p[i];
        p[i] = keep + eps;
        const double up = loss();
        p[i] = keep - eps;
        const double down = loss();
        p[i] = keep;
        CHECK(g[i] == doctest::Approx((up - down) / (2 * eps)).epsilon(2e-2).scale(1.0));
    }
}

// ---- The double-precision reference, on row-major (batch, steps, features) vectors.
using Vec = std::vector<double>;
struct Seq {   // one (batch, steps, dim) array
    Vec v;
    size_t b, t, d;
    double at(size_t i, size_t s, size_t j) const { return v[(i * t + s) * d + j]; }
};

// softmax(scores) @ value with Keras 3's masks: hidden keys (value mask 0, or j > i when causal) get
// -1e9 added; padded query steps output 0. score(i, s, j) is the raw score of query step s, key step j.
Vec ref_dense_attention(const Seq& value, size_t tq, const std::function<double(size_t, size_t, size_t)>& score,
                        const Vec& q_mask, const Vec& v_mask, bool causal) {
    Vec out(value.b * tq * value.d, 0.0);
    for (size_t i = 0; i < value.b; ++i)
        for (size_t s = 0; s < tq; ++s) {
            Vec e(value.t);
            double top = -1e300, total = 0;
            for (size_t j = 0; j < value.t; ++j) {
                const bool hidden = (!v_mask.empty() && v_mask[i * value.t + j] == 0) || (causal && j > s);
                e[j] = score(i, s, j) - (hidden ? 1e9 : 0.0);
                top = std::max(top, e[j]);
            }
            for (double& x : e) total += (x = std::exp(x - top));
            const bool padded = !q_mask.empty() && q_mask[i * tq + s] == 0;
            for (size_t j = 0; j < value.t && !padded; ++j)
                for (size_t c = 0; c < value.d; ++c) out[(i * tq + s) * value.d + c] += e[j] / total * value.at(i, j, c);
        }
    return out;
}

Seq seq_of(const Tensor& x) { return {values_of(x), (size_t)x.shape()[0], (size_t)x.shape()[1], (size_t)x.shape()[2]}; }

// MultiHeadAttention per head, from the layer's weights (query, key, value kernels (dim, heads, size)),
// without dropout: hidden scores are -1e9, so a query step that sees no key averages all values (Keras 3
// on jax).
Vec ref_mha(const layers::MultiHeadAttention& mha, const Seq& q, const Seq& v, const Vec& keep /* b*tq*tv or empty */) {
    const auto w = mha.get_weights();
    const Vec wq = values_of(w[0]), bq = values_of(w[1]), wk = values_of(w[2]), bk = values_of(w[3]);
    const Vec wv = values_of(w[4]), bv = values_of(w[5]), wo = values_of(w[6]), bo = values_of(w[7]);
    const size_t h = mha.num_heads, kd = mha.key_dim, vd = (size_t)w[4].shape()[2], od = (size_t)w[6].shape()[2];
    auto proj = [&](const Seq& x, const Vec& k, const Vec& bias, size_t n, size_t i, size_t s, size_t head, size_t c) {
        double acc = bias[head * n + c];
        for (size_t j = 0; j < x.d; ++j) acc += x.at(i, s, j) * k[(j * h + head) * n + c];
        return acc;
    };
    Vec out(q.b * q.t * od, 0.0);
    for (size_t i = 0; i < q.b; ++i)
        for (size_t s = 0; s < q.t; ++s) {
            Vec combined(h * vd, 0.0);
            for (size_t head = 0; head < h; ++head) {
                Vec e(v.t);
                double top = -1e300, total = 0;
                for (size_t j = 0; j < v.t; ++j) {
                    double dot = 0;
                    for (size_t c = 0; c < kd; ++c) dot += proj(q, wq, bq, kd, i, s, head, c) * proj(v, wk, bk, kd, i, j, head, c);
                    const bool hidden = !keep.empty() && keep[(i * q.t + s) * v.t + j] == 0;
                    e[j] = hidden ? -1e9 : dot / std::sqrt((double)kd);
                    top = std::max(top, e[j]);
                }
                for (double& x : e) total += (x = std::exp(x - top));
                for (size_t j = 0; j < v.t; ++j) {
                    for (size_t c = 0; c < vd; ++c)
                        combined[head * vd + c] += e[j] / total * proj(v, wv, bv, vd, i, j, head, c);
                }
            }
            for (size_t o = 0; o < od; ++o) {
                double acc = bo[o];
                for (size_t k = 0; k < h * vd; ++k) acc += combined[k] * wo[k * od + o];
                out[(i * q.t + s) * od + o] = acc;
            }
        }
    return out;
}

// Runs a list-input layer on a batch with the given input masks (as the model does).
Tensor run(Layer& layer, const std::vector<Tensor>& xs, const std::vector<Tensor>& masks, bool training = false) {
    layer.build_for_multi(shapes_of(xs));
    CallContext ctx;
    ctx.training = training;
    ctx.input_masks = masks;
    return layer.call_multi(xs, ctx);
}

const Vec kQMask = {1, 1, 1, 0, 1, 0, 0, 0};     // (2, 4)
const Vec kVMask = {1, 1, 0, 1, 0, 1, 1, 1, 1, 0};   // (2, 5)

}  // namespace

TEST_CASE("Attention and AdditiveAttention match the reference: scores, scale, masks, causal") {
    const Tensor q = wavy({2, 4, 3}, 0.1, 0.7, 1.0), v = wavy({2, 5, 3}, 0.4, 0.5, 1.2), k = wavy({2, 5, 3}, 0.9, 0.3, 0.8);
    const Tensor qm = floats(kQMask, {2, 4}), vm = floats(kVMask, {2, 5});
    const Seq sq = seq_of(q), sv = seq_of(v), sk = seq_of(k);
    for (const bool masked : {false, true})
        for (const bool causal : {false, true}) {
            INFO("masked " << masked << " causal " << causal);
            const std::vector<Tensor> masks = masked ? std::vector<Tensor>{qm, vm} : std::vector<Tensor>{};
            const Vec q_mask = masked ? kQMask : Vec{}, v_mask = masked ? kVMask : Vec{};
            // dot with scale, key given
            layers::Attention dot({.use_scale = true, .use_causal_mask = causal});
            const Tensor y = run(dot, {q, v, k}, masks);
            dot.scale->value.copy_from(floats({0.7}, {}));
            const Tensor y2 = run(dot, {q, v, k}, masks);
            auto dot_score = [&](size_t i, size_t s, size_t j) {
                double acc = 0;
                for (size_t c = 0; c < 3; ++c) acc += sq.at(i, s, c) * sk.at(i, j, c);
                return 0.7 * acc;
            };
            CHECK(y.shape() == Shape{2, 4, 3});
            check_close(values_of(y2), ref_dense_attention(sv, 4, dot_score, q_mask, v_mask, causal), 1e-5);
            // concat without a key: key = value
            layers::Attention concat({.score_mode = "concat", .use_causal_mask = causal});
            auto concat_score = [&](size_t i, size_t s, size_t j) {
                double acc = 0;
                for (size_t c = 0; c < 3; ++c) acc += std::tanh(sq.at(i, s, c) + sv.at(i, j, c));
                return acc;
            };
            check_close(values_of(run(concat, {q, v}, masks)),
                        ref_dense_attention(sv, 4, concat_score, q_mask, v_mask, causal), 1e-5);
            // additive with a learned scale vector
            layers::AdditiveAttention additive({.use_causal_mask = causal});
            run(additive, {q, v, k}, masks);
            additive.scale->value.copy_from(floats({0.5, -1.0, 2.0}, {3}));
            auto additive_score = [&](size_t i, size_t s, size_t j) {
                const double w[3] = {0.5, -1.0, 2.0};
                double acc = 0;
                for (size_t c = 0; c < 3; ++c) acc += w[c] * std::tanh(sq.at(i, s, c) + sk.at(i, j, c));
                return acc;
            };
            check_close(values_of(run(additive, {q, v, k}, masks)),
                        ref_dense_attention(sv, 4, additive_score, q_mask, v_mask, causal), 1e-5);
        }
}

TEST_CASE("MultiHeadAttention matches the reference: value_dim, output_shape, masks, causal") {
    const Tensor q = wavy({2, 4, 5}, 0.2, 0.6, 1.0), v = wavy({2, 5, 3}, 0.7, 0.4, 1.1);
    const Tensor qm = floats(kQMask, {2, 4}), vm = floats(kVMask, {2, 5});
    for (const bool masked : {false, true})
        for (const bool causal : {false, true}) {
            INFO("masked " << masked << " causal " << causal);
            layers::MultiHeadAttention mha(2, 3, {.value_dim = 4, .output_shape = 6, .use_causal_mask = causal});
            const std::vector<Tensor> masks = masked ? std::vector<Tensor>{qm, vm} : std::vector<Tensor>{};
            const Tensor y = run(mha, {q, v}, masks);
            CHECK(y.shape() == Shape{2, 4, 6});
            CHECK(mha.weights().size() == 8);
            CHECK(mha.weights()[6]->value.shape() == Shape{2, 4, 6});
            Vec keep;
            if (masked || causal) {
                keep.assign(2 * 4 * 5, 1.0);
                for (size_t i = 0; i < 2; ++i)
                    for (size_t s = 0; s < 4; ++s)
                        for (size_t j = 0; j < 5; ++j) {
                            bool k = !causal || j <= s;
                            if (masked) k = k && kQMask[i * 4 + s] && kVMask[i * 5 + j];
                            keep[(i * 4 + s) * 5 + j] = k;
                        }
            }
            check_close(values_of(y), ref_mha(mha, seq_of(q), seq_of(v), keep), 1e-5);
        }
}

TEST_CASE("MultiHeadAttention's attention_mask (a fourth input) ANDs with the masks, broadcasting axes of 1") {
    const Tensor q = wavy({2, 4, 5}, 0.2, 0.6, 1.0), v = wavy({2, 5, 3}, 0.7, 0.4, 1.1);
    const Tensor qm = floats(kQMask, {2, 4}), vm = floats(kVMask, {2, 5});
    // (2, 4, 5), every query step sees key 0 at least; broadcast forms (1, 4, 5) and (2, 1, 5)
    Vec full(2 * 4 * 5);
    for (size_t e = 0; e < full.size(); ++e) full[e] = (e % 5 == 0 || (e * 7) % 3 != 0) ? 1.0 : 0.0;
    const Vec first(full.begin(), full.begin() + 20);
    const Vec rows = {1, 0, 1, 1, 0, 1, 1, 0, 0, 1};
    struct Form {
        const char* name;
        Tensor mask;
        std::function<double(size_t, size_t, size_t)> at;
    };
    const std::vector<Form> forms = {
        {"(2, 4, 5)", floats(full, {2, 4, 5}), [&](size_t i, size_t s, size_t j) { return full[(i * 4 + s) * 5 + j]; }},
        {"(1, 4, 5) int32", floats(first, {1, 4, 5}).astype(DType::int32),
         [&](size_t, size_t s, size_t j) { return first[s * 5 + j]; }},
        {"(2, 1, 5)", floats(rows, {2, 1, 5}), [&](size_t i, size_t, size_t j) { return rows[i * 5 + j]; }}};
    for (const Form& form : forms)
        for (const bool masked : {false, true}) {
            INFO(form.name << " masked " << masked);
            layers::MultiHeadAttention mha(2, 3);
            const std::vector<Tensor> masks = masked ? std::vector<Tensor>{qm, vm} : std::vector<Tensor>{};
            const Tensor y = run(mha, {q, v, v, form.mask}, masks);
            Vec keep(2 * 4 * 5);
            for (size_t i = 0; i < 2; ++i)
                for (size_t s = 0; s < 4; ++s)
                    for (size_t j = 0; j < 5; ++j)
                        keep[(i * 4 + s) * 5 + j] =
                            form.at(i, s, j) != 0 && (!masked || (kQMask[i * 4 + s] && kVMask[i * 5 + j]));
            check_close(values_of(y), ref_mha(mha, seq_of(q), seq_of(v), keep), 1e-5);
        }
    layers::MultiHeadAttention mha(2, 3);
    CHECK(message_of([&] { mha({q, v, v, floats(full, {2, 5, 4})}); }) ==
          "Layer \"" + mha.name() + "\": attention_mask must have shape (batch, query steps, value steps) = (batch, 4, 5) (an axis of 1 "
              "broadcasts). Received: attention_mask.shape=(2, 5, 4)");
}

namespace {
// One of each attention layer, for the central-difference tests: concat scores with a scale, causal.
std::vector<std::shared_ptr<Layer>> gradient_cases() {
    return {std::make_shared<layers::Attention>(layers::AttentionOptions{.use_scale = true, .score_mode = "concat"}),
            std::make_shared<layers::AdditiveAttention>(layers::AdditiveAttentionOptions{.use_causal_mask = true}),
            std::make_shared<layers::MultiHeadAttention>(2, 3, layers::MultiHeadAttentionOptions{.use_causal_mask = true})};
}
}  // namespace

TEST_CASE("attention gradients match central differences") {
    const Tensor q = wavy({2, 3, 4}, 0.3, 0.8, 0.9), v = wavy({2, 4, 4}, 0.6, 0.5, 1.0);
    const Tensor qm = floats({1, 1, 0, 1, 1, 1}, {2, 3}), vm = floats({1, 0, 1, 1, 1, 1, 1, 0}, {2, 4});
    for (auto& layer : gradient_cases()) {
        INFO(layer->class_name());
        std::vector<Tensor> xs = {q.clone(), v.clone()};
        const Tensor y0 = run(*layer, xs, {qm, vm});
        const Tensor dy = wavy(y0.shape(), 0.5, 1.3, 1.0);
        auto loss = [&] {
            const Vec y = values_of(run(*layer, xs, {qm, vm})), w = values_of(dy);
            double l = 0;
            for (size_t i = 0; i < y.size(); ++i) l += y[i] * w[i];
            return l;
        };
        for (const auto& w : layer->weights()) w->grad = Tensor();
        CallContext ctx;
        ctx.training = true;
        ctx.input_masks = {qm, vm};
        layer->call_multi(xs, ctx);
        const std::vector<Tensor> grads = layer->backward_multi(dy, ctx);
        REQUIRE(grads.size() == 2);
        for (size_t n = 0; n < 2; ++n) {   // inputs
            const Vec g = values_of(grads[n]);
            float* p = static_cast<float*>(xs[n].raw());
            check_central_differences(g, p, 3, loss);
        }
        for (const auto& w : layer->weights()) {   // weights
            INFO(w->name);
            const Vec g = values_of(w->grad);
            float* p = static_cast<float*>(w->value.raw());
            check_central_differences(g, p, 2, loss);
        }
    }
}

TEST_CASE("return_attention_scores: call_with_scores gives the attention weights as Keras 3") {
    const Tensor q = wavy({2, 4, 3}, 0.1, 0.7, 1.0), v = wavy({2, 5, 3}, 0.4, 0.5, 1.2), k = wavy({2, 5, 3}, 0.9, 0.3, 0.8);
    const Tensor qm = floats(kQMask, {2, 4}), vm = floats(kVMask, {2, 5});
    const Seq sq = seq_of(q), sk = seq_of(k);
    // The reference's output on one-hot values (value step j -> feature j) is the weights themselves.
    Seq one_hot{Vec(2 * 5 * 5, 0.0), 2, 5, 5};
    for (size_t i = 0; i < 2; ++i)
        for (size_t j = 0; j < 5; ++j) one_hot.v[(i * 5 + j) * 5 + j] = 1.0;
    for (const bool causal : {false, true}) {
        INFO("causal " << causal);
        layers::Attention dot({.use_causal_mask = causal});
        const std::vector<Tensor> out = dot.call_with_scores({q, v, k}, {qm, vm});
        REQUIRE(out.size() == 2);
        CHECK(out[1].shape() == Shape{2, 4, 5});
        auto dot_score = [&](size_t i, size_t s, size_t j) {
            double acc = 0;
            for (size_t c = 0; c < 3; ++c) acc += sq.at(i, s, c) * sk.at(i, j, c);
            return acc;
        };
        // Keras 3 does not apply the query mask to the scores, only to the output.
        check_close(values_of(out[1]), ref_dense_attention(one_hot, 4, dot_score, {}, kVMask, causal), 1e-5);
        check_close(values_of(out[0]), values_of(run(dot, {q, v, k}, {qm, vm})), 1e-6);
    }
    // MultiHeadAttention: (batch, heads, Tq, Ts) scores, rows summing to 1 over the visible keys; the
    // output is the one of a plain call where every query step sees a key.
    layers::MultiHeadAttention mha(2, 3, {.value_dim = 4});
    const std::vector<Tensor> out = mha.call_with_scores({q, v}, {Tensor(), vm});
    REQUIRE(out.size() == 2);
    CHECK(out[1].shape() == Shape{2, 2, 4, 5});
    const Vec w = values_of(out[1]);
    for (size_t row = 0; row < 2 * 2 * 4; ++row) {
        const size_t i = row / 8;
        double total = 0;
        for (size_t j = 0; j < 5; ++j) {
            total += w[row * 5 + j];
            if (kVMask[i * 5 + j] == 0) CHECK(w[row * 5 + j] == 0.0);
        }
        CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
    }
    check_close(values_of(out[0]), values_of(run(mha, {q, v}, {Tensor(), vm})), 1e-6);
    // Keras 3's masked softmax: a query step that sees no key (padded) gets all-zero scores.
    const Vec padded = values_of(mha.call_with_scores({q, v}, {qm, vm})[1]);
    for (size_t head = 0; head < 2; ++head)
        for (size_t j = 0; j < 5; ++j) CHECK(padded[((0 * 2 + head) * 4 + 3) * 5 + j] == 0.0);
}

TEST_CASE("return_attention_scores: gradients through the scores match central differences") {
    const Tensor q = wavy({2, 3, 4}, 0.3, 0.8, 0.9), v = wavy({2, 4, 4}, 0.6, 0.5, 1.0);
    const Tensor vm = floats({1, 0, 1, 1, 1, 1, 1, 0}, {2, 4});
    for (auto& layer : gradient_cases()) {
        INFO(layer->class_name());
        auto scores_of = [&] {
            if (auto* m = dynamic_cast<layers::MultiHeadAttention*>(layer.get())) return m->call_with_scores({q, v}, {Tensor(), vm})[1];
            return dynamic_cast<layers::BaseDenseAttention&>(*layer).call_with_scores({q, v}, {Tensor(), vm})[1];
        };
        const Tensor seed = wavy(scores_of().shape(), 0.5, 1.3, 1.0);
        auto loss = [&] {
            const Vec s = values_of(scores_of()), w = values_of(seed);
            double l = 0;
            for (size_t i = 0; i < s.size(); ++i) l += s[i] * w[i];
            return l;
        };
        std::vector<Tensor> grads;
        {
            GradientTape tape;
            grads = tape.gradient(ops::sum(ops::multiply(scores_of(), seed)), layer->trainable_weights(), true);
        }
        for (size_t n = 0; n < grads.size(); ++n) {
            const VariablePtr var = layer->trainable_weights()[n];   // a copy: the list is returned by value
            INFO(var->name);
            const Vec g = values_of(grads[n]);
            float* p = static_cast<float*>(var->value.raw());
            check_central_differences(g, p, 2, loss);
        }
    }
}

namespace {

// predict() as Keras's, and one training step's loss and predictions after it.
void check_against_keras(Model& model, const std::string& name, bool train) {
    const auto data = fixture(name);
    const std::vector<Tensor> x = {from_json(data["ids"], DType::int32), from_json(data["val"])};
    check_close(values_of(model.predict(x, {.verbose = 0})[0]), data["predict"]["values"].get<Vec>(), 1e-5);
    if (!train) return;
    model.compile(optimizers::SGD(0.1), "mse");
    const auto history = model.fit(x, {from_json(data["y"])}, {.batch_size = 4, .epochs = 1, .shuffle = false, .verbose = 0});
    CHECK(history["loss"][0] == doctest::Approx(data["loss"].get<double>()).epsilon(1e-5));
    check_close(values_of(model.predict(x, {.verbose = 0})[0]), data["predict_after"]["values"].get<Vec>(), 1e-4);
}

const std::vector<std::string> kModels = {"dot", "concat", "additive", "mha"};

}  // namespace

TEST_CASE("models of attention layers saved by Keras 3 load and predict and train as Keras") {
    for (const auto& name : kModels) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        check_against_keras(*model, name, true);
        std::ifstream in(kFixtures + name + ".json");
        auto rebuilt = layers::functional_from_config(nlohmann::json::parse(in), {.keras_major = 3, .file = name});
        rebuilt->load_weights(kFixtures + name + ".weights.h5");
        check_against_keras(*rebuilt, name, false);
    }
    // The causal calls came from the node kwargs.
    auto dot = models::load_model(kFixtures + "dot.h5");
    CHECK(std::dynamic_pointer_cast<layers::Attention>(dot->get_layer("att_causal"))->use_causal_mask());
    CHECK_FALSE(std::dynamic_pointer_cast<layers::Attention>(dot->get_layer("att"))->use_causal_mask());
}

TEST_CASE("save / load round trips keep use_causal_mask and MultiHeadAttention's arguments") {
    const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_attention_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (const auto& name : kModels) {
        INFO(name);
        auto model = models::load_model(kFixtures + name + ".h5");
        const auto data = fixture(name);
        const std::vector<Tensor> x = {from_json(data["ids"], DType::int32), from_json(data["val"])};
        const Vec before = values_of(model->predict(x, {.verbose = 0})[0]);
        model->save((dir / (name + ".h5")).string());
        model->save_weights((dir / (name + ".weights.h5")).string());
        auto loaded = models::load_model((dir / (name + ".h5")).string());
        CHECK(values_of(loaded->predict(x, {.verbose = 0})[0]) == before);
        std::ifstream in(kFixtures + name + ".json");
        auto rebuilt = layers::functional_from_config(nlohmann::json::parse(in), {.keras_major = 3, .file = name});
        rebuilt->load_weights((dir / (name + ".weights.h5")).string());
        CHECK(values_of(rebuilt->predict(x, {.verbose = 0})[0]) == before);
        for (const auto& layer : model->layers())
            CHECK(loaded->get_layer(layer->name())->get_config() == layer->get_config());
        // For tests/fixtures/check_attention_files.py: real Keras loads what kerascpp saved.
        if (const char* out = std::getenv("KERASCPP_EXPORT_DIR")) {
            model->save(std::string(out) + "/" + name + "_cpp.h5");
            model->save_weights(std::string(out) + "/" + name + "_cpp.weights.h5");
        }
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("a functional self-attention model over a masked embedding trains") {
    auto ids = Input({6}, {.dtype = DType::int32});
    auto emb = share(layers::Embedding(20, 8, {.mask_zero = true}));
    auto mha = share(layers::MultiHeadAttention(2, 4));
    auto x = (*emb)(ids);
    auto a = (*mha)({x, x});
    auto y = (*share(layers::Dense(1, "sigmoid")))((*share(layers::GlobalAveragePooling1D()))(a));
    Model model({ids}, {y});
    model.compile(optimizers::Adam(0.01), "binary_crossentropy");
    const Tensor xs = floats({1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9, 2, 2, 0, 0, 0, 0, 9, 8, 7, 6, 5, 4}, {4, 6}).astype(DType::int32);
    const Tensor ys = floats({1, 0, 1, 0}, {4, 1});
    const double first = model.fit({xs}, {ys}, {.batch_size = 4, .epochs = 1, .shuffle = false, .verbose = 0})["loss"][0];
    double last = first;
    for (int i = 0; i < 20; ++i) last = model.fit({xs}, {ys}, {.batch_size = 4, .epochs = 1, .shuffle = false, .verbose = 0})["loss"][0];
    CHECK(last < first);
}

TEST_CASE("bad arguments give Keras's messages") {
    CHECK(message_of([] { layers::Attention({.score_mode = "cosine"}); }) ==
          "Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. Received: score_mode=cosine");
    CHECK(message_of([] { layers::MultiHeadAttention(0, 4); }) ==
          "Received an invalid value for argument `num_heads`, expected a positive integer. Received: num_heads=0");
    CHECK(message_of([] { layers::MultiHeadAttention(2, -1); }) ==
          "Received an invalid value for argument `key_dim`, expected a positive integer. Received: key_dim=-1");
    CHECK(message_of([] { layers::MultiHeadAttention(2, 3, {.value_dim = 0}); }).find("value_dim=0") != std::string::npos);
    layers::Attention att;
    CHECK(message_of([&] { att(wavy({2, 3, 4}, 0, 1, 1)); }) ==
          "Attention layer must be called on a list of inputs, namely [query, value] or [query, value, key]. "
          "Received: inputs=(2, 3, 4).");
    const Tensor t = wavy({2, 3, 4}, 0, 1, 1);
    CHECK(message_of([&] { att({t, t, t, t}); }) ==
          "Attention layer accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. "
          "Received length: 4.");
    layers::MultiHeadAttention mha(2, 3);
    CHECK(message_of([&] { mha({t, wavy({2, 5, 4}, 0, 1, 1), wavy({2, 4, 4}, 0, 1, 1)}); }) ==
          "All dimensions of `value` and `key`, except the last one, must be equal. Received: value_shape=(2, 5, 4) "
          "and key_shape=(2, 4, 4)");
    // Keras's attention layers other than MultiHeadAttention take no attention_mask.
    std::ifstream in(kFixtures + "dot.json");
    auto config = nlohmann::json::parse(in);
    for (auto& layer : config["config"]["layers"])
        if (layer["class_name"] == "Attention")
            layer["inbound_nodes"][0]["kwargs"]["attention_mask"] = layer["inbound_nodes"][0]["args"][0][0];
    CHECK(message_of([&] { layers::functional_from_config(config, {.keras_major = 3, .file = "dot.json"}); }) ==
          "File 'dot.json': a Attention layer is called with an attention_mask, which only MultiHeadAttention takes");
}
