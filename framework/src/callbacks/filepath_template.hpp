// ModelCheckpoint's file names: Python str.format templates such as "ckpt-{epoch:02d}-{val_loss:.2f}.h5",
// filled from the epoch (1-based), the batch (1-based, batch-level saves only) and the logs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "keras/logs.hpp"

namespace keras::callbacks {

// Throws ValueError when the template is malformed (an unmatched '{' or '}', an empty field name).
void check_filepath_template(const std::string& filepath);

// Fills every {name} / {name:spec} field; "{{" and "}}" are literal braces. The spec is Python's
// format mini-language ([[fill]align][sign][#][0][width][,][.precision][type]). A name that is
// neither epoch, batch nor a logs key is a ValueError naming it and the keys available.
std::string format_filepath(const std::string& filepath, int epoch, std::optional<int64_t> batch, const Logs& logs);

}  // namespace keras::callbacks
