// Process-wide settings, after tf.config.threading.
#pragma once

#include "keras/export.hpp"

namespace keras::config {

// The number of threads each CPU op (oneDNN primitive) runs on.
// 0, the default: adaptive. Each step of fit / evaluate / predict runs with the count measured to
// be fastest right now, between 1 and $OMP_NUM_THREADS (else the number of cores): all of them on a
// free machine, fewer when other programs keep the cores busy (where spinning OpenMP threads would
// otherwise make each step many times slower). n > 0: exactly n threads, always.
// Weights depend only on the seed for the models the tests train (the same bits with 1 and 2
// threads), but oneDNN does not promise that for every shape: fix n for bit-for-bit reproducibility
// across machines. ValueError when n < 0.
KERAS_API void set_intra_op_parallelism_threads(int n);
// The count set_intra_op_parallelism_threads last set: 0 means adaptive (the default).
KERAS_API int get_intra_op_parallelism_threads();

}  // namespace keras::config
