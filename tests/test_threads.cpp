// Threads: models built and trained in two threads at once get exactly what the same work gives
// done one after the other (each thread has its own random generator and oneDNN stream; the shared
// caches are locked), and one model predicts from several threads at once.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "keras/errors.hpp"
#include "keras/keras.hpp"
#include "thread_bits_model.hpp"

using namespace keras;

namespace {

std::vector<float> flat_weights(Model& model) {
    std::vector<float> out;
    for (const Tensor& w : model.get_weights()) {
        const auto v = w.to_vector<float>();
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

// Small, but it draws from the generator everywhere (initialisers, shuffling, dropout) and runs
// the matmul and RNN primitives.
std::vector<float> train(uint64_t seed) {
    utils::set_random_seed(seed);
    std::vector<float> xs(48 * 6 * 3), ys(48);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(seed));
    for (size_t i = 0; i < ys.size(); ++i) ys[i] = xs[i * 18] > 0 ? 1.0f : 0.0f;
    Sequential model;
    model.add(layers::Input({6, 3}));
    model.add(layers::LSTM(5, {.return_sequences = true}));
    model.add(layers::SimpleRNN(4));
    model.add(layers::Dropout(0.3f));
    model.add(layers::Dense(8, "relu"));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.01f), "binary_crossentropy");
    model.fit(Tensor(xs, {48, 6, 3}), Tensor(ys, {48, 1}), {.batch_size = 7, .epochs = 3, .shuffle = true, .verbose = 0});
    return flat_weights(model);
}

}  // namespace

TEST_CASE("two models trained in two threads at once == the same two trained one after the other") {
    const std::vector<float> a = train(1), b = train(2);
    REQUIRE(a != b);
    for (int round = 0; round < 4; ++round) {
        CAPTURE(round);
        std::vector<float> ta, tb;
        std::thread t1([&] { ta = train(1); });
        std::thread t2([&] { tb = train(2); });
        t1.join();
        t2.join();
        CHECK(ta == a);   // bit for bit
        CHECK(tb == b);
    }
}

TEST_CASE("a thread starts from the seed set_random_seed last set, whatever the main thread drew since") {
    utils::set_random_seed(5);
    const double first = random::uniform01();
    double in_thread = 0;
    std::thread([&] { in_thread = random::uniform01(); }).join();
    CHECK(in_thread == first);
    CHECK(random::seed() == 5);
}

TEST_CASE("one model predicts from several threads at once, with several batch sizes") {
    utils::set_random_seed(9);
    Sequential model;
    model.add(layers::Input({6, 3}));
    model.add(layers::GRU(5));
    model.add(layers::Dense(3, "softmax"));
    std::vector<float> xs(40 * 6 * 3);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::cos(0.21f * static_cast<float>(i));
    const Tensor x(xs, {40, 6, 3});
    // Each batch size's result, computed in this thread (batch sizes may round differently).
    std::vector<std::vector<float>> expected;
    for (int64_t batch = 1; batch <= 13; ++batch)
        expected.push_back(model.predict(x, {.batch_size = batch, .verbose = 0}).to_vector<float>());

    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int k = 0; k < 10; ++k) {
                const int64_t batch = 1 + (t * 10 + k) % 13;   // new shapes while others run
                if (model.predict(x, {.batch_size = batch, .verbose = 0}).to_vector<float>() != expected[batch - 1])
                    ++mismatches[t];
            }
        });
    for (auto& th : threads) th.join();
    CHECK(mismatches == std::vector<int>(4, 0));
}

namespace {
// A callback that calls fit() on its own model: a second fit() of a model that is training.
struct FitAgain : callbacks::Callback {
    std::string message;
    void on_train_batch_end(int64_t, Logs&) override {
        if (!message.empty()) return;
        try {
            Tensor x = Tensor::zeros({2, 3}), y = Tensor::zeros({2, 1});
            model().fit(x, y, {.verbose = 0});
            message = "<no exception>";
        } catch (const RuntimeError& e) {
            message = e.what();
        }
    }
};
}  // namespace

TEST_CASE("a second fit() of a model that is training is refused, and the model trains again afterwards") {
    Sequential model("busy");
    model.add(layers::Input({3}));
    model.add(layers::Dense(1));
    model.compile("sgd", "mse");
    auto again = std::make_shared<FitAgain>();
    const Tensor x = Tensor::zeros({4, 3}), y = Tensor::zeros({4, 1});
    model.fit(x, y, {.batch_size = 2, .verbose = 0, .callbacks = {again}});
    CHECK(again->message ==
          "Model \"busy\": fit() is already running for this model (in another thread, or a callback called fit()); "
          "one model trains in one thread at a time");
    CHECK_NOTHROW(model.fit(x, y, {.verbose = 0}));
}

// The adaptive thread count (keras::config) may change a run's count between steps; that keeps a
// seed's weights only if 1 and 2 threads compute the same bits. Registered a second time in
// tests/meson.build with OMP_NUM_THREADS=2 (with 1 the two runs below are the same run).
namespace {
std::vector<float> train_with_threads(int threads, const char* cell) {
    config::set_intra_op_parallelism_threads(threads);
    const std::vector<float> w = test_helpers::train_thread_bits_model(cell);
    config::set_intra_op_parallelism_threads(0);
    return w;
}
}  // namespace

TEST_CASE("thread count: 1 and 2 threads train the same weights, bit for bit") {
    for (const char* cell : {"simple_rnn", "lstm", "gru"}) {
        CAPTURE(cell);
        CHECK(train_with_threads(1, cell) == train_with_threads(2, cell));
    }
}

// Embedding's gather and scatter-add split a large table's rows across threads (embedding.cpp);
// each id's row must come out with the same bits as one thread adds them, repeated ids included.
namespace {
struct EmbeddingPass {
    std::vector<float> out, grad;
};
EmbeddingPass embedding_with_threads(int threads, const std::vector<int32_t>& ids, const Tensor& table,
                                     const Tensor& dy) {
    config::set_intra_op_parallelism_threads(threads);
    layers::Embedding emb(table.dim(0), table.dim(1));
    emb.build_for({-1, dy.dim(1)});
    emb.weights()[0]->value = table;
    CallContext ctx{.training = true};
    const Tensor y = emb.call(Tensor(ids, {dy.dim(0), dy.dim(1)}), ctx);
    emb.backward(dy, ctx);
    config::set_intra_op_parallelism_threads(0);
    return {y.to_vector<float>(), emb.weights()[0]->grad.to_vector<float>()};
}
}  // namespace

TEST_CASE("thread count: Embedding's gather and scatter-add give the same bits on 1 and 2 threads") {
    const int64_t vocab = 4000, width = 64, N = 16, T = 50;   // a 1 MB table: split across 2 threads
    std::vector<float> table_values(vocab * width), dy_values(N * T * width);
    for (size_t i = 0; i < table_values.size(); ++i) table_values[i] = std::sin(0.1f * static_cast<float>(i));
    for (size_t i = 0; i < dy_values.size(); ++i) dy_values[i] = std::cos(0.37f * static_cast<float>(i));
    std::vector<int32_t> ids(N * T);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 97 * 41 % vocab);   // repeats
    const Tensor table(table_values, {vocab, width}), dy(dy_values, {N, T, width});
    const EmbeddingPass one = embedding_with_threads(1, ids, table, dy), two = embedding_with_threads(2, ids, table, dy);
    CHECK(one.out == two.out);
    CHECK(one.grad == two.grad);
    // And what they compute: the rows, and each id's dy rows summed in order.
    std::vector<float> grad(vocab * width, 0.0f);
    for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t j = 0; j < width; ++j) grad[ids[i] * width + j] += dy_values[i * width + j];
    CHECK(two.grad == grad);
    bool rows_match = true;
    for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t j = 0; j < width; ++j)
            rows_match = rows_match && two.out[i * width + j] == table_values[ids[i] * width + j];
    CHECK(rows_match);
}

TEST_CASE("thread count: set_intra_op_parallelism_threads takes 0 (adaptive) or a count") {
    CHECK(config::get_intra_op_parallelism_threads() == 0);
    config::set_intra_op_parallelism_threads(2);
    CHECK(config::get_intra_op_parallelism_threads() == 2);
    config::set_intra_op_parallelism_threads(0);
    CHECK_THROWS_WITH_AS(config::set_intra_op_parallelism_threads(-1),
                         "set_intra_op_parallelism_threads: n must be >= 0 (0 = adaptive), got -1", ValueError);
}
