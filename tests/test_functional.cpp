// The functional API: keras::Input, layers called on symbolic tensors, keras::Model(inputs, outputs),
// shared layers, merge layers, multi-input / multi-output training, graph errors and the summary.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>


#include <keras/keras.hpp>

#include "saving/model_file.hpp"

#include "h5_test_helpers.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;

namespace {

template <typename L, typename... A> std::shared_ptr<L> make(A&&... args) {
    return std::make_shared<L>(std::forward<A>(args)...);
}

Tensor random_floats(Shape shape, double scale = 1.0) {
    Tensor t(std::move(shape), DType::float32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(random::uniform(-scale, scale));
    return t;
}

std::vector<float> flat(const std::vector<Tensor>& tensors) {
    std::vector<float> out;
    for (const auto& t : tensors) {
        auto v = t.to_vector<float>();
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

// Gives every weight of the model random values (biases too), so no term of a gradient vanishes.
void randomize_weights(Model& model) {
    std::vector<Tensor> values;
    for (const auto& w : model.get_weights()) values.push_back(random_floats(w.shape(), 0.7));
    model.set_weights(values);
}

// One full-batch SGD(learning_rate=1) step: the weight change is minus the gradient of the loss.
std::vector<std::vector<double>> gradients_by_sgd_step(Model& model, const std::vector<Tensor>& x,
                                                      const std::vector<Tensor>& y) {
    const auto before = model.get_weights();
    model.fit(x, y, {.batch_size = x[0].dim(0), .epochs = 1, .shuffle = false, .verbose = 0});
    const auto after = model.get_weights();
    std::vector<std::vector<double>> grads;
    for (size_t i = 0; i < before.size(); ++i) {
        std::vector<double> g;
        for (int64_t j = 0; j < before[i].numel(); ++j)
            g.push_back(static_cast<double>(before[i].data<float>()[j]) - after[i].data<float>()[j]);
        grads.push_back(g);
    }
    return grads;
}

// ---- a naive double-precision version of the two-input, two-output test graph
//   h_a = tanh(a K + k), h_b = tanh(b K + k)   (the shared Dense)
//   c = [h_a, h_b]; out = c U + u; m = c M + mb; p = b P + pb; out2 = m * p + (m + p) / 2
// loss = mse(y1, out) + mse(y2, out2), each the mean over the last axis, then over the batch.
struct Params {
    std::map<std::string, std::vector<double>> w;   // "shared/0" = kernel, "shared/1" = bias, ...
    double at(const std::string& layer, int i, int64_t r, int64_t c, int64_t cols) const {
        return w.at(layer + "/" + std::to_string(i))[r * cols + c];
    }
    double bias(const std::string& layer, int64_t c) const { return w.at(layer + "/1")[c]; }
};

std::vector<double> dense(const Params& p, const std::string& layer, const std::vector<double>& x, int64_t in,
                          int64_t out, bool tanh_act) {
    const int64_t n = static_cast<int64_t>(x.size()) / in;
    std::vector<double> y(n * out);
    for (int64_t s = 0; s < n; ++s)
        for (int64_t o = 0; o < out; ++o) {
            double acc = p.bias(layer, o);
            for (int64_t i = 0; i < in; ++i) acc += x[s * in + i] * p.at(layer, 0, i, o, out);
            y[s * out + o] = tanh_act ? std::tanh(acc) : acc;
        }
    return y;
}

struct NaiveOutputs {
    std::vector<double> out1, out2;
};

NaiveOutputs naive_forward(const Params& p, const Tensor& a, const Tensor& b) {
    const int64_t n = a.dim(0);
    const auto av = test_helpers::values_of(a), bv = test_helpers::values_of(b);
    const auto ha = dense(p, "shared", av, 3, 4, true), hb = dense(p, "shared", bv, 3, 4, true);
    std::vector<double> c(n * 8);
    for (int64_t s = 0; s < n; ++s)
        for (int64_t j = 0; j < 4; ++j) {
            c[s * 8 + j] = ha[s * 4 + j];
            c[s * 8 + 4 + j] = hb[s * 4 + j];
        }
    NaiveOutputs o;
    o.out1 = dense(p, "out", c, 8, 1, false);
    const auto m = dense(p, "m", c, 8, 2, false), q = dense(p, "p", bv, 3, 2, false);
    for (size_t i = 0; i < m.size(); ++i) o.out2.push_back(m[i] * q[i] + (m[i] + q[i]) / 2.0);
    return o;
}

double mse(const std::vector<double>& pred, const Tensor& y) {
    const auto yv = test_helpers::values_of(y);
    double sum = 0.0;
    for (size_t i = 0; i < pred.size(); ++i) sum += (pred[i] - yv[i]) * (pred[i] - yv[i]);
    return sum / static_cast<double>(pred.size());   // mean over the last axis, then the batch
}

struct TwoHeadModel {
    KerasTensor a, b;
    std::shared_ptr<Model> model;
    TwoHeadModel() {
        utils::clear_session();
        a = Input({3}, {.name = "a"});
        b = Input({3}, {.name = "b"});
        auto shared = make<layers::Dense>(4, DenseTanh());
        const auto c = (*make<layers::Concatenate>())({(*shared)(a), (*shared)(b)});
        const auto out1 = (*make<layers::Dense>(1, layers::DenseOptions{.name = "out"}))(c);
        const auto m = (*make<layers::Dense>(2, layers::DenseOptions{.name = "m"}))(c);
        const auto p = (*make<layers::Dense>(2, layers::DenseOptions{.name = "p"}))(b);
        const auto out2 = (*make<layers::Add>(layers::MergeOptions{.name = "out2"}))(
            {(*make<layers::Multiply>())({m, p}), (*make<layers::Average>())({m, p})});
        model = std::make_shared<Model>(std::vector<KerasTensor>{a, b}, std::vector<KerasTensor>{out1, out2});
    }
    static layers::DenseOptions DenseTanh() { return {.activation = "tanh", .name = "shared"}; }

    Params params() const {
        Params p;
        for (const std::string name : {"shared", "out", "m", "p"}) {
            const auto& ws = model->get_layer(name)->weights();
            for (size_t i = 0; i < ws.size(); ++i)
                p.w[name + "/" + std::to_string(i)] = test_helpers::values_of(ws[i]->value);
        }
        return p;
    }
};

}  // namespace

TEST_CASE("functional and Sequential versions of a model predict and train identically") {
    const Tensor x = [] { utils::set_random_seed(5); return random_floats({40, 4}); }();
    const Tensor y = [] { utils::set_random_seed(6); return random_floats({40, 1}); }();
    auto train = [&](Model& model) {
        model.compile(optimizers::Adam(0.01f), "mse");
        const auto before = model.predict(x, {.verbose = 0}).to_vector<float>();
        model.fit(x, y, {.batch_size = 8, .epochs = 3, .shuffle = true, .verbose = 0});
        return std::make_pair(before, flat(model.get_weights()));
    };
    utils::set_random_seed(42);
    Sequential seq;
    seq.add(layers::Input({4}));
    seq.add(layers::Dense(6, "tanh"));
    seq.add(layers::Dropout(0.3f));
    seq.add(layers::Dense(1));
    const auto [seq_pred, seq_weights] = train(seq);

    utils::set_random_seed(42);
    const auto inp = Input({4});
    auto h = (*make<layers::Dense>(6, "tanh"))(inp);
    h = (*make<layers::Dropout>(0.3f))(h);
    Model functional(inp, (*make<layers::Dense>(1))(h));
    const auto [fn_pred, fn_weights] = train(functional);

    CHECK(fn_pred == seq_pred);          // bit for bit: same weights, same computation
    CHECK(fn_weights == seq_weights);    // same shuffles, dropout masks and updates
    CHECK(functional.count_params() == seq.count_params());
}

TEST_CASE("functional and Sequential token models (Embedding -> LSTM -> Dense) train identically") {
    Tensor x({32, 5}, DType::int32);
    utils::set_random_seed(8);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<int32_t>()[i] = static_cast<int32_t>(random::uniform(0, 20));
    const Tensor y = random_floats({32, 1});
    auto train = [&](Model& model) {
        model.compile(optimizers::Adam(0.01f), "mse", {"mae"});
        const auto history = model.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
        REQUIRE(history.history.size() == 2);   // loss, mae
        return std::make_pair(history.history[1].second, flat(model.get_weights()));
    };
    utils::set_random_seed(3);
    Sequential seq;
    seq.add(layers::Input({5}, {.dtype = DType::int32}));
    seq.add(layers::Embedding(20, 4));
    seq.add(layers::LSTM(3));
    seq.add(layers::Dense(1));
    const auto [seq_mae, seq_weights] = train(seq);

    utils::set_random_seed(3);
    const auto tokens = Input({5}, {.dtype = DType::int32});
    auto h = (*keras::share(layers::Embedding(20, 4)))(tokens);
    h = (*keras::share(layers::LSTM(3)))(h);
    Model functional(tokens, (*keras::share(layers::Dense(1)))(h));
    const auto [fn_mae, fn_weights] = train(functional);
    CHECK(fn_mae == seq_mae);
    CHECK(fn_weights == seq_weights);
    // Token ids out of the Embedding's range are caught before training, as in Sequential.
    Tensor bad = x.clone();
    bad.data<int32_t>()[7] = 20;
    const std::string embedding = functional.layers()[1]->name();
    CHECK(message_of<ValueError>([&] { functional.predict(bad, {.verbose = 0}); }) ==
          "Embedding layer \"" + embedding + "\": input id 20 at position [1, 2] is outside [0, 20) (input_dim=20)");
}

TEST_CASE("two inputs, two outputs: predictions and gradients match a naive double-precision model") {
    TwoHeadModel t;
    utils::set_random_seed(7);
    randomize_weights(*t.model);
    const Tensor a = random_floats({5, 3}), b = random_floats({5, 3});
    const Tensor y1 = random_floats({5, 1}), y2 = random_floats({5, 2});
    const Params p = t.params();

    // Forward: both outputs against the naive graph.
    const auto pred = t.model->predict({a, b}, {.verbose = 0});
    REQUIRE(pred.size() == 2);
    const auto naive = naive_forward(p, a, b);
    const auto out1 = test_helpers::values_of(pred[0]), out2 = test_helpers::values_of(pred[1]);
    for (size_t i = 0; i < naive.out1.size(); ++i) CHECK(out1[i] == doctest::Approx(naive.out1[i]).epsilon(1e-5));
    for (size_t i = 0; i < naive.out2.size(); ++i) CHECK(out2[i] == doctest::Approx(naive.out2[i]).epsilon(1e-5));

    // evaluate(): the total loss is the sum of the outputs' losses, logged under the output layers' names.
    t.model->compile(optimizers::SGD(1.0f), "mse", {"mae"});
    const auto result = t.model->evaluate({a, b}, {y1, y2}, {.verbose = 0});
    const double l1 = mse(naive.out1, y1), l2 = mse(naive.out2, y2);
    CHECK(result["out_loss"] == doctest::Approx(l1).epsilon(1e-5));
    CHECK(result["out2_loss"] == doctest::Approx(l2).epsilon(1e-5));
    CHECK(result.loss() == doctest::Approx(l1 + l2).epsilon(1e-5));
    std::vector<std::string> keys;
    for (const auto& [k, v] : result.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"loss", "out_loss", "out2_loss", "out_mae", "out2_mae"});

    // Gradients: one SGD(1) step against central differences of the naive loss.
    const auto grads = gradients_by_sgd_step(*t.model, {a, b}, {y1, y2});
    const auto weights = t.model->weights();
    size_t checked = 0;
    for (size_t wi = 0; wi < weights.size(); ++wi) {
        std::string layer;
        int index = -1;
        for (const std::string name : {"shared", "out", "m", "p"}) {
            const auto& ws = t.model->get_layer(name)->weights();
            for (size_t i = 0; i < ws.size(); ++i)
                if (ws[i] == weights[wi]) layer = name, index = static_cast<int>(i);
        }
        REQUIRE(index >= 0);
        const std::string key = layer + "/" + std::to_string(index);
        for (size_t j = 0; j < p.w.at(key).size(); ++j) {
            const double eps = 1e-6;
            Params plus = p, minus = p;
            plus.w[key][j] += eps;
            minus.w[key][j] -= eps;
            auto loss = [&](const Params& q) {
                const auto o = naive_forward(q, a, b);
                return mse(o.out1, y1) + mse(o.out2, y2);
            };
            const double fd = (loss(plus) - loss(minus)) / (2 * eps);
            CHECK(grads[wi][j] == doctest::Approx(fd).epsilon(1e-3).scale(1e-3));
            ++checked;
        }
    }
    CHECK(checked == 3 * 4 + 4 + 8 + 1 + 8 * 2 + 2 + 3 * 2 + 2);
}

TEST_CASE("a shared layer's gradient is the sum of its uses' gradients") {
    utils::set_random_seed(11);
    const Tensor a = random_floats({6, 3}), b = random_floats({6, 3}), y = random_floats({6, 2});
    // Shared: one Dense on both inputs.
    const auto ia = Input({3}), ib = Input({3});
    auto shared = make<layers::Dense>(2, "tanh");
    Model one({ia, ib}, {(*make<layers::Add>())({(*shared)(ia), (*shared)(ib)})});
    // Unshared: two Dense layers holding the same values.
    const auto ja = Input({3}), jb = Input({3});
    auto first = make<layers::Dense>(2, "tanh"), second = make<layers::Dense>(2, "tanh");
    Model two({ja, jb}, {(*make<layers::Add>())({(*first)(ja), (*second)(jb)})});
    randomize_weights(one);
    two.set_weights({one.get_weights()[0], one.get_weights()[1], one.get_weights()[0], one.get_weights()[1]});
    CHECK(one.weights().size() == 2);   // the shared layer's weights appear once
    one.compile(optimizers::SGD(1.0f), "mse");
    two.compile(optimizers::SGD(1.0f), "mse");
    const auto g_shared = gradients_by_sgd_step(one, {a, b}, {y});
    const auto g_two = gradients_by_sgd_step(two, {a, b}, {y});
    for (size_t w = 0; w < 2; ++w)
        for (size_t j = 0; j < g_shared[w].size(); ++j)
            CHECK(g_shared[w][j] == doctest::Approx(g_two[w][j] + g_two[w + 2][j]).epsilon(1e-4).scale(1e-5));
}

TEST_CASE("merge layers: forward and backward against naive loops") {
    utils::set_random_seed(3);
    const Tensor x0 = random_floats({2, 3, 4}), x1 = random_floats({2, 3, 4}), x2 = random_floats({2, 3, 4});
    const Tensor dy = random_floats({2, 3, 4});
    const auto v0 = x0.to_vector<float>(), v1 = x1.to_vector<float>(), v2 = x2.to_vector<float>(), g = dy.to_vector<float>();
    auto run = [&](Layer& layer) {
        CallContext ctx;
        const auto y = layer.call_multi({x0, x1, x2}, ctx).to_vector<float>();
        std::vector<std::vector<float>> grads;
        for (const auto& t : layer.backward_multi(dy, ctx)) grads.push_back(t.to_vector<float>());
        return std::make_pair(y, grads);
    };
    SUBCASE("Add") {
        layers::Add add;
        const auto [y, grads] = run(add);
        for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(v0[i] + v1[i] + v2[i]));
        for (const auto& gr : grads) CHECK(gr == g);
    }
    SUBCASE("Multiply") {
        layers::Multiply mul;
        const auto [y, grads] = run(mul);
        for (size_t i = 0; i < y.size(); ++i) {
            CHECK(y[i] == doctest::Approx(v0[i] * v1[i] * v2[i]));
            CHECK(grads[0][i] == doctest::Approx(g[i] * v1[i] * v2[i]));
            CHECK(grads[1][i] == doctest::Approx(g[i] * v0[i] * v2[i]));
            CHECK(grads[2][i] == doctest::Approx(g[i] * v0[i] * v1[i]));
        }
    }
    SUBCASE("Average") {
        layers::Average avg;
        const auto [y, grads] = run(avg);
        for (size_t i = 0; i < y.size(); ++i) {
            CHECK(y[i] == doctest::Approx((v0[i] + v1[i] + v2[i]) / 3.0));
            for (const auto& gr : grads) CHECK(gr[i] == doctest::Approx(g[i] / 3.0));
        }
    }
    SUBCASE("Concatenate on the last axis and on axis 1") {
        for (int axis : {-1, 1}) {
            layers::Concatenate cat({.axis = axis});
            const Tensor small = random_floats(axis == 1 ? Shape{2, 1, 4} : Shape{2, 3, 1});
            CallContext ctx;
            const Tensor y = cat.call_multi({x0, small}, ctx);
            const Shape want = axis == 1 ? Shape{2, 4, 4} : Shape{2, 3, 5};
            REQUIRE(y.shape() == want);
            const auto yv = y.to_vector<float>(), sv = small.to_vector<float>();
            // Naive: y[b][i][j] reads x0 below the split along the axis, `small` past it.
            for (int64_t bi = 0; bi < 2; ++bi)
                for (int64_t i = 0; i < want[1]; ++i)
                    for (int64_t j = 0; j < want[2]; ++j) {
                        const float got = yv[(bi * want[1] + i) * want[2] + j];
                        const bool first = axis == 1 ? i < 3 : j < 4;
                        const float expect = first ? v0[(bi * 3 + i) * 4 + j]
                                                   : (axis == 1 ? sv[bi * 4 + j] : sv[bi * 3 + i]);
                        CHECK(got == expect);
                    }
            // Backward: the split of dy (y's values used as dy) gives the inputs back.
            const auto grads = cat.backward_multi(y, ctx);
            CHECK(grads[0].to_vector<float>() == v0);
            CHECK(grads[1].to_vector<float>() == sv);
        }
    }
    SUBCASE("configs") {
        CHECK(layers::Concatenate({.axis = 1}).get_config()["axis"] == 1);
        CHECK(layers::Concatenate().get_config()["axis"] == -1);
        CHECK(layers::Add().class_name() == "Add");
    }
}

TEST_CASE("invalid graphs and calls give Keras's errors") {
    utils::clear_session();
    const auto a = Input({3}, {.name = "a"}), b = Input({4}, {.name = "b"}), c = Input({4, 5}, {.name = "c"});
    SUBCASE("an output that needs an input the model was not given") {
        const auto a3 = Input({3}, {.name = "a3"});
        const auto sum = (*make<layers::Add>(layers::MergeOptions{.name = "add"}))(
            {(*make<layers::Dense>(3, layers::DenseOptions{.name = "d"}))(a), a3});
        CHECK(message_of<ValueError>([&] { Model m(a, sum); }) ==
              "Graph disconnected: cannot find parent for KerasTensor(shape=(None, 3), dtype=float32, name=a3) at layer "
              "\"add\". The following previous layers were accessed without issue: ['d']");
        CHECK(message_of<ValueError>([&] { Model m(a, b, "m"); }) ==
              "Graph disconnected: output KerasTensor(shape=(None, 4), dtype=float32, name=b) is not connected to "
              "`inputs` of model \"m\"");
    }
    SUBCASE("shape mismatch at a merge") {
        CHECK(message_of<ValueError>([&] { (*make<layers::Concatenate>())({a, c}); }) ==
              "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. Received: "
              "input_shape=[(None, 3), (None, 4, 5)]");
        CHECK(message_of<ValueError>([&] { (*make<layers::Add>())({a, b}); }) ==
              "Inputs have incompatible shapes. Received shapes (3,) and (4,)");
        CHECK(message_of<ValueError>([&] { (*make<layers::Multiply>())(a); }) ==
              "A merge layer should be called on a list of inputs. Received: input_shape=(None, 3) (not a list of shapes)");
        CHECK(message_of<ValueError>([&] { (*make<layers::Average>())(std::vector<KerasTensor>{}); }) ==
              "A merge layer should be called on a list of at least 1 input. Got 0 inputs. Full input_shape received: []");
    }
    SUBCASE("a layer called on a tensor of the wrong shape or on a list") {
        auto dense = make<layers::Dense>(2, layers::DenseOptions{.name = "dense"});
        (*dense)(a);
        CHECK(message_of<ValueError>([&] { (*dense)(b); }) ==
              "Input 0 of layer \"dense\" is incompatible with the layer: expected axis -1 of input shape to have value 3, "
              "but received input with shape (None, 4). Full shape received: (None, 4)");
        CHECK(message_of<ValueError>([&] { (*dense)({a, a}); }) ==
              "Layer \"dense\" expects 1 input(s), but it received 2 input tensors.");
        layers::Dense on_stack(2, layers::DenseOptions{.name = "on_stack"});
        CHECK(message_of<ValueError>([&] { on_stack(a); }).find("is not owned by a std::shared_ptr") != std::string::npos);
    }
    SUBCASE("inputs that are not Input tensors, data of the wrong count or shape, losses of the wrong count") {
        const auto h = (*make<layers::Dense>(2, layers::DenseOptions{.name = "h"}))(a);
        CHECK(message_of<ValueError>([&] { Model m(h, h); }).find("inputs[0] must be a tensor returned by keras::Input()") !=
              std::string::npos);
        Model m({a, b}, {h}, "two_in");
        CHECK(message_of<ValueError>([&] { m.predict(Tensor::zeros({2, 3}), {.verbose = 0}); }) ==
              "Layer \"two_in\" expects 2 input(s), but it received 1 input tensors.");
        // Keras 3 runs a model on an input whose shape differs from its Input's (tf.keras warned): b is unused
        CHECK(m.predict({Tensor::zeros({2, 3}), Tensor::zeros({2, 5})}, {.verbose = 0})[0].shape() == Shape{2, 2});
        // but an input of another rank is refused
        CHECK(message_of<ValueError>([&] { m.predict({Tensor::zeros({2, 3}), Tensor::zeros({2, 4, 1})}, {.verbose = 0}); }) ==
              "Input 0 of layer \"b\" is incompatible with the layer: expected shape=(None, 4), found shape=(None, 4, 1). "
              "Full shape received: (None, 4, 1)");
        CHECK(message_of<ValueError>([&] { m.compile("sgd", std::vector<std::string>{"mse", "mse"}); }) ==
              "When there is more than one output, `loss` must be one loss or a list of one loss per output. Model "
              "\"two_in\" has 1 output(s); received 2 losses");
        m.compile("sgd", "mse");
        CHECK(message_of<ValueError>([&] {
                  m.fit({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, {Tensor::zeros({2, 2}), Tensor::zeros({2, 2})},
                        {.verbose = 0});
              }) == "fit(): model \"two_in\" has 1 output(s), but 2 target arrays were given");
    }
}

TEST_CASE("one loss per output: log names and per-output targets") {
    TwoHeadModel t;
    utils::set_random_seed(1);
    const Tensor a = random_floats({8, 3}), b = random_floats({8, 3});
    const Tensor y1 = random_floats({8, 1});
    Tensor labels({8}, DType::int32);
    for (int i = 0; i < 8; ++i) labels.data<int32_t>()[i] = i % 2;
    t.model->compile("sgd", std::vector<std::string>{"mse", "sparse_categorical_crossentropy"}, {"accuracy"});
    // out2 is not a probability distribution, but the loss only needs its shape to run; the test is the names.
    const auto history = t.model->fit({a, b}, {y1, labels}, {.batch_size = 4, .epochs = 1, .verbose = 0});
    std::vector<std::string> keys;
    for (const auto& [k, v] : history.history) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    CHECK(keys == std::vector<std::string>{"loss", "out2_accuracy", "out2_loss", "out_accuracy", "out_loss"});
}

TEST_CASE("summary() prints Keras 2's functional table with the Connected to column") {
    utils::clear_session();
    const auto in1 = Input({3}, {.name = "in1"}), in2 = Input({3}, {.name = "in2"});
    auto shared = make<layers::Dense>(4, layers::DenseOptions{.name = "shared"});
    const auto y = (*make<layers::Concatenate>())({(*shared)(in1), (*shared)(in2)});
    const auto o1 = (*make<layers::Dense>(1, layers::DenseOptions{.name = "out"}))(y);
    const auto o2 = (*make<layers::Dense>(2, "softmax"))(y);
    Model model({in1, in2}, {o1, o2}, "model_1");
    std::ostringstream os;
    model.summary(&os);
    // tf_keras 2.21's model.summary() of the same model, from tests/fixtures/gen_functional_fixtures.py.
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/functional_fixtures.json");
    REQUIRE(in.good());
    const std::string expected = nlohmann::json::parse(in)["summary_k2"].get<std::string>();
    CHECK(os.str() == expected);
}

// ---- saving: our files round-trip, and real Keras 3 / tf_keras functional files load

namespace {
const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

Tensor from_json(const nlohmann::json& rows) {
    std::vector<std::vector<float>> values;
    for (const auto& r : rows) values.push_back(r.get<std::vector<float>>());
    return Tensor::from_rows(values);
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".h5")).string();
}
}  // namespace

TEST_CASE("a functional model saved by Model::save loads back with its graph, weights and losses") {
    TwoHeadModel t;
    utils::set_random_seed(9);
    randomize_weights(*t.model);
    t.model->compile("adam", std::vector<std::string>{"mse", "mae"});
    const Tensor a = random_floats({4, 3}), b = random_floats({4, 3});
    t.model->fit({a, b}, {random_floats({4, 1}), random_floats({4, 2})}, {.batch_size = 2, .epochs = 1, .verbose = 0});
    const std::string path = temp_path("functional_roundtrip");
    t.model->save(path);
    // For tests/fixtures/check_functional_model.py (Keras 3 loads our file and predicts the same), by hand.
    if (const char* dir = std::getenv("KERASCPP_EXPORT_DIR")) {
        t.model->save(std::string(dir) + "/functional.h5");
        const auto pred = t.model->predict({a, b}, {.verbose = 0});
        nlohmann::json out = {{"a", a.to_vector<float>()}, {"b", b.to_vector<float>()},
                              {"out1", pred[0].to_vector<float>()}, {"out2", pred[1].to_vector<float>()}};
        std::ofstream(std::string(dir) + "/functional.json") << out.dump();
    }
    const auto loaded = models::load_model(path);
    std::filesystem::remove(path);
    REQUIRE(loaded->is_functional());
    CHECK(loaded->output_names() == std::vector<std::string>{"out", "out2"});
    CHECK(flat(loaded->get_weights()) == flat(t.model->get_weights()));
    const auto want = t.model->predict({a, b}, {.verbose = 0}), got = loaded->predict({a, b}, {.verbose = 0});
    for (size_t k = 0; k < 2; ++k) CHECK(got[k].to_vector<float>() == want[k].to_vector<float>());
    REQUIRE(loaded->output_losses().size() == 2);
    CHECK(loaded->output_losses()[1]->name() == "mean_absolute_error");
    // The shared layer is one layer called twice: one set of weights.
    CHECK(loaded->get_layer("shared")->weights().size() == 2);
    CHECK(loaded->weights().size() == t.model->weights().size());
}

TEST_CASE("functional .h5 files written by Keras 3 and tf_keras load and predict as Keras did") {
    std::ifstream in(kFixtures + "functional_fixtures.json");
    REQUIRE(in.good());
    const auto fixtures = nlohmann::json::parse(in);
    const Tensor a = from_json(fixtures["a"]), b = from_json(fixtures["b"]);
    for (const std::string tag : {"k3", "k2"}) {
        CAPTURE(tag);
        const auto model = models::load_model(kFixtures + "functional_" + tag + ".h5");
        CHECK(model->name() == "two_head");
        const auto pred = model->predict({a, b}, {.verbose = 0});
        REQUIRE(pred.size() == 2);
        for (const auto& [k, name] : {std::pair{0, "out1"}, std::pair{1, "out2"}}) {
            const auto want = test_helpers::values_of(from_json(fixtures[tag][name]));
            const auto got = test_helpers::values_of(pred[k]);
            REQUIRE(got.size() == want.size());
            for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
        }
        CHECK(model->output_losses()[0]->name() == "mean_squared_error");
        CHECK(model->output_losses()[1]->name() == "mean_absolute_error");
    }
}

using test_helpers::rewrite_model_config;

TEST_CASE("a functional model_config that cannot be rebuilt is a clear error") {
    TwoHeadModel t;
    const std::string path = temp_path("functional_bad");
    t.model->save(path);
    const nlohmann::json good = saving::model_config(*t.model);
    auto layer_entry = [](nlohmann::json& config, const std::string& name) -> nlohmann::json& {
        for (auto& l : config["config"]["layers"])
            if (l["name"] == name) return l;
        FAIL("no layer " << name);
        throw;
    };
    auto expect = [&](const nlohmann::json& config, const std::string& message) {
        rewrite_model_config(path, config);
        CHECK(message_of<ValueError>([&] { models::load_model(path); }) == message);
    };
    SUBCASE("a cycle: the Concatenate reads the Dense that reads it") {
        auto config = good;
        layer_entry(config, "concatenate")["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"] = {"out", 0, 0};
        expect(config, "File '" + path + "': layer \"concatenate\" of the functional model_config reads [\"out\", 0, 0], "
                       "which no layer produces (or the graph has a cycle)");
    }
    SUBCASE("an output naming a layer that does not exist") {
        auto config = good;
        config["config"]["output_layers"][1] = {"nope", 0, 0};
        expect(config, "File '" + path + "': the model_config names [\"nope\", 0, 0], which no layer produces");
    }
    SUBCASE("a reference to a second output of a layer of one output") {
        auto config = good;
        config["config"]["input_layers"][0] = {"a", 0, 1};
        expect(config, "File '" + path + "': the model_config names output 1 of layer \"a\" (call 0), which has 1 output(s)");
    }
    std::filesystem::remove(path);
}

TEST_CASE("the README's functional example runs and logs Keras 2's names") {
    utils::clear_session();
    utils::set_random_seed(2);
    const Tensor xa = random_floats({6, 3}), xb = random_floats({6, 3}), y1 = random_floats({6, 1});
    Tensor y2({6}, DType::int32);
    for (int i = 0; i < 6; ++i) y2.data<int32_t>()[i] = i % 2;
    // As in README.md:
    auto a = keras::Input({3}, {.name = "a"}), b = keras::Input({3}, {.name = "b"});
    auto shared = std::make_shared<layers::Dense>(4, "tanh");
    auto c = (*std::make_shared<layers::Concatenate>())({(*shared)(a), (*shared)(b)});
    auto out1 = (*keras::share(layers::Dense(1, {.name = "out"})))(c);
    auto out2 = (*keras::share(layers::Dense(2, "softmax")))(c);
    keras::Model model({a, b}, {out1, out2});
    model.compile("adam", std::vector<std::string>{"mse", "sparse_categorical_crossentropy"}, {"accuracy"});
    const auto history = model.fit({xa, xb}, {y1, y2}, {.epochs = 3, .verbose = 0});
    std::vector<std::string> names;
    for (const auto& [k, v] : history.history) {
        names.push_back(k);
        CHECK(v.size() == 3);
    }
    CHECK(names == std::vector<std::string>{"loss", "out_loss", "dense_1_loss", "out_accuracy", "dense_1_accuracy"});
    const std::vector<Tensor> pred = model.predict({xa, xb}, {.verbose = 0});
    CHECK(pred[1].shape() == Shape{6, 2});
}
