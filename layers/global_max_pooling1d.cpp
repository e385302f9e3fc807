#include "keras/layers/global_max_pooling1d.hpp"

#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

GlobalMaxPooling1D::GlobalMaxPooling1D(GlobalMaxPooling1DOptions options)
    : Layer("GlobalMaxPooling1D", options.name), options(std::move(options)) {
    if (this->options.data_format != "channels_last" && this->options.data_format != "channels_first")
        value_error("The `data_format` argument must be one of \"channels_first\", \"channels_last\". Received: {}",
                    this->options.data_format);
}

Tensor GlobalMaxPooling1D::call(const Tensor& inputs) {
    return ops::max(inputs, options.data_format == "channels_last" ? 1 : 2, options.keepdims);
}

nlohmann::json GlobalMaxPooling1D::get_config() const {
    auto config = Layer::get_config();
    config["data_format"] = options.data_format;
    config["keepdims"] = options.keepdims;
    return config;
}

}  // namespace keras::layers
