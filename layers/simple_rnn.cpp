// SimpleRNN: h_t = activation(x_t W + h_{t-1} U + b); everything but the spec is RNNBase's.
#include "keras/layers/simple_rnn.hpp"

namespace keras::layers {

SimpleRNN::SimpleRNN(int64_t units, SimpleRNNOptions options)
    : RNNBase("SimpleRNN", options.name,
              backend::RnnSpec{.cell = backend::RnnCell::simple_rnn,
                               .units = units,
                               .activation = activation_from_string(options.activation),
                               .layer_name = options.name},
              convert_fields(RecurrentCommon{}, options)),
      options_(options) {}

// The sequence's fields from common(): Keras's clipped dropout rates, Bidirectional's zero_output_for_mask.
nlohmann::json SimpleRNN::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(options_, common()));
    return config;
}

}  // namespace keras::layers
