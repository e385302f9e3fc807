// Tests of the non-recurrent layers: Dense, Embedding, Dropout, Activation, Flatten and
// GlobalAveragePooling1D. Forward passes are compared with the double-precision reference
// (tests/reference) or hand formulas; backward passes with the reference's analytic gradients AND
// with central finite differences of our own forward pass, for a scalar loss L = sum(y * w).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "keras/layer.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/random.hpp"
#include "keras/backend.hpp"
#include "keras/tensor.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using keras::CallContext;
using keras::DType;
using keras::Shape;
using keras::Tensor;
using ref::Vec;
namespace layers = keras::layers;

namespace {

Vec to_vec(const Tensor& t) {
    const float* p = t.data<float>();
    return Vec(p, p + t.numel());
}

Tensor to_tensor(const Vec& v, const Shape& shape) {
    return Tensor(std::vector<float>(v.begin(), v.end()), shape);
}

// The float values a double vector becomes in a tensor, back as doubles, so the reference sees
// exactly the inputs our float code sees.
Vec rounded(const Vec& v) {
    Vec r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = static_cast<float>(v[i]);
    return r;
}

// Describes the worst element of a comparison, for failure messages.
std::string worst_element(const Vec& got, const Vec& want, double atol, double rtol) {
    if (got.size() != want.size())
        return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
    size_t worst = 0;
    double err = -1;
    for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::fabs(got[i] - want[i]) / (atol + rtol * std::fabs(want[i]));
        if (e > err) err = e, worst = i;
    }
    std::ostringstream os;
    os.precision(9);
    if (!got.empty()) os << "worst [" << worst << "]: got " << got[worst] << ", want " << want[worst];
    return os.str();
}

// |got - want| <= atol + rtol * |want| element-wise.
#define CHECK_CLOSE(what, got, want, atol, rtol)                                                  \
    do {                                                                                         \
        const double err_ = ref::max_rel_err((got), (want), (atol), (rtol));                     \
        INFO(what << ": normalized error " << err_ << ", " << worst_element((got), (want), (atol), (rtol))); \
        CHECK(err_ <= 1.0);                                                                      \
    } while (0)

// Central differences, computed on our float forward pass, of L = sum(forward() * w) with
// respect to every element of t (perturbed in place and restored).
Vec numeric_grad(const std::function<Vec()>& forward, Tensor& t, const Vec& w, float eps) {
    Vec g(static_cast<size_t>(t.numel()));
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
        const float saved = p[i];
        const float hi = saved + eps, lo = saved - eps;
        p[i] = hi;
        const double l_hi = ref::dot(forward(), w);
        p[i] = lo;
        const double l_lo = ref::dot(forward(), w);
        p[i] = saved;
        g[i] = (l_hi - l_lo) / (double(hi) - double(lo));   // the step float really took
    }
    return g;
}

// Float finite differences with a step of 4e-3: truncation error ~1e-5, rounding error ~1e-5
// (all checks here pass with a tolerance 3x tighter than this one).
constexpr float kEps = 4e-3f;
constexpr double kFdAtol = 3e-4, kFdRtol = 3e-3;

// Points where an activation's derivative jumps (or, for elu, its second derivative): central
// differences across them are off by O(eps) instead of O(eps^2).
std::vector<double> kinks_of(const std::string& activation) {
    if (activation == "relu" || activation == "elu" || activation == "selu") return {0.0};
    if (activation == "hard_sigmoid") return {-3.0, 3.0};
    if (activation == "hard_sigmoid_keras2") return {-2.5, 2.5};
    return {};
}

bool far_from_kinks(const std::string& activation, const Vec& z, double margin) {
    for (double k : kinks_of(activation))
        for (double v : z)
            if (std::fabs(v - k) < margin) return false;
    return true;
}

Shape with_batch_none(Shape shape) {
    shape[0] = -1;
    return shape;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Dense
// ---------------------------------------------------------------------------------------------

namespace {

// Inputs and weights for one Dense check, already rounded to float.
struct DenseValues {
    Vec x, kernel, bias;
};

// Draws values whose pre-activations stay 0.05 away from the activation's kinks, so that finite
// differences with a step of kEps never straddle one (the analytic side is fine either way).
DenseValues draw_dense_values(const std::string& activation, int M, int C, int U, bool use_bias) {
    for (unsigned seed = 1;; seed += 10) {
        DenseValues v{rounded(ref::random_vec(M * C, seed, -3, 3)), rounded(ref::random_vec(C * U, seed + 1, -1, 1)),
                      use_bias ? rounded(ref::random_vec(U, seed + 2, -0.5, 0.5)) : Vec{}};
        const Vec z = ref::dense_forward(v.x, M, C, v.kernel, U, v.bias, "linear");
        if (far_from_kinks(activation, z, 0.05)) return v;
        REQUIRE(seed < 2000);
    }
}

void check_dense(const std::string& activation, bool use_bias, const Shape& x_shape, int U) {
    CAPTURE(activation);
    CAPTURE(use_bias);
    CAPTURE(keras::shape_str(x_shape));
    const int C = static_cast<int>(x_shape.back());
    const int M = static_cast<int>(keras::num_elements(x_shape) / C);
    Shape y_shape = x_shape;
    y_shape.back() = U;

    layers::Dense dense(U, {.activation = activation, .use_bias = use_bias, .name = "dense_check"});
    CHECK(dense.build_for(with_batch_none(x_shape)) == with_batch_none(y_shape));
    REQUIRE(dense.weights().size() == (use_bias ? 2u : 1u));
    CHECK(dense.weights()[0]->name == "kernel");
    CHECK(dense.weights()[0]->value.shape() == Shape{C, U});
    if (use_bias) {
        CHECK(dense.weights()[1]->name == "bias");
        CHECK(dense.weights()[1]->value.shape() == Shape{U});
    }

    const DenseValues v = draw_dense_values(activation, M, C, U, use_bias);
    Tensor x = to_tensor(v.x, x_shape);
    Tensor& kernel = dense.weights()[0]->value;
    kernel = to_tensor(v.kernel, {C, U});
    if (use_bias) dense.weights()[1]->value = to_tensor(v.bias, {U});

    // Forward.
    CallContext ctx{.training = true};
    const Tensor y = dense.call(x, ctx);
    CHECK(y.shape() == y_shape);
    CHECK_CLOSE("forward", to_vec(y), ref::dense_forward(v.x, M, C, v.kernel, U, v.bias, activation), 1e-5, 1e-4);

    // Backward against the reference.
    const Vec w = rounded(ref::random_vec(M * U, 77, -1, 1));   // dL/dy for L = sum(y * w)
    const Tensor dx = dense.backward(to_tensor(w, y_shape), ctx);
    CHECK(dx.shape() == x_shape);
    const auto g = ref::dense_backward(v.x, M, C, v.kernel, U, v.bias, activation, w);
    CHECK_CLOSE("dx", to_vec(dx), g.dx, 1e-5, 1e-4);
    REQUIRE(dense.weights()[0]->grad.defined());
    CHECK(dense.weights()[0]->grad.shape() == Shape{C, U});
    CHECK_CLOSE("dkernel", to_vec(dense.weights()[0]->grad), g.dkernel, 1e-5, 1e-4);
    if (use_bias) CHECK_CLOSE("dbias", to_vec(dense.weights()[1]->grad), g.dbias, 1e-5, 1e-4);

    // Backward against finite differences of our forward pass.
    auto forward = [&] {
        CallContext c;
        return to_vec(dense.call(x, c));
    };
    CHECK_CLOSE("dx vs finite differences", to_vec(dx), numeric_grad(forward, x, w, kEps), kFdAtol, kFdRtol);
    CHECK_CLOSE("dkernel vs finite differences", to_vec(dense.weights()[0]->grad), numeric_grad(forward, kernel, w, kEps),
                kFdAtol, kFdRtol);
    if (use_bias)
        CHECK_CLOSE("dbias vs finite differences", to_vec(dense.weights()[1]->grad),
                    numeric_grad(forward, dense.weights()[1]->value, w, kEps), kFdAtol, kFdRtol);
}

const char* const kDenseActivations[] = {"linear", "relu", "sigmoid", "tanh", "softmax",
                                         "elu", "gelu", "swish", "softplus", "hard_sigmoid"};

}  // namespace

TEST_CASE("Dense forward and backward, 2-D input") {
    for (const char* activation : kDenseActivations)
        for (bool use_bias : {true, false}) check_dense(activation, use_bias, {5, 7}, 4);
}

TEST_CASE("Dense forward and backward, 3-D input (applied over the last axis)") {
    for (const char* activation : kDenseActivations)
        for (bool use_bias : {true, false}) check_dense(activation, use_bias, {3, 4, 6}, 5);
}

TEST_CASE("Dense default weights: glorot_uniform kernel, zero bias") {
    keras::utils::set_random_seed(21);
    layers::Dense dense(30, {.name = "dense_init"});
    dense.build_for({-1, 50});
    CHECK(dense.count_params() == 50 * 30 + 30);
    const Vec kernel = to_vec(dense.weights()[0]->value);
    const double limit = std::sqrt(6.0 / (50 + 30));
    double biggest = 0;
    for (double k : kernel) biggest = std::max(biggest, std::fabs(k));
    CHECK(biggest <= limit);
    CHECK(biggest > 0.9 * limit);
    CHECK(to_vec(dense.weights()[1]->value) == Vec(30, 0.0));
    CHECK_FALSE(dense.weights()[0]->grad.defined());
}

TEST_CASE("Dense backward adds into existing gradients") {
    layers::Dense dense(3, {.activation = "tanh", .name = "dense_accumulate"});
    dense.build_for({-1, 4});
    const Vec x = rounded(ref::random_vec(8, 5));
    dense.weights()[0]->value = to_tensor(rounded(ref::random_vec(12, 6)), {4, 3});
    dense.weights()[1]->value = to_tensor(rounded(ref::random_vec(3, 7)), {3});
    const Vec dy = rounded(ref::random_vec(6, 8));
    const auto g = ref::dense_backward(x, 2, 4, to_vec(dense.weights()[0]->value), 3, to_vec(dense.weights()[1]->value),
                                       "tanh", dy);
    CallContext ctx;
    dense.call(to_tensor(x, {2, 4}), ctx);
    dense.backward(to_tensor(dy, {2, 3}), ctx);
    dense.backward(to_tensor(dy, {2, 3}), ctx);
    Vec twice_k = g.dkernel, twice_b = g.dbias;
    for (double& d : twice_k) d *= 2;
    for (double& d : twice_b) d *= 2;
    CHECK_CLOSE("dkernel after two backward passes", to_vec(dense.weights()[0]->grad), twice_k, 1e-5, 1e-4);
    CHECK_CLOSE("dbias after two backward passes", to_vec(dense.weights()[1]->grad), twice_b, 1e-5, 1e-4);
}

TEST_CASE("Dense called twice keeps each call's state in its own context") {
    layers::Dense dense(2, {.activation = "sigmoid", .name = "dense_shared"});
    dense.build_for({-1, 3});
    const Vec k = rounded(ref::random_vec(6, 11)), b = rounded(ref::random_vec(2, 12));
    dense.weights()[0]->value = to_tensor(k, {3, 2});
    dense.weights()[1]->value = to_tensor(b, {2});
    const Vec x1 = rounded(ref::random_vec(3, 13)), x2 = rounded(ref::random_vec(9, 14));
    const Vec dy1 = rounded(ref::random_vec(2, 15));
    CallContext c1, c2;
    dense.call(to_tensor(x1, {1, 3}), c1);
    dense.call(to_tensor(x2, {3, 3}), c2);   // a second call, other batch size, before c1's backward
    const Tensor dx1 = dense.backward(to_tensor(dy1, {1, 2}), c1);
    const auto g = ref::dense_backward(x1, 1, 3, k, 2, b, "sigmoid", dy1);
    CHECK_CLOSE("dx of the first call", to_vec(dx1), g.dx, 1e-6, 1e-5);
    CHECK_CLOSE("dkernel of the first call", to_vec(dense.weights()[0]->grad), g.dkernel, 1e-6, 1e-5);
}

TEST_CASE("Dense input and argument errors") {
    layers::Dense one_d(3, {.name = "dense_x"});
    CHECK(message_of<keras::ValueError>([&] { one_d.build_for({-1}); }) ==
          "Input 0 of layer \"dense_x\" is incompatible with the layer: expected min_ndim=2, found ndim=1. "
          "Full shape received: (None,)");
    CHECK_FALSE(one_d.built());

    layers::Dense reused(3, {.name = "dense_r"});
    reused.build_for({-1, 7});
    CHECK(message_of<keras::ValueError>([&] { reused.build_for({-1, 8}); }) ==
          "Input 0 of layer \"dense_r\" is incompatible with the layer: expected axis -1 of input shape to have "
          "value 7, but received input with shape (None, 8). Full shape received: (None, 8)");
    CHECK(reused.build_for({-1, 7}) == Shape{-1, 3});   // the same last axis is fine

    layers::Dense undefined(3, {.name = "dense_u"});
    CHECK(message_of<keras::ValueError>([&] { undefined.build_for({-1, -1}); }) ==
          "Input 0 of layer \"dense_u\" is incompatible with the layer: the last axis of the input must be defined. "
          "Full shape received: (None, None)");

    CHECK(message_of<keras::ValueError>([] { layers::Dense d(0); }) ==
          "Received an invalid value for `units`, expected a positive integer. Received: units=0");
    CHECK(message_of<keras::ValueError>([] { layers::Dense d(-4); }) ==
          "Received an invalid value for `units`, expected a positive integer. Received: units=-4");
    CHECK(message_of<keras::ValueError>([] { layers::Dense d(3, "foo"); }) == "Could not interpret activation function identifier: foo");
    CHECK(message_of<keras::ValueError>([] { layers::Dense d(3, {.kernel_initializer = "foo"}); }) ==
          "Could not interpret initializer identifier: foo");
    CHECK(message_of<keras::ValueError>([] { layers::Dense d(3, {.bias_initializer = "bar"}); }) ==
          "Could not interpret initializer identifier: bar");
}

TEST_CASE("Dense get_config") {
    layers::Dense dense(3, {.activation = "relu", .use_bias = false, .kernel_initializer = "he_normal",
                            .name = "dense_cfg"});
    const auto config = dense.get_config();
    for (const char* key : {"name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
                            "bias_initializer"})
        CHECK_MESSAGE(config.contains(key), key);
    CHECK(config["name"] == "dense_cfg");
    CHECK(config["trainable"] == true);
    // Keras 3.15's forms (printed by keras.layers.Dense(...).get_config()).
    CHECK(config["dtype"] == nlohmann::json::parse(R"({"module": "keras", "class_name": "DTypePolicy",
        "config": {"name": "float32"}, "registered_name": null})"));
    CHECK(config["units"] == 3);
    CHECK(config["activation"] == "relu");
    CHECK(config["use_bias"] == false);
    CHECK(config["kernel_initializer"] == nlohmann::json::parse(R"({"module": "keras.initializers",
        "class_name": "HeNormal", "config": {"seed": null, "input_axes": null, "output_axes": null},
        "registered_name": null})"));
    CHECK(config["bias_initializer"]["class_name"] == "Zeros");
    CHECK(config["quantization_config"].is_null());
    CHECK(layers::Dense(2, {.name = "dense_lin"}).get_config()["activation"] == "linear");
}

// ---------------------------------------------------------------------------------------------
// Embedding
// ---------------------------------------------------------------------------------------------

namespace {
// Random ids in [0, vocab), as a tensor of Id and as the reference's long longs.
template <typename Id>
std::pair<Tensor, std::vector<long long>> random_ids(const Shape& shape, int vocab, unsigned seed) {
    const Vec u = ref::random_vec(static_cast<size_t>(keras::num_elements(shape)), seed, 0, 1);
    std::vector<Id> ids(u.size());
    std::vector<long long> as_ll(u.size());
    for (size_t i = 0; i < u.size(); ++i) ids[i] = static_cast<Id>(u[i] * vocab), as_ll[i] = ids[i];
    return {Tensor(ids, shape), as_ll};
}
}  // namespace

TEST_CASE_TEMPLATE("Embedding forward, backward and finite differences", Id, int32_t, int64_t) {
    const int V = 11, D = 5;
    for (const Shape& ids_shape : {Shape{3, 7}, Shape{4}, Shape{2, 3, 4}}) {
        CAPTURE(keras::shape_str(ids_shape));
        layers::Embedding emb(V, D, {.name = "emb_check"});
        Shape out_shape = ids_shape;
        out_shape.push_back(D);
        CHECK(emb.build_for(with_batch_none(ids_shape)) == with_batch_none(out_shape));
        REQUIRE(emb.weights().size() == 1);
        CHECK(emb.weights()[0]->name == "embeddings");
        CHECK(emb.weights()[0]->value.shape() == Shape{V, D});

        const Vec table = rounded(ref::random_vec(V * D, 31));
        Tensor& weights = emb.weights()[0]->value;
        weights = to_tensor(table, {V, D});
        const auto ids_and_values = random_ids<Id>(ids_shape, V, 32);   // not structured bindings: clang 14 cannot capture those in lambdas
        const Tensor& ids = ids_and_values.first;
        const std::vector<long long>& ids_ll = ids_and_values.second;

        CallContext ctx{.training = true};
        const Tensor y = emb.call(ids, ctx);
        CHECK(y.shape() == out_shape);
        CHECK(to_vec(y) == ref::embedding_forward(ids_ll, table, V, D));   // a copy: exact

        const Vec w = rounded(ref::random_vec(ids_ll.size() * D, 33));
        const Tensor dx = emb.backward(to_tensor(w, out_shape), ctx);
        CHECK_FALSE(dx.defined());   // ids have no gradient
        REQUIRE(emb.weights()[0]->grad.defined());
        const Vec dtable = to_vec(emb.weights()[0]->grad);
        CHECK_CLOSE("d embeddings", dtable, ref::embedding_backward(ids_ll, w, V, D), 1e-6, 1e-6);
        auto forward = [&] {
            CallContext c;
            return to_vec(emb.call(ids, c));
        };
        CHECK_CLOSE("d embeddings vs finite differences", dtable, numeric_grad(forward, weights, w, kEps), kFdAtol,
                    kFdRtol);
    }
}

TEST_CASE("Embedding casts float ids to integers like Keras") {
    layers::Embedding emb(12, 3, {.name = "emb_float"});
    emb.build_for({-1, 4});
    const Vec table = rounded(ref::random_vec(36, 41));
    emb.weights()[0]->value = to_tensor(table, {12, 3});
    const Tensor float_ids(std::vector<float>{1.0f, 4.0f, 11.0f, 0.0f, 2.9f, 7.0f, 7.0f, 3.0f}, {2, 4});
    CallContext ctx{.training = true};
    const Tensor y = emb.call(float_ids, ctx);
    CHECK(y.shape() == Shape{2, 4, 3});
    CHECK(to_vec(y) == ref::embedding_forward({1, 4, 11, 0, 2, 7, 7, 3}, table, 12, 3));   // 2.9 -> 2
    const Vec w = rounded(ref::random_vec(24, 42));
    emb.backward(to_tensor(w, {2, 4, 3}), ctx);
    CHECK_CLOSE("d embeddings (float ids)", to_vec(emb.weights()[0]->grad),
                ref::embedding_backward({1, 4, 11, 0, 2, 7, 7, 3}, w, 12, 3), 1e-6, 1e-6);

    CallContext c2;
    CHECK(message_of<keras::ValueError>([&] { emb.call(Tensor(std::vector<float>{12.0f}, {1, 1}), c2); }) ==
          "Embedding layer \"emb_float\": input id 12 at position [0, 0] is outside [0, 12) (input_dim=12)");
}

TEST_CASE_TEMPLATE("Embedding rejects ids outside [0, input_dim) and names them", Id, int32_t, int64_t) {
    layers::Embedding emb(6000, 3, {.name = "emb_range"});
    emb.build_for({-1, 20});
    std::vector<Id> ids(80, 5);
    ids[3 * 20 + 17] = 6001;
    CallContext ctx;
    CHECK(message_of<keras::ValueError>([&] { emb.call(Tensor(ids, {4, 20}), ctx); }) ==
          "Embedding layer \"emb_range\": input id 6001 at position [3, 17] is outside [0, 6000) (input_dim=6000)");
    ids[3 * 20 + 17] = 6000;
    CHECK(message_of<keras::ValueError>([&] { emb.call(Tensor(ids, {4, 20}), ctx); }) ==
          "Embedding layer \"emb_range\": input id 6000 at position [3, 17] is outside [0, 6000) (input_dim=6000)");
    ids[3 * 20 + 17] = 5999;   // the largest valid id
    ids[2] = -1;
    CHECK(message_of<keras::ValueError>([&] { emb.call(Tensor(ids, {4, 20}), ctx); }) ==
          "Embedding layer \"emb_range\": input id -1 at position [0, 2] is outside [0, 6000) (input_dim=6000)");
    ids[2] = 0;
    CHECK_NOTHROW(emb.call(Tensor(ids, {4, 20}), ctx));
}

TEST_CASE("Embedding argument errors and get_config") {
    CHECK(message_of<keras::ValueError>([] { layers::Embedding e(0, 4); }) ==
          "Both `input_dim` and `output_dim` should be positive, Received input_dim = 0 and output_dim = 4");
    CHECK(message_of<keras::ValueError>([] { layers::Embedding e(10, -2); }) ==
          "Both `input_dim` and `output_dim` should be positive, Received input_dim = 10 and output_dim = -2");
    CHECK(message_of<keras::ValueError>([] { layers::Embedding e(10, 4, {.embeddings_initializer = "foo"}); }) ==
          "Could not interpret initializer identifier: foo");

    keras::utils::set_random_seed(3);
    layers::Embedding emb(100, 8, {.name = "emb_cfg"});
    emb.build_for({-1, 5});
    double biggest = 0;
    for (double v : to_vec(emb.weights()[0]->value)) biggest = std::max(biggest, std::fabs(v));
    CHECK(biggest <= 0.05);   // uniform(-0.05, 0.05)
    CHECK(biggest > 0.045);
    CHECK(emb.count_params() == 800);

    const auto config = emb.get_config();
    for (const char* key : {"name", "trainable", "dtype", "input_dim", "output_dim", "embeddings_initializer",
                            "mask_zero"})
        CHECK_MESSAGE(config.contains(key), key);
    CHECK(config["name"] == "emb_cfg");
    CHECK(config["input_dim"] == 100);
    CHECK(config["output_dim"] == 8);
    CHECK(config["mask_zero"] == false);
    CHECK(config["embeddings_initializer"]["class_name"] == "RandomUniform");
    CHECK(config["embeddings_initializer"]["config"]["minval"] == -0.05);
    CHECK(config["embeddings_initializer"]["config"]["maxval"] == 0.05);
    layers::Embedding zeros(10, 2, {.embeddings_initializer = "zeros", .name = "emb_zeros"});
    CHECK(zeros.get_config()["embeddings_initializer"]["class_name"] == "Zeros");
}

// ---------------------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------------------

TEST_CASE("Dropout is the identity at inference and with rate 0") {
    const Vec x = rounded(ref::random_vec(60, 51));
    layers::Dropout dropout(0.5f, {.name = "drop_eval"});
    CHECK(dropout.build_for({-1, 3, 20}) == Shape{-1, 3, 20});
    CallContext eval;
    CHECK(to_vec(dropout.call(to_tensor(x, {1, 3, 20}), eval)) == x);
    const Vec dy = rounded(ref::random_vec(60, 52));
    CHECK(to_vec(dropout.backward(to_tensor(dy, {1, 3, 20}), eval)) == dy);

    layers::Dropout none(0.0f, {.name = "drop_zero"});
    none.build_for({-1, 60});
    CallContext train{.training = true};
    CHECK(to_vec(none.call(to_tensor(x, {1, 60}), train)) == x);
    CHECK(to_vec(none.backward(to_tensor(dy, {1, 60}), train)) == dy);
}

TEST_CASE("Dropout in training drops about `rate` and scales the rest by 1/(1-rate)") {
    keras::utils::set_random_seed(61);
    for (float rate : {0.1f, 0.3f, 0.75f}) {
        CAPTURE(rate);
        const int n = 100000;
        const Vec x = rounded(ref::random_vec(n, 62, 1, 2));   // never 0, so y == 0 means dropped
        layers::Dropout dropout(rate, {.name = "drop_train"});
        dropout.build_for({-1, 1000});
        CallContext ctx{.training = true};
        const Vec y = to_vec(dropout.call(to_tensor(x, {100, 1000}), ctx));
        const Vec dy = rounded(ref::random_vec(n, 63));
        const Vec dx = to_vec(dropout.backward(to_tensor(dy, {100, 1000}), ctx));
        const double scale = 1.0 / (1.0 - rate);
        int dropped = 0;
        double worst_kept = 0, worst_grad = 0;
        for (int i = 0; i < n; ++i) {
            if (y[i] == 0) {
                ++dropped;
                worst_grad = std::max(worst_grad, std::fabs(dx[i]));   // same mask: no gradient
            } else {
                worst_kept = std::max(worst_kept, std::fabs(y[i] - x[i] * scale) / (x[i] * scale));
                worst_grad = std::max(worst_grad, std::fabs(dx[i] - dy[i] * scale) / scale);
            }
        }
        // Standard error of the dropped fraction is at most 0.0016 here.
        CHECK(std::fabs(dropped / double(n) - rate) < 0.01);
        CHECK(worst_kept < 1e-6);
        CHECK(worst_grad < 1e-6);
    }
}

TEST_CASE("Dropout masks are reproducible under a seed and differ between calls") {
    layers::Dropout dropout(0.5f, {.name = "drop_seed"});
    dropout.build_for({-1, 200});
    const Tensor x = Tensor::full({1, 200}, 1.0f);
    auto mask = [&] {
        CallContext ctx{.training = true};
        return to_vec(dropout.call(x, ctx));
    };
    keras::utils::set_random_seed(5);
    const Vec first = mask();
    const Vec second = mask();
    keras::utils::set_random_seed(5);
    CHECK(mask() == first);
    CHECK(first != second);
}

TEST_CASE("Dropout rate outside [0, 1) and get_config") {
    CHECK(message_of<keras::ValueError>([] { layers::Dropout d(1.5f); }) ==
          "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate=1.5");
    CHECK(message_of<keras::ValueError>([] { layers::Dropout d(-0.1f); }) ==
          "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate=-0.1");
    CHECK(message_of<keras::ValueError>([] { layers::Dropout d(1.0f); }) != "<no exception>");
    CHECK(message_of<keras::ValueError>([] { layers::Dropout d(std::nanf("")); }) != "<no exception>");

    const auto config = layers::Dropout(0.25f, {.name = "drop_cfg"}).get_config();
    for (const char* key : {"name", "trainable", "dtype", "rate", "noise_shape", "seed"})
        CHECK_MESSAGE(config.contains(key), key);
    CHECK(config["name"] == "drop_cfg");
    CHECK(config["rate"] == 0.25);
    CHECK(config["noise_shape"].is_null());
    CHECK(config["seed"].is_null());
}

// ---------------------------------------------------------------------------------------------
// Activation
// ---------------------------------------------------------------------------------------------

TEST_CASE("Activation layer forward and backward for every activation") {
    // An element-wise activation (and softmax over the last axis) is a Dense layer with an identity
    // kernel and no bias, so the reference's dense functions give the expected values.
    const int rows = 6, cols = 5;
    Vec identity(cols * cols, 0.0);
    for (int i = 0; i < cols; ++i) identity[i * cols + i] = 1.0;
    for (const char* name : {"linear", "relu", "sigmoid", "tanh", "softmax", "hard_sigmoid", "hard_sigmoid_keras2",
                             "elu", "selu", "softplus", "softsign", "swish", "silu", "gelu", "exponential"}) {
        CAPTURE(name);
        const std::string ref_name = std::string(name) == "silu" ? "swish" : name;
        layers::Activation layer(name, {.name = "act_check"});
        CHECK(layer.build_for({-1, 2, cols}) == Shape{-1, 2, cols});
        CHECK(layer.weights().empty());
        // Inputs in [-4, 4], nudged 0.05 away from kinks for the finite differences.
        Vec xv = ref::random_vec(rows * cols, 71, -4, 4);
        for (double& v : xv)
            if (!far_from_kinks(ref_name, {v}, 0.05)) v += 0.1;
        xv = rounded(xv);
        Tensor x = to_tensor(xv, {3, 2, cols});

        CallContext ctx{.training = true};
        const Tensor y = layer.call(x, ctx);
        CHECK(y.shape() == Shape{3, 2, cols});
        CHECK_CLOSE("forward", to_vec(y), ref::dense_forward(xv, rows, cols, identity, cols, {}, ref_name), 1e-6, 1e-5);

        const Vec w = rounded(ref::random_vec(rows * cols, 72));
        const Tensor dx = layer.backward(to_tensor(w, {3, 2, cols}), ctx);
        CHECK(dx.shape() == Shape{3, 2, cols});
        const auto g = ref::dense_backward(xv, rows, cols, identity, cols, {}, ref_name, w);
        CHECK_CLOSE("dx", to_vec(dx), g.dx, 1e-6, 1e-5);
        auto forward = [&] {
            CallContext c;
            return to_vec(layer.call(x, c));
        };
        CHECK_CLOSE("dx vs finite differences", to_vec(dx), numeric_grad(forward, x, w, kEps), kFdAtol, kFdRtol);
        CHECK(layer.get_config()["activation"] == (std::string(name) == "silu" ? "swish" : name));
    }
    CHECK(message_of<keras::ValueError>([] { layers::Activation a("foo"); }) == "Could not interpret activation function identifier: foo");
}

// ---------------------------------------------------------------------------------------------
// Flatten and GlobalAveragePooling1D
// ---------------------------------------------------------------------------------------------

TEST_CASE("Flatten keeps row-major order and its backward restores the shape") {
    layers::Flatten flatten({.name = "flatten_check"});
    CHECK(flatten.build_for({-1, 3, 4}) == Shape{-1, 12});
    CHECK(flatten.compute_output_shape({-1, -1, 4}) == Shape{-1, -1});
    CHECK(flatten.compute_output_shape({-1}) == Shape{-1, 1});
    const Vec xv = rounded(ref::random_vec(24, 81));
    CallContext ctx;
    const Tensor y = flatten.call(to_tensor(xv, {2, 3, 4}), ctx);
    CHECK(y.shape() == Shape{2, 12});
    CHECK(to_vec(y) == xv);
    const Vec dy = rounded(ref::random_vec(24, 82));
    const Tensor dx = flatten.backward(to_tensor(dy, {2, 12}), ctx);
    CHECK(dx.shape() == Shape{2, 3, 4});
    CHECK(to_vec(dx) == dy);

    layers::Flatten one_d({.name = "flatten_1d"});
    one_d.build_for({-1});
    CallContext c1;
    CHECK(one_d.call(to_tensor({1, 2, 3}, {3}), c1).shape() == Shape{3, 1});
    CHECK(one_d.backward(to_tensor({1, 2, 3}, {3, 1}), c1).shape() == Shape{3});
}

TEST_CASE("Flatten shared between inputs of different lengths") {
    // Build checks only pin the rank and the last axis, so one Flatten may see (2, 3, 4) and (2, 5, 4);
    // each backward must restore the shape of its own call.
    layers::Flatten flatten({.name = "flatten_shared"});
    flatten.build_for({-1, 3, 4});
    flatten.build_for({-1, 5, 4});
    CallContext c1, c2;
    flatten.call(Tensor::zeros({2, 3, 4}), c1);
    flatten.call(Tensor::zeros({2, 5, 4}), c2);
    CHECK(flatten.backward(Tensor::zeros({2, 12}), c1).shape() == Shape{2, 3, 4});
    CHECK(flatten.backward(Tensor::zeros({2, 20}), c2).shape() == Shape{2, 5, 4});
}

TEST_CASE("GlobalAveragePooling1D averages over steps") {
    const int N = 3, T = 5, C = 4;
    layers::GlobalAveragePooling1D pool({.name = "gap_check"});
    CHECK(pool.build_for({-1, T, C}) == Shape{-1, C});
    CHECK(pool.compute_output_shape({-1, -1, C}) == Shape{-1, C});
    const Vec xv = rounded(ref::random_vec(N * T * C, 91));
    Tensor x = to_tensor(xv, {N, T, C});
    CallContext ctx{.training = true};
    const Tensor y = pool.call(x, ctx);
    CHECK(y.shape() == Shape{N, C});
    Vec want(N * C, 0.0);
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            for (int c = 0; c < C; ++c) want[n * C + c] += xv[(n * T + t) * C + c] / T;
    CHECK_CLOSE("forward", to_vec(y), want, 1e-6, 1e-6);

    const Vec w = rounded(ref::random_vec(N * C, 92));
    const Tensor dx = pool.backward(to_tensor(w, {N, C}), ctx);
    CHECK(dx.shape() == Shape{N, T, C});
    Vec want_dx(N * T * C);
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            for (int c = 0; c < C; ++c) want_dx[(n * T + t) * C + c] = w[n * C + c] / T;
    CHECK_CLOSE("dx", to_vec(dx), want_dx, 1e-7, 1e-6);
    auto forward = [&] {
        CallContext c;
        return to_vec(pool.call(x, c));
    };
    CHECK_CLOSE("dx vs finite differences", to_vec(dx), numeric_grad(forward, x, w, kEps), kFdAtol, kFdRtol);

    layers::GlobalAveragePooling1D flat({.name = "gap"});
    CHECK(message_of<keras::ValueError>([&] { flat.build_for({-1, 5}); }) ==
          "Input 0 of layer \"gap\" is incompatible with the layer: expected ndim=3, found ndim=2. "
          "Full shape received: (None, 5)");
}

// ---------------------------------------------------------------------------------------------
// Layer names
// ---------------------------------------------------------------------------------------------

TEST_CASE("automatic layer names follow Keras") {
    CHECK(keras::utils::to_snake_case("Dense") == "dense");
    CHECK(keras::utils::to_snake_case("SimpleRNN") == "simple_rnn");
    CHECK(keras::utils::to_snake_case("LSTM") == "lstm");
    CHECK(keras::utils::to_snake_case("GRU") == "gru");
    CHECK(keras::utils::to_snake_case("InputLayer") == "input_layer");
    CHECK(keras::utils::to_snake_case("GlobalAveragePooling1D") == "global_average_pooling1d");
    CHECK(keras::utils::to_snake_case("Conv1DTranspose") == "conv1d_transpose");

    keras::utils::clear_session();
    CHECK(layers::Dense(2).name() == "dense");
    CHECK(layers::Dense(2).name() == "dense_1");
    CHECK(layers::Dense(2, {.name = "mine"}).name() == "mine");
    CHECK(layers::Dense(2).name() == "dense_2");
    CHECK(layers::Embedding(3, 2).name() == "embedding");
    CHECK(layers::Dropout(0.1f).name() == "dropout");
    CHECK(layers::Activation("relu").name() == "activation");
    CHECK(layers::Flatten().name() == "flatten");
    CHECK(layers::GlobalAveragePooling1D().name() == "global_average_pooling1d");
    keras::utils::clear_session();
    CHECK(layers::Dense(2).name() == "dense");
}

TEST_CASE("the CPU backend flushes denormals to zero (gradients through long sequences stay fast)") {
    // Denormal arithmetic is ~100x slower on x86; the backend sets FTZ/DAZ when it is created.
    keras::Tensor tiny = keras::Tensor::full({4}, 1e-39f);   // a denormal float
    keras::Tensor ones = keras::Tensor::full({4}, 1.0f);
    auto& cpu = keras::backend::get(keras::Device::cpu());
    const keras::Tensor product = cpu.multiply(tiny, ones);
    for (float v : product.to_vector<float>()) CHECK(v == 0.0f);
}
