// The plain descriptions public classes hand to a backend: an RNN layer's RnnSpec (RNNBase::spec()),
// a loss's LossSpec and a metric's MetricSpec (device_spec()). Public and installed; the backend
// interface that takes them (keras/backend.hpp) is internal.
#pragma once

#include <cstdint>
#include <string>

#include "keras/activations.hpp"

namespace keras::backend {

// Which recurrent cell a backend runs.
enum class RnnCell { simple_rnn, lstm, gru };

// What a fused kernel computes in: the layer's compute dtype (keras/mixed_precision.hpp). A backend
// that cannot compute in bfloat16 (Backend::bfloat16_unsupported_reason) computes in float32.
enum class Precision { float32, bfloat16 };

// What a backend needs to run a recurrent layer (from RNNBase::spec()).
struct RnnSpec {
    RnnCell cell = RnnCell::simple_rnn;
    int64_t units = 0;
    Activation activation = Activation::tanh;
    Activation recurrent_activation = Activation::sigmoid;   // unused by simple_rnn
    bool use_bias = true;
    bool reset_after = true;      // GRU only
    bool go_backwards = false;    // process time reversed; outputs in processing order (Keras)
    // The layer's recurrent_dropout rate: only for rnn_path's description (training with it runs the
    // step loop); the mask itself comes with rnn_forward.
    float recurrent_dropout = 0.0f;
    std::string layer_name;       // for error messages and logs
    Precision precision = Precision::float32;   // the layer's compute dtype (its dtype policy's)
};

// The RNN call's other types (weights, dropout masks, forward results, gradients) are the backend
// interface's, in keras/backend.hpp.
struct RnnWeights;
struct RnnDropoutMasks;
struct RnnForward;
struct RnnGradients;

// Losses the backends compute where y_pred lives (Model uses them off the CPU so a training step
// needs no host wait); the formulas are those of keras/losses.hpp.
enum class LossKind {
    binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
    mean_squared_error, mean_absolute_error
};
// A built-in loss as a backend computes it on the device (Loss::device_spec()).
struct LossSpec {
    LossKind kind = LossKind::mean_squared_error;
    bool from_logits = false;
    float label_smoothing = 0.0f;
};

// Metrics likewise (keras/metrics.hpp). Their per-position values: binary_accuracy one per element,
// categorical / sparse accuracy one per row, mse / mae the mean over the last axis, one per row.
enum class MetricKind {
    binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error, mean_absolute_error
};
// A built-in metric as a backend computes it on the device (Metric::device_spec()).
struct MetricSpec {
    MetricKind kind = MetricKind::binary_accuracy;
    float threshold = 0.5f;   // binary_accuracy only
};

}  // namespace keras::backend
