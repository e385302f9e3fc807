// GRU: gates z, r, h in Keras's order. reset_after (the default) applies the reset gate after the
// recurrent product and keeps separate input and recurrent biases: bias shape (2, 3 * units).
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
              convert_fields(RecurrentCommon{}, options)),
      options_(options) {}

Shape GRU::bias_shape() const {
    if (spec_.reset_after) return {2, 3 * units()};
    return {3 * units()};
}

nlohmann::json GRU::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(options_, common()));
    return config;
}

}  // namespace keras::layers
