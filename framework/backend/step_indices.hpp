// The index-table check gather_steps / scatter_add_steps share on every backend.
#pragma once

#include <cstdint>
#include <vector>

#include "keras/errors.hpp"

namespace keras::backend {

// count indices, each in [-1, bound): anything else would read or write outside the tensors.
inline void check_step_indices(const char* what, const std::vector<int32_t>& idx, int64_t count, int64_t bound) {
    if (static_cast<int64_t>(idx.size()) != count)
        value_error("{}: {} indices given, expected {}", what, idx.size(), count);
    for (size_t i = 0; i < idx.size(); ++i)
        if (idx[i] < -1 || idx[i] >= bound)
            value_error("{}: index {} at position {} is outside [-1, {})", what, idx[i], i, bound);
}

}  // namespace keras::backend
