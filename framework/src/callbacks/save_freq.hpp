// save_freq of ModelCheckpoint and BackupAndRestore: "epoch", or a positive number of batches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"

namespace keras::callbacks {

// nullopt for "epoch", else the number of batches between saves; ValueError for anything else.
inline std::optional<int64_t> batches_between_saves(const SaveFreq& save_freq, const char* callback) {
    if (const auto* text = std::get_if<std::string>(&save_freq)) {
        if (*text == "epoch") return std::nullopt;
        value_error("{}: unrecognized save_freq: '{}'. Expected save_freq are 'epoch' or integer values", callback,
                    *text);
    }
    const int64_t batches = std::get<int64_t>(save_freq);
    if (batches <= 0)
        value_error("{}: save_freq must be 'epoch' or a positive number of batches. Received: save_freq={}", callback,
                    batches);
    return batches;
}

}  // namespace keras::callbacks
