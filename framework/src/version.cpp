#include "keras/version.hpp"

namespace keras {

// The string of the headers this library was built with, so it is the library's own version.
const char* version() noexcept { return KERASCPP_VERSION_STRING; }

}  // namespace keras
