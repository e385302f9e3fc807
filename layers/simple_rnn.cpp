// SimpleRNN: h_t = activation(x_t W + h_{t-1} U + b); everything but the spec is RNNBase's.
#include "keras/backend.hpp"
#include "keras/layers/simple_rnn.hpp"

namespace keras::layers {

SimpleRNN::SimpleRNN(int64_t units, SimpleRNNOptions options)
    : RNNBase("SimpleRNN", options.name,
              backend::RnnSpec{.cell = backend::RnnCell::simple_rnn,
                               .units = units,
                               .activation = activation_from_string(options.activation),
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

}  // namespace keras::layers
