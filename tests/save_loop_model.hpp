// The model test_kill_during_save and its helper process save: large enough (about 6.5 MB) that a
// save takes a while, so SIGKILL lands in the middle of writes.
#pragma once

#include <memory>

#include <keras/keras.hpp>

inline std::shared_ptr<keras::Sequential> save_loop_model() {
    using namespace keras;
    auto model = std::make_shared<Sequential>("save_loop");
    model->add(layers::Input({10}, {.dtype = DType::int32}));
    model->add(layers::Embedding(50000, 32, {.name = "embedding"}));
    model->add(layers::GlobalAveragePooling1D({.name = "pool"}));
    model->add(layers::Dense(3, {.name = "dense"}));
    model->compile(optimizers::SGD(0.1f), "mse");
    return model;
}

// Every weight set to `value`: a file whose weights are not all one value is a mix of two saves.
inline void fill_weights(keras::Model& model, float value) {
    std::vector<keras::Tensor> values;
    for (const auto& w : model.get_weights()) values.push_back(keras::Tensor::full(w.shape(), value));
    model.set_weights(values);
}
