// Where a plot goes: its path checked (extension, folder), then written atomically (the old file or
// the complete new one, never a partial picture; saving/atomic_write.hpp).
#pragma once

#include <string>

namespace keras::plots {

// The path's extension without the dot, lower case ("svg"); empty when it has none.
std::string extension_of(const std::string& path);

// ValueError unless the path ends in ".<extension>"; `what` names the caller in the message.
void require_extension(const std::string& path, const std::string& extension, const std::string& what);

// Writes `text` to `path` through a temporary file renamed over it.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace keras::plots
