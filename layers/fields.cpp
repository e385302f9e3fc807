// The JSON get_config() writes for a field's value: one place for each kind's Keras form.
#include "keras/layers/fields.hpp"

#include <fmt/format.h>

#include "keras/activations.hpp"
#include "keras/initializers.hpp"

namespace keras::layers::fields_detail {

// The float's shortest text as a double, so 0.2f reads 0.2 as in Keras's config.
nlohmann::json number_json(float value) { return std::stod(fmt::format("{}", value)); }

// Through the enum, so "" (linear), "silu" (swish) and the other spellings write Keras's one name.
nlohmann::json activation_json(const std::string& name) { return to_string(activation_from_string(name)); }

nlohmann::json initializer_json(const std::string& name) { return initializers::get_config(name); }

}  // namespace keras::layers::fields_detail
