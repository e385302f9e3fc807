// Tests of the framework's foundations: keras::Tensor, keras::random, the weight initialisers and
// the scalar activation functions (checked against the double-precision reference, tests/reference).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "keras/activations.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"
#include "keras/random.hpp"
#include "keras/tensor.hpp"
#include "reference/reference.hpp"
#include "test_helpers.hpp"

using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;

using keras::DType;
using keras::Shape;
using keras::Tensor;

namespace {

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}

double variance(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / static_cast<double>(v.size());
}

double max_abs(const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Tensor
// ---------------------------------------------------------------------------------------------

TEST_CASE("shape_str writes shapes the way Keras prints them") {
    CHECK(keras::shape_str({-1, 130, 100}) == "(None, 130, 100)");
    CHECK(keras::shape_str({5}) == "(5,)");
    CHECK(keras::shape_str({-1}) == "(None,)");
    CHECK(keras::shape_str({}) == "()");
    CHECK(keras::shape_str({2, 3}) == "(2, 3)");
    CHECK(keras::num_elements({2, 3, 4}) == 24);
    CHECK(keras::num_elements({}) == 1);
    CHECK(keras::num_elements({3, 0}) == 0);
    CHECK(keras::dtype_size(DType::float32) == 4);
    CHECK(keras::dtype_size(DType::int32) == 4);
    CHECK(keras::dtype_size(DType::int64) == 8);
    CHECK(keras::to_string(DType::float32) == "float32");
    CHECK(keras::to_string(DType::int32) == "int32");
    CHECK(keras::to_string(DType::int64) == "int64");
}

TEST_CASE("Tensor from a vector keeps values, shape and dtype") {
    const std::vector<float> values = {1, 2, 3, 4, 5, 6};
    Tensor t(values, {2, 3});
    CHECK(t.defined());
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.ndim() == 2);
    CHECK(t.numel() == 6);
    CHECK(t.dtype() == DType::float32);
    CHECK(t.nbytes() == 24);
    CHECK(t.dim(0) == 2);
    CHECK(t.dim(1) == 3);
    CHECK(t.dim(-1) == 3);
    CHECK(t.dim(-2) == 2);
    CHECK(t.to_vector<float>() == values);
    CHECK(t.item(4) == 5.0);

    const std::vector<int64_t> ids = {7, -3, 1LL << 40};
    Tensor l(ids, {3});
    CHECK(l.dtype() == DType::int64);
    CHECK(l.to_vector<int64_t>() == ids);
    CHECK(l.item(2) == static_cast<double>(1LL << 40));

    CHECK(message_of<keras::ValueError>([] { Tensor bad(std::vector<float>{1, 2, 3, 4, 5}, {2, 3}); }) ==
          "Cannot make a tensor of shape (2, 3) (6 elements) from 5 values");
    CHECK(message_of<keras::ValueError>([&] { (void)t.dim(2); }) == "Axis 2 is out of range for a tensor of shape (2, 3)");
    CHECK(message_of<keras::ValueError>([&] { (void)t.dim(-3); }) == "Axis -3 is out of range for a tensor of shape (2, 3)");
    CHECK(message_of<keras::ValueError>([] { Tensor bad({2, -1}, DType::float32); }) ==
          "Tensor dimensions must be >= 0, got shape (2, None)");
}

TEST_CASE("Tensor from a pointer copies numel values") {
    const int32_t raw[] = {4, 5, 6, 7, 8, 9, 10};
    Tensor t(raw, {2, 3});   // only the first 6 are read
    CHECK(t.dtype() == DType::int32);
    CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{4, 5, 6, 7, 8, 9});
}

TEST_CASE("zeros, full, fill") {
    Tensor z = Tensor::zeros({3, 2}, DType::int64);
    CHECK(z.dtype() == DType::int64);
    CHECK(z.to_vector<int64_t>() == std::vector<int64_t>(6, 0));
    Tensor f = Tensor::full({4}, 2.5f);
    CHECK(f.to_vector<float>() == std::vector<float>(4, 2.5f));
    f.fill(-1.0f);
    CHECK(f.to_vector<float>() == std::vector<float>(4, -1.0f));
    Tensor empty = Tensor::zeros({0, 3});
    CHECK(empty.numel() == 0);
    CHECK(empty.defined());
}

TEST_CASE("from_rows builds (rows, width) tensors and rejects ragged rows") {
    Tensor ids = Tensor::from_rows(std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5, 6}});
    CHECK(ids.dtype() == DType::int32);
    CHECK(ids.shape() == Shape{2, 3});
    CHECK(ids.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, 4, 5, 6});

    Tensor x = Tensor::from_rows(std::vector<std::vector<float>>{{0.5f}, {1.5f}, {2.5f}});
    CHECK(x.dtype() == DType::float32);
    CHECK(x.shape() == Shape{3, 1});
    CHECK(x.to_vector<float>() == std::vector<float>{0.5f, 1.5f, 2.5f});

    CHECK(message_of<keras::ValueError>([] { Tensor::from_rows(std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5, 6}, {7, 8}}); }) ==
          "Tensor::from_rows needs rows of equal length: row 0 has 3 values, row 2 has 2 "
          "(pad them first with keras::utils::pad_sequences)");
    CHECK(message_of<keras::ValueError>([] { Tensor::from_rows(std::vector<std::vector<float>>{{1}, {2, 3}}); }) ==
          "Tensor::from_rows needs rows of equal length: row 0 has 1 values, row 1 has 2 "
          "(pad them first with keras::utils::pad_sequences)");
}

TEST_CASE("data<T>() checks the dtype and that the tensor exists") {
    Tensor f = Tensor::zeros({2});
    CHECK(message_of<keras::RuntimeError>([&] { f.data<int32_t>(); }) == "Tensor of dtype float32 accessed as int32");
    const Tensor& cf = f;
    CHECK(message_of<keras::RuntimeError>([&] { cf.data<int64_t>(); }) == "Tensor of dtype float32 accessed as int64");
    Tensor i = Tensor::zeros({2}, DType::int64);
    CHECK(message_of<keras::RuntimeError>([&] { i.data<float>(); }) == "Tensor of dtype int64 accessed as float32");
    Tensor undefined;
    CHECK_FALSE(undefined.defined());
    CHECK(message_of<keras::RuntimeError>([&] { undefined.data<float>(); }) == "Access to an undefined tensor");
}

TEST_CASE("copies share storage, clone does not") {
    Tensor a(std::vector<float>{1, 2, 3}, {3});
    Tensor shared = a;
    Tensor deep = a.clone();
    a.data<float>()[1] = 20;
    CHECK(shared.to_vector<float>() == std::vector<float>{1, 20, 3});
    CHECK(deep.to_vector<float>() == std::vector<float>{1, 2, 3});
    CHECK(deep.shape() == a.shape());
    CHECK(deep.dtype() == a.dtype());
    CHECK_FALSE(Tensor().clone().defined());

    Tensor target = Tensor::zeros({3});
    target.copy_from(a);
    a.data<float>()[0] = -1;
    CHECK(target.to_vector<float>() == std::vector<float>{1, 20, 3});
    Tensor wrong = Tensor::zeros({3}, DType::int32);
    CHECK(message_of<keras::ValueError>([&] { wrong.copy_from(a); }) ==
          "Cannot copy a float32 tensor of shape (3,) into a int32 tensor of shape (3,)");
}

TEST_CASE("reshape shares storage, infers one -1, and rejects impossible shapes") {
    Tensor a(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
    Tensor b = a.reshape({3, 2});
    CHECK(b.shape() == Shape{3, 2});
    b.data<float>()[5] = 50;
    CHECK(a.item(5) == 50.0);   // same storage

    CHECK(a.reshape({-1}).shape() == Shape{6});
    CHECK(a.reshape({-1, 2}).shape() == Shape{3, 2});
    CHECK(a.reshape({1, -1, 3}).shape() == Shape{1, 2, 3});
    CHECK(a.reshape({6, 1, -1}).shape() == Shape{6, 1, 1});
    CHECK(Tensor::zeros({0, 4}).reshape({-1, 2}).shape() == Shape{0, 2});

    CHECK(message_of<keras::ValueError>([&] { a.reshape({4, 2}); }) == "Cannot reshape a tensor of shape (2, 3) into shape (4, 2)");
    CHECK(message_of<keras::ValueError>([&] { a.reshape({-1, 4}); }) == "Cannot reshape a tensor of shape (2, 3) into shape (None, 4)");
    CHECK(message_of<keras::ValueError>([&] { a.reshape({-1, -1}); }) == "Cannot reshape a tensor of shape (2, 3) into shape (None, None)");
    // Negative sizes whose product happens to match are still not a shape.
    CHECK(message_of<keras::ValueError>([&] { a.reshape({-2, -3}); }) != "<no exception>");
    Tensor one = Tensor::zeros({1});
    CHECK(message_of<keras::ValueError>([&] { one.reshape({-1, -1}); }) != "<no exception>");
}

TEST_CASE("slice_rows copies a range of the first axis") {
    Tensor a(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
    Tensor s = a.slice_rows(1, 3);
    CHECK(s.shape() == Shape{2, 2});
    CHECK(s.to_vector<int32_t>() == std::vector<int32_t>{2, 3, 4, 5});
    s.data<int32_t>()[0] = 99;
    CHECK(a.to_vector<int32_t>()[2] == 2);   // a copy, not a view
    CHECK(a.slice_rows(2, 2).shape() == Shape{0, 2});
    CHECK(a.slice_rows(0, 4).to_vector<int32_t>() == a.to_vector<int32_t>());

    CHECK(message_of<keras::ValueError>([&] { a.slice_rows(3, 5); }) == "Rows [3, 5) are out of range for a tensor of shape (4, 2)");
    CHECK(message_of<keras::ValueError>([&] { a.slice_rows(-1, 2); }) == "Rows [-1, 2) are out of range for a tensor of shape (4, 2)");
    CHECK(message_of<keras::ValueError>([&] { a.slice_rows(3, 2); }) == "Rows [3, 2) are out of range for a tensor of shape (4, 2)");
}

TEST_CASE("gather_rows copies the given rows in order") {
    Tensor a(std::vector<float>{0, 1, 10, 11, 20, 21}, {3, 2});
    Tensor g = a.gather_rows({2, 0, 2});
    CHECK(g.shape() == Shape{3, 2});
    CHECK(g.to_vector<float>() == std::vector<float>{20, 21, 0, 1, 20, 21});
    CHECK(a.gather_rows({}).shape() == Shape{0, 2});

    Tensor l(std::vector<int64_t>{5, 6, 7}, {3});
    CHECK(l.gather_rows({1}).to_vector<int64_t>() == std::vector<int64_t>{6});

    CHECK(message_of<keras::ValueError>([&] { a.gather_rows({0, 3}); }) == "Row 3 is out of range for a tensor of shape (3, 2)");
    CHECK(message_of<keras::ValueError>([&] { a.gather_rows({-1}); }) == "Row -1 is out of range for a tensor of shape (3, 2)");
    const Tensor scalar(std::vector<float>{1}, {});
    CHECK(message_of<keras::ValueError>([&] { scalar.gather_rows({}); }) == "Rows cannot be taken from a 0-d tensor (shape ())");
}

TEST_CASE("astype converts like a C cast (float -> int truncates toward zero)") {
    Tensor f(std::vector<float>{2.7f, -2.7f, 0.0f, 7.0f}, {2, 2});
    Tensor i = f.astype(DType::int32);
    CHECK(i.dtype() == DType::int32);
    CHECK(i.shape() == Shape{2, 2});
    CHECK(i.to_vector<int32_t>() == std::vector<int32_t>{2, -2, 0, 7});
    Tensor l = i.astype(DType::int64);
    CHECK(l.to_vector<int64_t>() == std::vector<int64_t>{2, -2, 0, 7});
    Tensor back = l.astype(DType::float32);
    CHECK(back.to_vector<float>() == std::vector<float>{2, -2, 0, 7});
    CHECK(f.astype(DType::float32).to_vector<float>() == f.to_vector<float>());
}

TEST_CASE("item reads any dtype as double and checks the index") {
    CHECK(Tensor(std::vector<float>{0.25f}, {}).item() == 0.25);
    CHECK(Tensor(std::vector<int32_t>{-4, 9}, {2}).item(1) == 9.0);
    Tensor t = Tensor::zeros({2, 3});
    CHECK(message_of<keras::ValueError>([&] { t.item(6); }) == "Index 6 is out of range for a tensor of 6 elements");
    CHECK(message_of<keras::ValueError>([&] { t.item(-1); }) == "Index -1 is out of range for a tensor of 6 elements");
}

// ---------------------------------------------------------------------------------------------
// keras::random
// ---------------------------------------------------------------------------------------------

TEST_CASE("set_random_seed makes the generator reproducible") {
    auto draw = [] {
        std::vector<double> v;
        for (int i = 0; i < 5; ++i) v.push_back(keras::random::uniform01());
        v.push_back(keras::random::normal());
        v.push_back(keras::random::uniform(-3, 5));
        for (int64_t p : keras::random::permutation(10)) v.push_back(static_cast<double>(p));
        return v;
    };
    keras::utils::set_random_seed(42);
    const auto first = draw();
    keras::utils::set_random_seed(42);
    CHECK(draw() == first);
    keras::utils::set_random_seed(43);
    CHECK(draw() != first);
}

TEST_CASE("uniform and normal have the right range and moments") {
    keras::utils::set_random_seed(7);
    const int n = 200000;
    std::vector<double> u(n), g(n), r(n);
    for (int i = 0; i < n; ++i) {
        u[i] = keras::random::uniform01();
        g[i] = keras::random::normal();
        r[i] = keras::random::uniform(-2.0, 6.0);
    }
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    // Standard errors: mean 0.29/sqrt(n) = 6.5e-4, variance of U ~ 2e-4; normal mean 2.2e-3, var 3.2e-3.
    CHECK(std::fabs(mean(u) - 0.5) < 0.004);
    CHECK(std::fabs(variance(u) - 1.0 / 12.0) < 0.0015);
    CHECK(std::fabs(mean(g)) < 0.015);
    CHECK(std::fabs(variance(g) - 1.0) < 0.02);
    CHECK(*std::min_element(r.begin(), r.end()) >= -2.0);
    CHECK(*std::max_element(r.begin(), r.end()) < 6.0);
    CHECK(std::fabs(mean(r) - 2.0) < 0.03);
}

TEST_CASE("permutation returns every index once") {
    keras::utils::set_random_seed(3);
    for (int64_t n : {0, 1, 2, 17, 1000}) {
        auto p = keras::random::permutation(n);
        REQUIRE(static_cast<int64_t>(p.size()) == n);
        std::vector<int64_t> sorted = p;
        std::sort(sorted.begin(), sorted.end());
        for (int64_t i = 0; i < n; ++i) CHECK(sorted[i] == i);
    }
    // A shuffle of 1000 items that leaves more than a few in place is not shuffling.
    const auto p = keras::random::permutation(1000);
    int fixed = 0;
    for (int64_t i = 0; i < 1000; ++i) fixed += p[i] == i;
    CHECK(fixed < 10);
    // Every position receives every value about equally often (first element, 4 values).
    std::vector<int> counts(4, 0);
    for (int trial = 0; trial < 40000; ++trial) counts[keras::random::permutation(4)[0]]++;
    for (int c : counts) CHECK(std::abs(c - 10000) < 500);
}

// ---------------------------------------------------------------------------------------------
// Initializers
// ---------------------------------------------------------------------------------------------

TEST_CASE("every initializer makes a float32 tensor of the requested shape") {
    keras::utils::set_random_seed(1);
    for (const char* name : {"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                             "lecun_uniform", "lecun_normal", "orthogonal", "random_uniform", "random_normal",
                             "uniform"}) {
        CAPTURE(name);
        CHECK_NOTHROW(keras::initializers::check_name(name));
        for (const Shape& shape : {Shape{7, 3}, Shape{3, 7}, Shape{2, 4, 5}}) {
            Tensor t = keras::initializers::make(name, shape);
            CHECK(t.shape() == shape);
            CHECK(t.dtype() == DType::float32);
        }
    }
    CHECK(values_of(keras::initializers::make("zeros", {2, 3})) == std::vector<double>(6, 0.0));
    CHECK(values_of(keras::initializers::make("ones", {5})) == std::vector<double>(5, 1.0));
}

TEST_CASE("initializers are reproducible under a seed") {
    keras::utils::set_random_seed(11);
    const auto a = values_of(keras::initializers::make("glorot_uniform", {8, 8}));
    const auto b = values_of(keras::initializers::make("glorot_uniform", {8, 8}));
    keras::utils::set_random_seed(11);
    CHECK(values_of(keras::initializers::make("glorot_uniform", {8, 8})) == a);
    CHECK(a != b);
}

TEST_CASE("glorot_uniform: |w| <= sqrt(6/(fan_in+fan_out)) and variance limit^2/3") {
    keras::utils::set_random_seed(5);
    const double fan_in = 300, fan_out = 500;
    const double limit = std::sqrt(6.0 / (fan_in + fan_out));
    const auto w = values_of(keras::initializers::make("glorot_uniform", {300, 500}));
    CHECK(max_abs(w) <= limit);
    CHECK(max_abs(w) > 0.999 * limit);   // the whole range is used
    CHECK(std::fabs(mean(w)) < 0.01 * limit);
    // Relative standard error of the sample variance here is 0.23 %.
    CHECK(variance(w) == doctest::Approx(limit * limit / 3.0).epsilon(0.015));
}

TEST_CASE("uniform initializers use Keras's limits, including receptive fields for 3-D shapes") {
    keras::utils::set_random_seed(6);
    struct Case {
        const char* name;
        Shape shape;
        double limit;
    };
    const Case cases[] = {
        {"he_uniform", {200, 100}, std::sqrt(6.0 / 200)},
        {"lecun_uniform", {200, 100}, std::sqrt(3.0 / 200)},
        {"random_uniform", {100, 100}, 0.05},
        {"uniform", {100, 100}, 0.05},
        // Receptive field 3: fan_in = 3*40, fan_out = 3*50.
        {"glorot_uniform", {3, 40, 50}, std::sqrt(6.0 / (120 + 150))},
        // 1-D: fan_in = fan_out = n.
        {"glorot_uniform", {5000}, std::sqrt(6.0 / 10000)},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CAPTURE(keras::shape_str(c.shape));
        const auto w = values_of(keras::initializers::make(c.name, c.shape));
        CHECK(max_abs(w) <= c.limit);
        CHECK(max_abs(w) > 0.99 * c.limit);
        CHECK(variance(w) == doctest::Approx(c.limit * c.limit / 3.0).epsilon(0.05));   // ~4 standard errors
    }
}

TEST_CASE("normal initializers: truncated at 2 stddev with the variance Keras targets") {
    keras::utils::set_random_seed(8);
    struct Case {
        const char* name;
        double variance;   // Keras's variance-scaling target (the truncated distribution has this variance)
        double cutoff;     // largest |w| allowed
    };
    const double fan_in = 300, fan_out = 400;
    const double trunc = 0.87962566103423978;   // stddev of a standard normal truncated at +-2
    const Case cases[] = {
        {"glorot_normal", 2.0 / (fan_in + fan_out), 2.0 * std::sqrt(2.0 / (fan_in + fan_out)) / trunc},
        {"he_normal", 2.0 / fan_in, 2.0 * std::sqrt(2.0 / fan_in) / trunc},
        {"lecun_normal", 1.0 / fan_in, 2.0 * std::sqrt(1.0 / fan_in) / trunc},
        {"random_normal", 0.05 * 0.05, 1e9},   // not truncated
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const auto w = values_of(keras::initializers::make(c.name, {300, 400}));
        CHECK(max_abs(w) <= c.cutoff * (1 + 1e-6));
        CHECK(std::fabs(mean(w)) < 0.02 * std::sqrt(c.variance));
        CHECK(variance(w) == doctest::Approx(c.variance).epsilon(0.02));
    }
}

TEST_CASE("orthogonal gives orthonormal columns (tall) or rows (wide)") {
    keras::utils::set_random_seed(9);
    for (const Shape& shape : {Shape{64, 32}, Shape{32, 64}, Shape{48, 48}, Shape{2, 8, 24}}) {
        CAPTURE(keras::shape_str(shape));
        const Tensor t = keras::initializers::make("orthogonal", shape);
        const int64_t cols = shape.back(), rows = t.numel() / cols;
        const bool wide = rows < cols;
        const int64_t k = wide ? rows : cols;   // size of the Gram matrix
        const int64_t len = wide ? cols : rows;
        const float* w = t.data<float>();
        // Element (r, c) of the matrix seen so that the Gram vectors are its columns.
        auto at = [&](int64_t i, int64_t v) { return double(wide ? w[v * cols + i] : w[i * cols + v]); };
        double worst = 0;
        for (int64_t a = 0; a < k; ++a)
            for (int64_t b = 0; b < k; ++b) {
                double dot = 0;
                for (int64_t i = 0; i < len; ++i) dot += at(i, a) * at(i, b);
                worst = std::max(worst, std::fabs(dot - (a == b ? 1.0 : 0.0)));
            }
        CHECK(worst < 1e-5);
    }
}

TEST_CASE("unknown initializer names are errors") {
    CHECK(message_of<keras::ValueError>([] { keras::initializers::make("foo", {2, 2}); }) ==
          "Could not interpret initializer identifier: foo");
    CHECK(message_of<keras::ValueError>([] { keras::initializers::check_name("GlorotUniformish"); }) ==
          "Could not interpret initializer identifier: GlorotUniformish");
}

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

namespace {
// Every element-wise activation, by its Keras name (softmax is a row operation, tested with layers).
const char* const kElementwise[] = {"linear", "relu", "sigmoid", "tanh", "hard_sigmoid", "hard_sigmoid_keras2",
                                    "elu", "selu", "softplus", "softsign", "swish", "gelu", "exponential"};

// -8 .. 8 in steps of 1/8 (exact in float, hits every kink: 0, +-2.5, +-3), plus points between.
std::vector<double> grid() {
    std::vector<double> xs;
    for (int i = -64; i <= 64; ++i) xs.push_back(i / 8.0);
    for (double x : {-30.0, -15.3, -0.3333, -1e-4, 1e-4, 0.7071, 15.3, 20.0}) xs.push_back(x);
    return xs;
}
}  // namespace

TEST_CASE("activation apply matches the double-precision reference") {
    for (const char* name : kElementwise) {
        CAPTURE(name);
        const keras::Activation a = keras::activation_from_string(name);
        for (double x : grid()) {
            if (std::string(name) == "exponential" && x > 15) continue;   // beyond float's comfortable range
            CAPTURE(x);
            const double got = keras::activations::apply(a, static_cast<float>(x));
            const double want = ref::act(name, static_cast<float>(x));
            CHECK(std::fabs(got - want) <= 1e-6 + 2e-6 * std::fabs(want));
        }
    }
}

TEST_CASE("activation derivative matches the double-precision reference") {
    for (const char* name : kElementwise) {
        CAPTURE(name);
        const keras::Activation a = keras::activation_from_string(name);
        for (double x : grid()) {
            if (std::string(name) == "exponential" && x > 15) continue;
            CAPTURE(x);
            const float xf = static_cast<float>(x);
            const float y = keras::activations::apply(a, xf);
            const double got = keras::activations::derivative(a, xf, y);
            const double want = ref::act_grad(name, xf);
            // Derivatives through y (e.g. tanh: 1 - y^2) carry y's float rounding: ~1e-7 absolute.
            CHECK(std::fabs(got - want) <= 1e-6 + 1e-5 * std::fabs(want));
        }
    }
}

TEST_CASE("activation names parse and print") {
    for (const char* name : kElementwise) {
        CAPTURE(name);
        CHECK(keras::to_string(keras::activation_from_string(name)) == name);
    }
    CHECK(keras::activation_from_string("softmax") == keras::Activation::softmax);
    CHECK(keras::to_string(keras::Activation::softmax) == "softmax");
    CHECK(keras::activation_from_string("silu") == keras::Activation::swish);
    CHECK(keras::activation_from_string("") == keras::Activation::linear);
    CHECK(message_of<keras::ValueError>([] { keras::activation_from_string("foo"); }) ==
          "Could not interpret activation function identifier: foo");
    CHECK(message_of<keras::ValueError>([] { keras::activation_from_string("Relu"); }) ==
          "Could not interpret activation function identifier: Relu");
    CHECK(message_of<keras::RuntimeError>([] { keras::activations::apply(keras::Activation::softmax, 1.0f); }) ==
          "activations::apply: softmax is not element-wise");
    CHECK(message_of<keras::RuntimeError>(
              [] { keras::activations::derivative(keras::Activation::softmax, 1.0f, 0.5f); }) ==
          "activations::derivative: softmax is not element-wise");
}
