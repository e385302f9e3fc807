// The random generator, seeded by utils::set_random_seed, used for weight initialisation, dropout
// masks and shuffling, so one seed reproduces a whole run.
//
// Threads: each thread has its own generator (and seed). A thread starts from the seed
// set_random_seed last set in any thread, as if it had just called set_random_seed with it; a call
// in a thread reseeds that thread's generator. So models built and trained in two threads at once
// get exactly what each would get alone, in one thread.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <random>
#include <vector>

#include "keras/tensor.hpp"

namespace keras {

namespace utils {
// Seeds every random choice kerascpp makes (initialisers, dropout, shuffling) in the calling
// thread, and in threads that start drawing afterwards.
KERAS_API void set_random_seed(uint64_t seed);
}  // namespace utils

namespace random {
// This thread's random generator (seeded by utils::set_random_seed).
KERAS_API std::mt19937_64& generator();
// This thread's seed: what utils::set_random_seed last set (1337 until it is called).
KERAS_API uint64_t seed();
// Reseeds the generator from (seed(), epoch). fit() calls it at the start of every epoch, so an
// epoch's shuffle order and dropout masks depend only on the seed and the epoch number, never on
// how many epochs ran before in this process: a run resumed from a checkpoint at epoch k draws
// exactly what an unbroken run drew.
KERAS_API void seed_for_epoch(int epoch);
// Uniform in [0, 1), built from the generator's bits so results do not depend on the standard library.
KERAS_API double uniform01();
// Uniform in [lo, hi).
KERAS_API double uniform(double lo, double hi);
// Standard normal (Box-Muller on uniform01).
KERAS_API double normal();
// An inverted-dropout mask of `shape` on `device`: each entry kept with probability 1 - rate and
// then 1 / (1 - rate), else 0 (so inference needs no rescaling). Dropout layers and ops::dropout draw it.
KERAS_API Tensor dropout_mask(const Shape& shape, float rate, Device device = Device::cpu());
// Fisher-Yates shuffle of 0..n-1.
KERAS_API std::vector<int64_t> permutation(int64_t n);
}  // namespace random

}  // namespace keras
