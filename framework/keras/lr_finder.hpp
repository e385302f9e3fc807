// fastai's learning-rate finder (Learner.lr_find): the options of Model::lr_find, its result, and the
// three suggestion rules (fastai/callback/schedule.py: valley, steep, minimum) on a recorded curve.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <vector>

namespace keras {

// Model::lr_find's keyword arguments, fastai's defaults. The rate of batch i (from 0) is
// start_lr * (end_lr / start_lr) ^ (i / num_it), for num_it batches (at least 6, as fastai), the
// training data cycled (reshuffled at every pass) when it has fewer batches.
struct KERAS_API LRFindOptions {
    double start_lr = 1e-7;
    double end_lr = 10.0;
    int num_it = 100;
    int64_t batch_size = 32;
    // Stop once the smoothed loss passes 4 times its minimum (or is not finite).
    bool stop_div = true;
    bool shuffle = true;
};

// What lr_find recorded and suggests. lrs[i] is the rate of batch i and losses[i] the smoothed loss
// after it (fastai's AvgSmoothLoss: an exponential moving average, beta 0.98, debiased). The
// suggestions are computed on the curve without its first num_it / 10 and last 5 points (and cut at
// the first NaN), as fastai does; NaN when too few points remain.
struct KERAS_API LRFinderResult {
    std::vector<double> lrs, losses;
    double valley = 0.0;     // fastai's default: about halfway along the longest decreasing stretch
    double steepest = 0.0;   // the rate where the loss falls fastest against log(lr)
    double minimum = 0.0;    // the rate of the lowest loss, divided by 10
};

// Fills result.valley / steepest / minimum from result.lrs and result.losses with fastai's rules;
// num_it is the one lr_find was given (it decides how many leading points are skipped).
KERAS_API void suggest_learning_rates(LRFinderResult& result, int num_it);

}  // namespace keras
