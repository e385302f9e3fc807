#include "loss_and_metrics.hpp"

#include <algorithm>
#include <optional>

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras {

namespace {

std::string names_list(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
    return "[" + out + "]";
}

// compile()'s metrics in whichever of the three forms was given, as one list per output.
std::vector<std::vector<std::string>> metrics_per_output(const CompileOptions& options,
                                                         const std::vector<std::string>& names,
                                                         const std::string& model) {
    const size_t forms = !options.metrics.empty() + !options.per_output_metrics.empty() + !options.metrics_by_output.empty();
    if (forms > 1)
        value_error("compile(): give the metrics in one form: `metrics` (every output), `per_output_metrics` (one list "
                    "per output) or `metrics_by_output` (by output name)");
    const size_t outputs = names.size();
    if (!options.per_output_metrics.empty()) {
        if (options.per_output_metrics.size() != outputs)
            value_error("Invalid `metrics`: model \"{}\" has {} output(s) {}, but `per_output_metrics` holds {} list(s) "
                        "(one list of metrics per output, in order)", model, outputs, names_list(names),
                        options.per_output_metrics.size());
        return options.per_output_metrics;
    }
    std::vector<std::vector<std::string>> out(outputs, options.metrics);
    for (const auto& [name, list] : options.metrics_by_output) {
        const auto it = std::find(names.begin(), names.end(), name);
        if (it == names.end())
            value_error("Invalid `metrics`: '{}' is not an output of model \"{}\". The outputs are {}", name, model,
                        names_list(names));
        out[static_cast<size_t>(it - names.begin())] = list;
    }
    return out;
}

// compile()'s loss weights (a list or by output name) as one weight per output, 1 by default.
std::vector<double> loss_weights_per_output(const CompileOptions& options, const std::vector<std::string>& names) {
    if (!options.loss_weights.empty() && !options.loss_weights_by_output.empty())
        value_error("compile(): give `loss_weights` (a list, one per output) or `loss_weights_by_output` (by output "
                    "name), not both");
    if (!options.loss_weights.empty()) {
        if (options.loss_weights.size() != names.size())
            value_error("`loss_weights` must match the number of losses, got {} losses and {} weights.", names.size(),
                        options.loss_weights.size());
        return options.loss_weights;
    }
    if (options.loss_weights_by_output.empty()) return std::vector<double>(names.size(), 1.0);
    std::vector<std::string> keys;
    for (const auto& [name, w] : options.loss_weights_by_output) keys.push_back(name);
    std::vector<double> out;
    for (const auto& name : names) {
        const auto it = options.loss_weights_by_output.find(name);
        if (it == options.loss_weights_by_output.end() || keys.size() != names.size())
            value_error("Expected keys {} in loss_weights dict, but found loss_weights.keys()={}", names_list(names),
                        names_list(keys));
        out.push_back(it->second);
    }
    return out;
}

}  // namespace

LossAndMetrics::LossAndMetrics(std::vector<losses::LossPtr> losses, const CompileOptions& options,
                               const std::vector<std::string>& output_names, const std::string& model_name)
    : losses_(std::move(losses)) {
    metric_names_ = metrics_per_output(options, output_names, model_name);
    loss_weights_ = loss_weights_per_output(options, output_names);
    // Resolve now so unknown names fail at compile(), as in Keras; build() resolves them again once
    // the outputs' sizes are known.
    for (size_t k = 0; k < metric_names_.size(); ++k)
        for (const auto& m : metric_names_[k]) metrics::get(m, losses_[k]->name(), 1);
}

void LossAndMetrics::build(const std::vector<std::string>& output_names, const std::vector<int64_t>& output_units) {
    if (built_) return;
    const size_t outputs = losses_.size();
    for (size_t k = 0; k < outputs; ++k) {
        // Several outputs: Keras 2's per-output names ("dense_loss", "dense_1_accuracy").
        const std::string prefix = outputs > 1 ? output_names[k] + "_" : "";
        if (outputs > 1) output_loss_trackers_.emplace_back(prefix + "loss");
        for (const auto& m : metric_names_[k]) {
            auto metric = metrics::get(m, losses_[k]->name(), output_units[k]);
            metrics_.push_back({k, metric, prefix + metric->name()});
        }
    }
    built_ = true;
}

// On the CPU, and for losses / metrics without a device form, the host formulas run on host copies
// (the CPU keeps its double-precision loss); on a GPU the backend's kernels do, without waiting.
LossAndMetrics::OutputValues LossAndMetrics::queue(size_t output, const Tensor& y, const Tensor& y_pred,
                                                   const Tensor& mask, Tensor* grad) {
    const losses::Loss& loss = *losses_[output];
    const Device d = y_pred.device();
    OutputValues values{.on_device = {}, .host_loss = 0.0, .y_shape = y.shape(), .y_pred_shape = y_pred.shape(),
                        .mask = mask};
    Tensor y_pred_host, y_on_device;
    auto host_pred = [&]() -> const Tensor& {
        if (!y_pred_host.defined()) y_pred_host = y_pred.to(Device::cpu());
        return y_pred_host;
    };
    // Keras casts targets (class ids too) to y_pred's float dtype.
    auto device_targets = [&]() -> const Tensor& {
        if (!y_on_device.defined()) y_on_device = y.astype(DType::float32).to(d);
        return y_on_device;
    };
    const auto loss_spec = d.is_cpu() ? std::nullopt : loss.device_spec();
    if (loss_spec) {
        values.on_device.push_back(backend::get(d).loss(*loss_spec, device_targets(), y_pred, mask, grad));
    } else {
        values.host_loss = loss.compute_masked(y, host_pred(), mask, grad);
        if (grad) *grad = grad->to(d);
        values.on_device.emplace_back();
    }
    // The total loss weighs each output's loss, so each output's gradient is its own times its weight.
    if (grad && loss_weights_[output] != 1.0)
        backend::get(grad->device()).scale_(*grad, static_cast<float>(loss_weights_[output]));
    for (const auto& om : metrics_) {
        if (om.output != output) continue;
        const auto spec = d.is_cpu() ? std::nullopt : om.metric->device_spec();
        if (spec) {
            values.on_device.push_back(backend::get(d).metric_sum(*spec, device_targets(), y_pred, mask));
        } else {
            om.metric->update_state_masked(y, host_pred(), mask);
            values.on_device.emplace_back();
        }
    }
    return values;
}

double LossAndMetrics::record(const std::vector<OutputValues>& outputs, int64_t batch_size, double regularization) {
    double total = regularization;
    for (size_t k = 0; k < outputs.size(); ++k) {
        // Keras logs each output's own (unweighted) loss; the total weighs them with loss_weights.
        const double loss = record_output(k, outputs[k]);
        // Keras 3's per-output loss trackers are plain means over batches (each batch counts once),
        // while "loss" weighs every batch by its size.
        if (!output_loss_trackers_.empty()) output_loss_trackers_[k].add(loss, 1.0);
        total += loss_weights_[k] * loss;
    }
    loss_tracker_.add(total, static_cast<double>(batch_size));
    return total;
}

double LossAndMetrics::record_output(size_t output, const OutputValues& values) {
    // Gather the defined (1,) device values into one tensor, then one copy to the host.
    std::vector<size_t> slot(values.on_device.size(), 0);
    size_t count = 0;
    Device d = Device::cpu();
    for (size_t i = 0; i < values.on_device.size(); ++i)
        if (values.on_device[i].defined()) {
            slot[i] = count++;
            d = values.on_device[i].device();
        }
    std::vector<float> read;
    if (count > 0) {
        Tensor packed({static_cast<int64_t>(count)}, DType::float32, d);
        for (size_t i = 0; i < values.on_device.size(); ++i)
            if (values.on_device[i].defined())
                backend::device_memory(d).copy_on_device(static_cast<float*>(packed.raw()) + slot[i],
                                                         values.on_device[i].raw(), sizeof(float));
        read = packed.to(Device::cpu()).to_vector<float>();
    }
    size_t i = 0;   // this output's metrics follow its loss in on_device, in metrics_ order
    for (const auto& om : metrics_) {
        if (om.output != output) continue;
        ++i;
        if (!values.on_device[i].defined()) continue;
        if (values.mask.defined()) om.metric->add_masked_position_sum(read[slot[i]], values.mask);
        else om.metric->add_position_sum(read[slot[i]], values.y_shape, values.y_pred_shape);
    }
    return values.on_device[0].defined() ? read[slot[0]] : values.host_loss;
}

void LossAndMetrics::reset() {
    loss_tracker_.reset_state();
    for (auto& t : output_loss_trackers_) t.reset_state();
    for (const auto& m : metrics_) m.metric->reset_state();
}

std::vector<double> LossAndMetrics::state() const {
    std::vector<double> out;
    auto add = [&](const metrics::Metric& m) {
        const auto [total, count] = m.state();
        out.push_back(total);
        out.push_back(count);
    };
    add(loss_tracker_);
    for (const auto& t : output_loss_trackers_) add(t);
    for (const auto& m : metrics_) add(*m.metric);
    return out;
}

void LossAndMetrics::set_state(const std::vector<double>& state) {
    if (state.size() != 2 * (1 + output_loss_trackers_.size() + metrics_.size()))
        runtime_error("LossAndMetrics::set_state: {} values for {} trackers and metrics", state.size(),
                      1 + output_loss_trackers_.size() + metrics_.size());
    size_t i = 0;
    auto set = [&](metrics::Metric& m) {
        m.set_state(state[i], state[i + 1]);
        i += 2;
    };
    set(loss_tracker_);
    for (auto& t : output_loss_trackers_) set(t);
    for (const auto& m : metrics_) set(*m.metric);
}

Logs LossAndMetrics::result() const {
    Logs logs;
    logs.set("loss", loss_tracker_.result());
    for (const auto& t : output_loss_trackers_) logs.set(t.name(), t.result());
    for (const auto& m : metrics_) logs.set(m.log_name, m.metric->result());
    return logs;
}

}  // namespace keras
