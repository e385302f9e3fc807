#include "keras/layers/global_max_pooling1d.hpp"

#include "keras/ops.hpp"

namespace keras::layers {

Tensor GlobalMaxPooling1D::call(const Tensor& inputs) { return ops::max(inputs, 1, options.keepdims); }

nlohmann::json GlobalMaxPooling1D::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options);
    return config;
}

}  // namespace keras::layers
