// SimpleRNN: the recurrent layer over a SimpleRNNCell, h_t = activation(x_t W + h_{t-1} U + b).
#include "keras/backend.hpp"
#include "keras/layers/simple_rnn.hpp"

namespace keras::layers {

SimpleRNN::SimpleRNN(int64_t units, SimpleRNNOptions options)
    : RNNBase("SimpleRNN", options.name, convert_fields(RecurrentCommon{}, options)) {
    trainable = options.trainable;
    if (!options.dtype.empty()) set_dtype_policy(options.dtype);
    set_cell(std::make_shared<SimpleRNNCell>(units, convert_fields(SimpleRNNCellOptions{.name = name()}, options)));
}

const SimpleRNNCell& SimpleRNN::cell() const { return static_cast<const SimpleRNNCell&>(RNNBase::cell()); }

nlohmann::json SimpleRNN::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(SimpleRNNOptions{}, cell().options(), common()));
    return config;
}

}  // namespace keras::layers
