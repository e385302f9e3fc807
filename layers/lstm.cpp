// LSTM: gates i, f, c, o in Keras's order; unit_forget_bias starts the forget gate's bias at 1.
#include "keras/backend.hpp"
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
              RecurrentCommon{.use_bias = options.use_bias,
                              .kernel_initializer = options.kernel_initializer,
                              .recurrent_initializer = options.recurrent_initializer,
                              .bias_initializer = options.bias_initializer,
                              .dropout = options.dropout,
                              .recurrent_dropout = options.recurrent_dropout,
                              .return_sequences = options.return_sequences,
                              .return_state = options.return_state,
                              .go_backwards = options.go_backwards,
                              .stateful = options.stateful,
                              .zero_output_for_mask = options.zero_output_for_mask}),
      unit_forget_bias(options.unit_forget_bias) {}

// Keras: bias = [bias_initializer(H), ones(H), bias_initializer(2H)] when unit_forget_bias.
void LSTM::init_bias(Tensor& bias) const {
    if (!unit_forget_bias) return;
    const int64_t H = units();
    std::fill_n(bias.data<float>() + H, H, 1.0f);
}

nlohmann::json LSTM::get_config() const {
    auto config = RNNBase::get_config();
    config["unit_forget_bias"] = unit_forget_bias;
    return config;
}

}  // namespace keras::layers
