// numpy's legacy np.random.RandomState, only as far as Keras's datasets use it: seeding with an
// int and shuffle() of a 1-D array. Same seed, same permutation as numpy, bit for bit.
// Internal: not an installed header.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace keras::datasets {

class NumpyRandomState {
public:
    explicit NumpyRandomState(uint32_t seed);   // numpy: RandomState(seed) -> MT19937 init_genrand(seed)

    uint32_t next_uint32();
    uint64_t next_uint64();                      // two 32-bit draws, high word first, as numpy's legacy path
    // A uniform integer in [0, max], drawn by masked rejection as numpy's legacy random_interval.
    uint64_t random_interval(uint64_t max);
    // In place, as RandomState.shuffle on a 1-D array.
    void shuffle(std::vector<int64_t>& values);

private:
    std::array<uint32_t, 624> state_{};
    int index_ = 624;
    void twist();
};

}  // namespace keras::datasets
