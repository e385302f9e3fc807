// The architecture of the weights fixtures (tests/fixtures/h5/tfkeras_weights.h5, keras3.weights.h5 and
// the regression corpus's *.weights-legacy.h5): Input((5,), int32) -> Embedding(12, 4) ->
// LSTM(3, return_sequences) -> GRU(2) -> Dense(1, sigmoid). Built once per process (weights loaded
// into it are overwritten by the next input, which is what load_weights does anyway).
#pragma once

#include <memory>

#include <keras/keras.hpp>

namespace fuzz {

inline keras::Sequential& fixture_model() {
    static const std::shared_ptr<keras::Sequential> model = [] {
        auto m = std::make_shared<keras::Sequential>();
        m->add(keras::layers::Input({5}, {.dtype = keras::DType::int32}));
        m->add(keras::layers::Embedding(12, 4));
        m->add(keras::layers::LSTM(3, {.return_sequences = true}));
        m->add(keras::layers::GRU(2));
        m->add(keras::layers::Dense(1, "sigmoid"));
        return m;
    }();
    return *model;
}

}  // namespace fuzz
