// The model the thread tests train twice and compare bit for bit (tests/test_threads.cpp: 1 against 2
// threads; tests/test_thread_pool.cpp: OpenMP's threads against our own): Embedding, an RNN of the
// given cell ("simple_rnn", "lstm" or "gru"), two Dense layers, Adam, a fixed seed. Public API only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keras/keras.hpp"

namespace test_helpers {

// Trains the model for two epochs under whatever thread settings the caller has made, and returns
// all its weights, flattened.
inline std::vector<float> train_thread_bits_model(const std::string& cell) {
    using namespace keras;
    utils::set_random_seed(3);
    const int64_t N = 64, T = 20;
    std::vector<float> xs(N * T), ys(N);
    for (int64_t i = 0; i < N * T; ++i) xs[i] = static_cast<float>((i * 7919) % 500);
    for (int64_t i = 0; i < N; ++i) ys[i] = static_cast<float>(i % 2);
    Sequential model;
    model.add(layers::Input({T}));
    model.add(layers::Embedding(500, 64));
    if (cell == "lstm") model.add(layers::LSTM(96));
    else if (cell == "gru") model.add(layers::GRU(96));
    else model.add(layers::SimpleRNN(16));
    model.add(layers::Dense(32, "relu"));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile("adam", "binary_crossentropy");
    model.fit(Tensor(xs, {N, T}), Tensor(ys, {N, 1}), {.batch_size = 16, .epochs = 2, .verbose = 0});
    std::vector<float> flat;
    for (const Tensor& w : model.get_weights()) {
        const std::vector<float> v = w.to_vector<float>();
        flat.insert(flat.end(), v.begin(), v.end());
    }
    return flat;
}

}  // namespace test_helpers
