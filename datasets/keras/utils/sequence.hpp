// keras.utils.pad_sequences and to_categorical.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::utils {

// pad_sequences' keyword arguments, in Keras's order.
struct KERAS_API PadSequencesOptions {
    std::optional<int64_t> maxlen{};     // unset: the longest sequence
    DType dtype = DType::int32;
    std::string padding = "pre";         // "pre" or "post"
    std::string truncating = "pre";      // "pre" keeps the last maxlen items, "post" the first
    float value = 0.0f;
};

// Keras's pad_sequences: a (num_sequences, maxlen) tensor filled with `value`, each sequence truncated
// and placed as asked. Errors: other padding/truncating strings (Keras's messages), maxlen < 0, an
// empty list without maxlen, maxlen 0 with 'pre' truncation of a non-empty sequence (Keras fails too).
KERAS_API Tensor pad_sequences(const std::vector<std::vector<int64_t>>& sequences, const PadSequencesOptions& options = {});
// The same for int32 sequences.
KERAS_API Tensor pad_sequences(const std::vector<std::vector<int32_t>>& sequences, const PadSequencesOptions& options = {});

// Keras 3's to_categorical: float32 one-hot of integer labels (floats are truncated), shape + (num_classes,),
// a trailing axis of 1 dropped ((n, 1) -> (n, num_classes)); num_classes unset or 0 = max + 1.
// Labels < 0 or >= num_classes are a ValueError.
KERAS_API Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes = std::nullopt);

}  // namespace keras::utils
