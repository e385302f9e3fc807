#include "keras/config.hpp"

#include <atomic>

#include "keras/errors.hpp"

namespace keras::config {

namespace {
std::atomic<int> intra_op_threads{0};
}

void set_intra_op_parallelism_threads(int n) {
    if (n < 0) value_error("set_intra_op_parallelism_threads: n must be >= 0 (0 = adaptive), got {}", n);
    intra_op_threads = n;
}

int get_intra_op_parallelism_threads() { return intra_op_threads; }

}  // namespace keras::config
