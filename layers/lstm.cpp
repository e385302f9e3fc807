// LSTM: gates i, f, c, o in Keras's order; unit_forget_bias starts the forget gate's bias at 1.
#include "keras/layers/lstm.hpp"

#include <algorithm>

namespace keras::layers {

LSTM::LSTM(int64_t units, LSTMOptions options)
    : RNNBase("LSTM", options.name,
              backend::RnnSpec{.cell = backend::RnnCell::lstm,
                               .units = units,
                               .activation = activation_from_string(options.activation),
                               .recurrent_activation = activation_from_string(options.recurrent_activation),
                               .layer_name = options.name},
              convert_fields(RecurrentCommon{}, options)),
      unit_forget_bias(options.unit_forget_bias), options_(options) {}

// Keras: bias = [bias_initializer(H), ones(H), bias_initializer(2H)] when unit_forget_bias.
void LSTM::init_bias(Tensor& bias) const {
    if (!unit_forget_bias) return;
    const int64_t H = units();
    std::fill_n(bias.data<float>() + H, H, 1.0f);
}

nlohmann::json LSTM::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(options_, common()));
    return config;
}

}  // namespace keras::layers
