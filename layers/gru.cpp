// GRU: the recurrent layer over a GRUCell (gates z, r, h in Keras's order). reset_after (the
// default) applies the reset gate after the recurrent product and keeps separate input and recurrent
// biases: bias shape (2, 3 * units).
#include "keras/backend.hpp"
#include "keras/layers/gru.hpp"

namespace keras::layers {

GRU::GRU(int64_t units, GRUOptions options) : RNNBase("GRU", options.name, convert_fields(RecurrentCommon{}, options)) {
    trainable = options.trainable;
    if (!options.dtype.empty()) set_dtype_policy(options.dtype);
    set_cell(std::make_shared<GRUCell>(units, convert_fields(GRUCellOptions{.name = name()}, options)));
}

const GRUCell& GRU::cell() const { return static_cast<const GRUCell&>(RNNBase::cell()); }

nlohmann::json GRU::get_config() const {
    auto config = RNNBase::get_config();
    write_fields(config, convert_fields(GRUOptions{}, cell().options(), common()));
    return config;
}

}  // namespace keras::layers
