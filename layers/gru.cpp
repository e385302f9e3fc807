// GRU: gates z, r, h in Keras's order. reset_after (the default) applies the reset gate after the
// recurrent product and keeps separate input and recurrent biases: bias shape (2, 3 * units).
#include "keras/backend.hpp"
#include "keras/layers/gru.hpp"

namespace keras::layers {

GRU::GRU(int64_t units, GRUOptions options)
    : RNNBase("GRU", options.name,
              backend::RnnSpec{.cell = backend::RnnCell::gru,
                               .units = units,
                               .activation = activation_from_string(options.activation),
                               .recurrent_activation = activation_from_string(options.recurrent_activation),
                               .reset_after = options.reset_after,
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
                              .zero_output_for_mask = options.zero_output_for_mask}) {}

Shape GRU::bias_shape() const {
    if (spec_.reset_after) return {2, 3 * units()};
    return {3 * units()};
}

nlohmann::json GRU::get_config() const {
    auto config = RNNBase::get_config();
    config["reset_after"] = spec_.reset_after;
    return config;
}

}  // namespace keras::layers
