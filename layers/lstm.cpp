// LSTM: the recurrent layer over an LSTMCell (gates i, f, c, o in Keras's order; the cell's
// unit_forget_bias starts the forget gate's bias at 1).
#include "keras/backend.hpp"
#include "keras/layers/lstm.hpp"

namespace keras::layers {

LSTM::LSTM(int64_t units, LSTMOptions options) : RNNBase("LSTM", options.name, convert_fields(RecurrentCommon{}, options)) {
    trainable = options.trainable;
    if (!options.dtype.empty()) set_dtype_policy(options.dtype);
    set_cell(std::make_shared<LSTMCell>(units, convert_fields(LSTMCellOptions{.name = name()}, options)));
}

const LSTMCell& LSTM::cell() const { return static_cast<const LSTMCell&>(RNNBase::cell()); }

// The cell's fields from the cell, the sequence's from common() (Keras's clipped dropout rates,
// Bidirectional's zero_output_for_mask).
nlohmann::json LSTM::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(LSTMOptions{}, cell().options(), common()));
    return config;
}

}  // namespace keras::layers
