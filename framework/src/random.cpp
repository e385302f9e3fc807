#include "keras/random.hpp"

#include <atomic>
#include <cmath>
#include <numbers>

namespace keras {

namespace random {
namespace {
constexpr uint64_t kDefaultSeed = 1337;
// The seed utils::set_random_seed last set, in any thread: where a thread's generator starts.
std::atomic<uint64_t> process_seed{kDefaultSeed};

// Each thread has its own seed and generator: models built or trained in two threads at once neither
// race on one generator nor take each other's draws, so each gets what it would get alone.
struct ThreadState {
    uint64_t seed = process_seed.load();
    std::mt19937_64 gen{seed};
};
ThreadState& state() {
    thread_local ThreadState s;
    return s;
}

// SplitMix64's finaliser: nearby inputs (epoch 3, epoch 4) give unrelated outputs.
uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
}  // namespace

std::mt19937_64& generator() { return state().gen; }

uint64_t seed() { return state().seed; }

void seed_for_epoch(int epoch) {
    generator().seed(mix(mix(seed()) + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(epoch) + 1)));
}

double uniform01() {
    // 53 random bits -> a double in [0, 1), identical on every standard library.
    return static_cast<double>(generator()() >> 11) * 0x1.0p-53;
}

double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }

double normal() {
    const double u1 = 1.0 - uniform01();   // (0, 1]: log is finite
    const double u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(n);
    for (int64_t i = 0; i < n; ++i) p[i] = i;
    for (int64_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<int64_t>(uniform01() * static_cast<double>(i + 1));
        std::swap(p[i], p[j]);
    }
    return p;
}
// The draws uniform01() would make, compared as integers: u = bits * 2^-53 >= rate exactly when
// bits >= rate * 2^53 (exact in double), i.e. bits >= its ceiling. One generator lookup per mask,
// not per entry (a thread_local in a shared library costs a call each time).
Tensor dropout_mask(const Shape& shape, float rate, Device device) {
    Tensor mask(shape, DType::float32);
    float* m = mask.data<float>();
    const float scale = 1.0f / (1.0f - rate);
    const auto threshold = static_cast<uint64_t>(std::ceil(static_cast<double>(rate) * 0x1.0p53));
    std::mt19937_64& gen = generator();
    for (int64_t i = 0, n = mask.numel(); i < n; ++i) m[i] = (gen() >> 11) >= threshold ? scale : 0.0f;
    return mask.to(device);
}

}  // namespace random

namespace utils {
void set_random_seed(uint64_t seed) {
    random::process_seed.store(seed);
    random::state().seed = seed;
    random::state().gen.seed(seed);
}
}  // namespace utils

}  // namespace keras
