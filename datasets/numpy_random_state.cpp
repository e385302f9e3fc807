#include "numpy_random_state.hpp"

#include <cstddef>
#include <utility>

namespace keras::datasets {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
    // Matsumoto & Nishimura's init_genrand, which numpy's legacy seeding calls for an int seed.
    state_[0] = seed;
    for (uint32_t i = 1; i < 624; ++i) state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + i;
    index_ = 624;
}

void NumpyRandomState::twist() {
    constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix_a = 0x9908b0dfu;
    for (int i = 0; i < 624; ++i) {
        const uint32_t y = (state_[i] & upper) | (state_[(i + 1) % 624] & lower);
        state_[i] = state_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
    }
    index_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
    if (index_ >= 624) twist();
    uint32_t y = state_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t NumpyRandomState::next_uint64() {
    const uint64_t high = next_uint32();
    return (high << 32) | next_uint32();
}

uint64_t NumpyRandomState::random_interval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;   // smallest all-ones mask covering max
    for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
    uint64_t value;
    if (max <= 0xffffffffu) {
        do value = next_uint32() & mask; while (value > max);
    } else {
        do value = next_uint64() & mask; while (value > max);
    }
    return value;
}

void NumpyRandomState::shuffle(std::vector<int64_t>& values) {
    // numpy's _shuffle_raw: Fisher-Yates from the back, j drawn from [0, i].
    for (size_t i = values.size(); i-- > 1;) std::swap(values[i], values[random_interval(i)]);
}

}  // namespace keras::datasets
