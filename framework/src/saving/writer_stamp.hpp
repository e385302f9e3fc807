// Files kerascpp saves say so: one root attribute Keras does not read ("kerascpp_version"), beside
// the "keras_version" / "backend" attributes Keras does read, which keep the values Keras writes.
#pragma once

#include "keras/version.hpp"
#include "saving/h5_file.hpp"

namespace keras::saving {

inline constexpr const char* kWriterVersionAttr = "kerascpp_version";

inline void stamp_kerascpp_version(const H5Group& root) { root.write_string_attr(kWriterVersionAttr, version()); }

}  // namespace keras::saving
