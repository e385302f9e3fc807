// compile()'s losses and metrics, resolved per output (Keras's CompileLoss and CompileMetrics in one
// container, since each output's loss and metric values are read back to the host together).
#pragma once

#include <string>
#include <vector>

#include "keras/logs.hpp"
#include "keras/losses.hpp"
#include "keras/metrics.hpp"
#include "keras/model.hpp"
#include "keras/tensor.hpp"

namespace keras {

class LossAndMetrics {
public:
    // One loss per output, and compile()'s options checked against the outputs; unknown metric
    // names fail here, at compile(), as in Keras.
    LossAndMetrics(std::vector<losses::LossPtr> losses, const CompileOptions& options,
                   const std::vector<std::string>& output_names, const std::string& model_name);

    const std::vector<losses::LossPtr>& losses() const { return losses_; }
    const std::vector<double>& loss_weights() const { return loss_weights_; }

    // Creates the metric objects and loss trackers the first time data arrives: "accuracy" picks its
    // variant from the loss and the output's last axis (units).
    void build(const std::vector<std::string>& output_names, const std::vector<int64_t>& output_units);

    // One output's values for one batch: (1,) tensors on the model's device where the loss / a metric
    // has a device form (the loss first, then one per metric of this output; undefined where the host
    // computed it), so a GPU step queues its work without waiting for the host.
    struct OutputValues {
        std::vector<Tensor> on_device;
        double host_loss = 0.0;
        Shape y_shape, y_pred_shape;
        Tensor mask;   // the output's mask (host), undefined without one
    };
    // Queues output k's loss (its gradient, times the output's loss weight, into *grad on y_pred's
    // device) and metric updates. A defined mask skips the masked steps (Keras's masked losses).
    OutputValues queue(size_t output, const Tensor& y, const Tensor& y_pred, const Tensor& mask, Tensor* grad);
    // Reads each output's device values in one copy into the running means; returns the weighted
    // total loss of the batch. regularization (Keras's model.losses: weight and activity penalties) joins
    // the total "loss" only, as in Keras.
    double record(const std::vector<OutputValues>& outputs, int64_t batch_size, double regularization = 0.0);

    void reset();
    // Every tracker's and metric's (sum, count), flattened: what distributed training adds up over
    // the workers after each batch (distribute/replicas.cpp).
    std::vector<double> state() const;
    void set_state(const std::vector<double>& state);
    // "loss" (the weighted total), then with several outputs each "<output>_loss", then the metrics.
    Logs result() const;

private:
    double record_output(size_t output, const OutputValues& values);

    std::vector<losses::LossPtr> losses_;
    std::vector<double> loss_weights_;
    std::vector<std::vector<std::string>> metric_names_;   // one list per output
    struct OutputMetric {
        size_t output;
        metrics::MetricPtr metric;
        std::string log_name;
    };
    std::vector<OutputMetric> metrics_;
    bool built_ = false;
    metrics::Mean loss_tracker_{"loss"};
    std::vector<metrics::Mean> output_loss_trackers_;   // several outputs: "<output layer>_loss"
};

}  // namespace keras
