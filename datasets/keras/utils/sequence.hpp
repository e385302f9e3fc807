// keras.utils.pad_sequences and to_categorical.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::utils {

struct PadSequencesOptions {
    std::optional<int64_t> maxlen{};     // unset: the longest sequence
    DType dtype = DType::int32;
    std::string padding = "pre";         // "pre" or "post"
    std::string truncating = "pre";      // "pre" keeps the last maxlen items, "post" the first
    float value = 0.0f;
};

// Keras's pad_sequences: a (num_sequences, maxlen) tensor.
Tensor pad_sequences(const std::vector<std::vector<int64_t>>& sequences, const PadSequencesOptions& options = {});
Tensor pad_sequences(const std::vector<std::vector<int32_t>>& sequences, const PadSequencesOptions& options = {});

// One-hot rows for integer class labels: (n,) -> (n, num_classes); num_classes unset = max + 1.
Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes = std::nullopt);

}  // namespace keras::utils
