#include "keras/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/random.hpp"

#include "functional_graph.hpp"

namespace keras {

using Arrays = std::vector<Tensor>;

namespace {
Arrays rows_of(const Arrays& arrays, const std::vector<int64_t>& rows) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.gather_rows(rows));
    return out;
}
Arrays slice_of(const Arrays& arrays, int64_t begin, int64_t end) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.slice_rows(begin, end));
    return out;
}
Arrays on_device(const Arrays& arrays, Device d) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.to(d));
    return out;
}
}  // namespace

double EvaluateResult::first_metric() const {
    if (items().size() < 2)
        value_error("This evaluate() result has only the loss: compile the model with metrics, e.g. {{\"accuracy\"}}");
    return items()[1].second;
}

// ---------------------------------------------------------------- compile

void Model::compile(const std::string& optimizer, const std::string& loss, const std::vector<std::string>& metrics) {
    compile(optimizers::get(optimizer), losses::get(loss), metrics);
}

void Model::compile(optimizers::OptimizerPtr optimizer, losses::LossPtr loss, const std::vector<std::string>& metrics) {
    if (!loss) value_error("compile(): the loss is null");
    // One loss for every output, as Keras applies a single loss to each output.
    compile(std::move(optimizer), std::vector<losses::LossPtr>(n_outputs(), loss), metrics);
}

void Model::compile(const std::string& optimizer, const std::vector<std::string>& losses,
                    const std::vector<std::string>& metrics) {
    std::vector<losses::LossPtr> resolved;
    for (const auto& l : losses) resolved.push_back(losses::get(l));
    compile(optimizers::get(optimizer), resolved, metrics);
}

void Model::compile(optimizers::OptimizerPtr optimizer, std::vector<losses::LossPtr> losses,
                    const std::vector<std::string>& metrics) {
    compile(std::move(optimizer), std::move(losses), CompileOptions{.metrics = metrics});
}

void Model::compile(const std::string& optimizer, const std::string& loss, const CompileOptions& options) {
    compile(optimizers::get(optimizer), losses::get(loss), options);
}

void Model::compile(const std::string& optimizer, const std::vector<std::string>& losses,
                    const CompileOptions& options) {
    std::vector<losses::LossPtr> resolved;
    for (const auto& l : losses) resolved.push_back(losses::get(l));
    compile(optimizers::get(optimizer), resolved, options);
}

void Model::compile(optimizers::OptimizerPtr optimizer, losses::LossPtr loss, const CompileOptions& options) {
    if (!loss) value_error("compile(): the loss is null");
    compile(std::move(optimizer), std::vector<losses::LossPtr>(n_outputs(), loss), options);
}

void Model::compile(optimizers::OptimizerPtr optimizer, std::vector<losses::LossPtr> losses,
                    const CompileOptions& options) {
    if (!optimizer) value_error("compile(): the optimizer is null");
    if (losses.size() != n_outputs())
        value_error("When there is more than one output, `loss` must be one loss or a list of one loss per output. "
                    "Model \"{}\" has {} output(s); received {} losses", name_, n_outputs(), losses.size());
    for (const auto& l : losses)
        if (!l) value_error("compile(): the loss is null");
    auto output_metrics = metrics_per_output(options);
    auto weights = loss_weights_per_output(options);
    // Resolve now so unknown names fail at compile(), as in Keras; re-resolved once the output is known.
    for (size_t k = 0; k < output_metrics.size(); ++k)
        for (const auto& m : output_metrics[k]) metrics::get(m, losses[k]->name(), 1);
    optimizer_ = std::move(optimizer);
    loss_ = losses[0];
    losses_ = std::move(losses);
    metric_names_ = options.metrics;
    compile_options_ = options;
    output_metric_names_ = std::move(output_metrics);
    loss_weights_ = std::move(weights);
    metrics_.clear();
}

static std::string names_list(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
    return "[" + out + "]";
}

std::vector<std::vector<std::string>> Model::metrics_per_output(const CompileOptions& options) const {
    const size_t forms = !options.metrics.empty() + !options.per_output_metrics.empty() + !options.metrics_by_output.empty();
    if (forms > 1)
        value_error("compile(): give the metrics in one form: `metrics` (every output), `per_output_metrics` (one list "
                    "per output) or `metrics_by_output` (by output name)");
    const auto names = output_names();
    if (!options.per_output_metrics.empty()) {
        if (options.per_output_metrics.size() != n_outputs())
            value_error("Invalid `metrics`: model \"{}\" has {} output(s) {}, but `per_output_metrics` holds {} list(s) "
                        "(one list of metrics per output, in order)", name_, n_outputs(), names_list(names),
                        options.per_output_metrics.size());
        return options.per_output_metrics;
    }
    std::vector<std::vector<std::string>> out(n_outputs(), options.metrics);
    if (options.metrics_by_output.empty()) return out;
    for (const auto& [name, list] : options.metrics_by_output) {
        const auto it = std::find(names.begin(), names.end(), name);
        if (it == names.end())
            value_error("Invalid `metrics`: '{}' is not an output of model \"{}\". The outputs are {}", name, name_,
                        names_list(names));
        out[static_cast<size_t>(it - names.begin())] = list;
    }
    return out;
}

std::vector<double> Model::loss_weights_per_output(const CompileOptions& options) const {
    if (!options.loss_weights.empty() && !options.loss_weights_by_output.empty())
        value_error("compile(): give `loss_weights` (a list, one per output) or `loss_weights_by_output` (by output "
                    "name), not both");
    if (!options.loss_weights.empty()) {
        if (options.loss_weights.size() != n_outputs())
            value_error("`loss_weights` must match the number of losses, got {} losses and {} weights.", n_outputs(),
                        options.loss_weights.size());
        return options.loss_weights;
    }
    if (options.loss_weights_by_output.empty()) return std::vector<double>(n_outputs(), 1.0);
    const auto names = output_names();
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

optimizers::Optimizer& Model::optimizer() const {
    ensure_compiled("optimizer");
    return *optimizer_;
}

const losses::Loss& Model::loss() const {
    ensure_compiled("loss");
    return *loss_;
}

void Model::ensure_compiled(const char* what) const {
    if (!optimizer_)
        value_error("You must call `compile()` before using the model: {}() was called on \"{}\" before compile()", what,
                    name_);
}

// ---------------------------------------------------------------- building

// ---------------------------------------------------------------- device

Model& Model::to(Device device) {
    backend::get(device);   // a CUDA device that cannot be used throws here, naming why
    device_ = device;
    if (built_) move_weights_to_device();
    return *this;
}

Device Model::device() const { return device_ ? *device_ : default_device(); }

void Model::move_weights_to_device() {
    const Device d = device();
    for (const auto& v : weights()) {
        v->value = v->value.to(d);
        v->grad = Tensor();
    }
}

void Model::build(const Shape& input_shape) {
    if (graph_) {   // built from its inputs' shapes already: only check this one
        Shape shape = input_shape;
        if (!shape.empty()) shape[0] = -1;
        graph_->inputs[0].node->layer->build_for(shape);
        return;
    }
    if (layers_.empty()) value_error("Model \"{}\" has no layers: add() some before building or training it", name_);
    if (input_shape.empty()) value_error("Model \"{}\": cannot build for a scalar input shape", name_);
    // Built from an InputLayer, the layers see its batch axis (a fixed batch size or None) and check it
    // as a symbolic input; built from data, the batch axis is None and stateful layers take the data's.
    const auto input = std::dynamic_pointer_cast<layers::InputLayer>(layers_.front());
    Shape shape = input_shape;
    shape[0] = input ? input->batch_size : -1;
    const Shape model_input = shape;
    for (const auto& layer : layers_) {
        if (input) layer->check_symbolic_input(shape);
        shape = layer->build_for(shape);
    }
    input_shape_ = model_input;
    output_shape_ = shape;
    built_ = true;
    if (!device_) device_ = default_device();
    move_weights_to_device();
}

void Model::ensure_built(const Arrays& xs) {
    check_counts(xs, nullptr, "call");
    for (const auto& x : xs)
        if (!x.defined()) value_error("Model \"{}\" received an undefined input tensor", name_);
    if (graph_) {
        // Each input layer checks its array's shape and the first layers reading it check the values.
        for (size_t i = 0; i < xs.size(); ++i) {
            Shape shape = xs[i].shape();
            if (!shape.empty()) shape[0] = -1;
            graph_->inputs[i].node->layer->build_for(shape);
            for (const auto& node : graph_->nodes)
                for (const auto& in : node->inputs)
                    if (in.node == graph_->inputs[i].node) node->layer->check_data(xs[i]);
        }
        return;
    }
    const Tensor& x = xs[0];
    if (!built_) build(x.shape());
    Shape shape = x.shape();
    shape[0] = -1;
    // Every layer checks the new shape against the one it was built for.
    for (const auto& layer : layers_) shape = layer->build_for(shape);
    // The layer that first sees the data checks its values (InputLayer passes x through).
    for (const auto& layer : layers_) {
        layer->check_data(x);
        if (!std::dynamic_pointer_cast<layers::InputLayer>(layer)) break;
    }
}

void Model::resolve_metrics() {
    const size_t outputs = n_outputs();
    size_t wanted = 0;
    for (const auto& list : output_metric_names_) wanted += list.size();
    if (metrics_.size() == wanted && output_loss_trackers_.size() == (outputs > 1 ? outputs : 0)) return;
    metrics_.clear();
    output_loss_trackers_.clear();
    const auto names = output_names();
    for (size_t k = 0; k < outputs; ++k) {
        const Shape& shape = graph_ ? output_shapes_[k] : output_shape_;
        const int64_t units = shape.empty() ? 1 : shape.back();
        // Several outputs: Keras 2's per-output names ("dense_loss", "dense_1_accuracy").
        const std::string prefix = outputs > 1 ? names[k] + "_" : "";
        if (outputs > 1) output_loss_trackers_.emplace_back(prefix + "loss");
        for (const auto& m : output_metric_names_[k]) {
            auto metric = metrics::get(m, losses_[k]->name(), units);
            metrics_.push_back({k, metric, prefix + metric->name()});
        }
    }
}

// ---------------------------------------------------------------- forward / backward

Arrays Model::forward(const Arrays& xs, std::vector<CallContext>& contexts, bool training, Arrays* masks) {
    if (graph_) return graph_->forward(xs, contexts, training, masks);
    contexts.assign(layers_.size(), CallContext{});
    Tensor h = xs[0], mask;
    for (size_t i = 0; i < layers_.size(); ++i) {
        contexts[i].training = training;
        contexts[i].mask = mask;
        Tensor y = layers_[i]->call(h, contexts[i]);
        mask = layers_[i]->compute_mask(h, mask);
        h = std::move(y);
    }
    if (masks) *masks = {mask};
    return {h};
}

void Model::backward(const Arrays& dys, std::vector<CallContext>& contexts) {
    if (graph_) return graph_->backward(dys, contexts);
    Tensor g = dys[0];
    for (size_t i = layers_.size(); i-- > 0;) {
        g = layers_[i]->backward(g, contexts[i]);
        if (!g.defined()) break;   // reached integer inputs (Embedding): nothing further back
    }
}

double Model::train_step(const Arrays& x, const Arrays& y) {
    std::vector<CallContext> contexts;
    Arrays masks;
    const Arrays y_pred = forward(on_device(x, device()), contexts, true, &masks);
    // The total loss is the loss_weights-weighted sum of the outputs' losses, so each output's
    // gradient is its own loss's times its weight.
    Arrays grads(y_pred.size());
    std::vector<BatchValues> values;
    for (size_t k = 0; k < y_pred.size(); ++k) {
        values.push_back(queue_loss_and_metrics(k, y[k], y_pred[k], masks[k], &grads[k]));
        if (loss_weights_[k] != 1.0) backend::get(grads[k].device()).scale_(grads[k], static_cast<float>(loss_weights_[k]));
    }
    const auto variables = trainable_weights();
    for (const auto& v : variables) v->grad = Tensor();
    backward(grads, contexts);
    optimizer_->apply_gradients(variables);
    return record_batch(values, x[0].dim(0));
}

double Model::test_step(const Arrays& x, const Arrays& y) {
    std::vector<CallContext> contexts;
    Arrays masks;
    const Arrays y_pred = forward(on_device(x, device()), contexts, false, &masks);
    std::vector<BatchValues> values;
    for (size_t k = 0; k < y_pred.size(); ++k) values.push_back(queue_loss_and_metrics(k, y[k], y_pred[k], masks[k], nullptr));
    return record_batch(values, x[0].dim(0));
}

// On the CPU, and for losses / metrics without a device form, the host formulas run on host copies
// (the CPU keeps its double-precision loss); on a GPU the backend's kernels do, without waiting.
Model::BatchValues Model::queue_loss_and_metrics(size_t output, const Tensor& y, const Tensor& y_pred,
                                                 const Tensor& mask, Tensor* grad) {
    const losses::Loss& loss = *losses_[output];
    const Device d = y_pred.device();
    BatchValues values{.on_device = {}, .host_loss = 0.0, .y_shape = y.shape(), .y_pred_shape = y_pred.shape(),
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
    for (const auto& om : metrics_) {
        if (om.output != output) continue;
        const auto& m = om.metric;
        const auto spec = d.is_cpu() ? std::nullopt : m->device_spec();
        if (spec) {
            values.on_device.push_back(backend::get(d).metric_sum(*spec, device_targets(), y_pred, mask));
        } else {
            m->update_state_masked(y, host_pred(), mask);
            values.on_device.emplace_back();
        }
    }
    return values;
}

double Model::record_batch(const std::vector<BatchValues>& outputs, int64_t batch_size) {
    double total = 0.0;
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

double Model::record_output(size_t output, const BatchValues& values) {
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

void Model::reset_metrics() {
    loss_tracker_.reset_state();
    for (auto& t : output_loss_trackers_) t.reset_state();
    for (const auto& m : metrics_) m.metric->reset_state();
}

Logs Model::metric_logs(const std::string& prefix) const {
    Logs logs;
    logs.set(prefix + "loss", loss_tracker_.result());
    for (const auto& t : output_loss_trackers_) logs.set(prefix + t.name(), t.result());
    for (const auto& m : metrics_) logs.set(prefix + m.log_name, m.metric->result());
    return logs;
}

// ---------------------------------------------------------------- data checks

void Model::check_counts(const Arrays& x, const Arrays* y, const char* what) const {
    const size_t n_in = graph_ ? graph_->inputs.size() : 1;
    if (x.size() != n_in)
        value_error("Layer \"{}\" expects {} input(s), but it received {} input tensors.", name_, n_in, x.size());
    if (y && y->size() != n_outputs())
        value_error("{}(): model \"{}\" has {} output(s), but {} target arrays were given", what, name_, n_outputs(),
                    y->size());
}

void Model::check_xy(const Arrays& xs, const Arrays& ys, const char* what) const {
    check_counts(xs, &ys, what);
    for (const auto& x : xs)
        for (const auto& y : ys) check_xy_pair(x, y, what);
}

void Model::check_xy_pair(const Tensor& x, const Tensor& y, const char* what) const {
    if (!x.defined() || !y.defined()) value_error("{}(): x and y must both be given", what);
    if (x.ndim() == 0 || y.ndim() == 0) value_error("{}(): x and y need a batch axis; got x {} and y {}", what,
                                                    shape_str(x.shape()), shape_str(y.shape()));
    if (x.dim(0) != y.dim(0))
        value_error("Data cardinality is ambiguous:\n  x sizes: {}\n  y sizes: {}\nMake sure all arrays contain the same "
                    "number of samples.", x.dim(0), y.dim(0));
    if (x.dim(0) == 0) value_error("{}(): the data is empty (0 samples)", what);
}

void Model::prepare_data(const Arrays& x, const Arrays& y, const char* what) {
    ensure_compiled(what);
    check_xy(x, y, what);
    ensure_built(x);
    check_targets(y);
    resolve_metrics();
}

void Model::check_targets(const Arrays& ys) const {
    for (size_t k = 0; k < ys.size(); ++k) {
        Shape shape = graph_ ? output_shapes_[k] : output_shape_;
        shape[0] = ys[k].dim(0);
        // An axis the model leaves open (None, e.g. the steps of an Input of shape (None,)) takes the
        // targets' size there; the defined axes are checked.
        for (size_t i = 1; i < shape.size() && i < static_cast<size_t>(ys[k].ndim()); ++i)
            if (shape[i] < 0) shape[i] = ys[k].dim(static_cast<int>(i));
        losses_[k]->check_shapes(ys[k], shape);
    }
}

static void check_batch_size(int64_t batch_size) {
    if (batch_size <= 0)
        value_error("Invalid `batch_size`: {}. It must be a positive integer.", batch_size);
}

// The batches of one pass over n samples, in the given order.
static std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& order, int64_t batch_size) {
    std::vector<std::vector<int64_t>> batches;
    for (size_t start = 0; start < order.size(); start += batch_size) {
        const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
        batches.emplace_back(order.begin() + start, order.begin() + end);
    }
    return batches;
}

static std::vector<int64_t> identity_order(int64_t n) {
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    return order;
}

// Progress bar first, then the user's callbacks, then History (Keras's order).
static std::vector<callbacks::CallbackPtr> with_defaults(const std::vector<callbacks::CallbackPtr>& user, int verbose,
                                                         const callbacks::CallbackPtr& history) {
    std::vector<callbacks::CallbackPtr> all;
    if (verbose > 0) all.push_back(std::make_shared<callbacks::ProgbarLogger>());
    for (const auto& c : user)
        if (c) all.push_back(c);
    if (history) all.push_back(history);
    return all;
}

static void attach(const std::vector<callbacks::CallbackPtr>& cbs, Model* model, const callbacks::Params& params) {
    for (const auto& c : cbs) {
        c->set_model(model);
        c->set_params(params);
    }
}

// ---------------------------------------------------------------- fit

callbacks::History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
    return fit(Arrays{x}, Arrays{y}, options);
}

callbacks::History Model::fit(const Arrays& x, const Arrays& y, const FitOptions& options) {
    check_batch_size(options.batch_size);
    if (!(options.validation_split >= 0.0 && options.validation_split < 1.0))
        value_error("`validation_split` must be in the range [0, 1). Received: validation_split={}",
                    options.validation_split);
    if (options.verbose < 0 || options.verbose > 2)
        value_error("`verbose` must be 0, 1 or 2. Received: verbose={}", options.verbose);
    if (options.epochs < 0) value_error("`epochs` must be >= 0. Received: epochs={}", options.epochs);
    prepare_data(x, y, "fit");

    // Validation data: given, or the LAST fraction of x / y taken before any shuffling.
    Arrays x_train = x, y_train = y, x_val, y_val;
    if (options.validation_data) {
        x_val = {options.validation_data->first};
        y_val = {options.validation_data->second};
        check_xy(x_val, y_val, "fit (validation_data)");
        ensure_built(x_val);
        check_targets(y_val);
    } else if (options.validation_split > 0.0) {
        const int64_t n = x[0].dim(0);
        const auto split_at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - options.validation_split)));
        if (split_at == 0 || split_at == n)
            value_error("Training data contains {} samples, which is not sufficient to split it into a validation and "
                        "training set as specified by `validation_split={}`. Either provide more data, or a different "
                        "value for the `validation_split` argument.", n, options.validation_split);
        x_train = slice_of(x, 0, split_at);
        y_train = slice_of(y, 0, split_at);
        x_val = slice_of(x, split_at, n);
        y_val = slice_of(y, split_at, n);
    }
    const bool has_val = !x_val.empty();
    const int64_t n_train = x_train[0].dim(0);
    const int64_t steps = (n_train + options.batch_size - 1) / options.batch_size;

    auto history = std::make_shared<callbacks::History>();
    auto cbs = with_defaults(options.callbacks, options.verbose, history);
    attach(cbs, this, {.epochs = options.epochs, .steps = steps, .verbose = options.verbose});
    stop_training = false;
    initial_epoch_override.reset();
    bool reported_nan = false;
    Logs logs;
    for (auto& c : cbs) c->on_train_begin(logs);
    const int first_epoch = initial_epoch_override.value_or(options.initial_epoch);
    initial_epoch_override.reset();
    for (int epoch = first_epoch; epoch < options.epochs && !stop_training; ++epoch) {
        reset_metrics();
        Logs epoch_logs;
        for (auto& c : cbs) c->on_epoch_begin(epoch, epoch_logs);
        // The epoch's shuffle and dropout draws come from (seed, epoch) alone: exact resume.
        random::seed_for_epoch(epoch);
        const auto order = options.shuffle ? random::permutation(n_train) : identity_order(n_train);
        const auto batches = make_batches(order, options.batch_size);
        for (size_t step = 0; step < batches.size(); ++step) {
            Logs batch_logs;
            for (auto& c : cbs) c->on_train_batch_begin(static_cast<int64_t>(step), batch_logs);
            train_step(rows_of(x_train, batches[step]), rows_of(y_train, batches[step]));
            batch_logs = metric_logs("");
            for (auto& c : cbs) c->on_train_batch_end(static_cast<int64_t>(step), batch_logs);
            if (stop_training) break;
        }
        epoch_logs = metric_logs("");
        if (!std::isfinite(epoch_logs.at("loss")) && !stop_training && !reported_nan) {
            reported_nan = true;
            fmt::print(stderr, "WARNING: epoch {}: the training loss is {}: training has diverged. Lower the learning "
                       "rate, check the data, or add callbacks::TerminateOnNaN to stop at the first invalid batch.\n",
                       epoch + 1, epoch_logs.at("loss"));
        }
        if (has_val) {
            std::vector<callbacks::CallbackPtr> no_callbacks;
            const Logs val = run_evaluation(x_val, y_val, options.batch_size, no_callbacks, 0);
            for (const auto& [k, v] : val.items()) epoch_logs.set("val_" + k, v);
        }
        for (auto& c : cbs) c->on_epoch_end(epoch, epoch_logs);
        logs = epoch_logs;
    }
    for (auto& c : cbs) c->on_train_end(logs);
    return *history;
}

// ---------------------------------------------------------------- evaluate / predict

Logs Model::run_evaluation(const Arrays& x, const Arrays& y, int64_t batch_size,
                           std::vector<callbacks::CallbackPtr>& cbs, int verbose) {
    const auto batches = make_batches(identity_order(x[0].dim(0)), batch_size);
    attach(cbs, this, {.epochs = 1, .steps = static_cast<int64_t>(batches.size()), .verbose = verbose});
    reset_metrics();
    Logs logs;
    for (auto& c : cbs) c->on_test_begin(logs);
    for (size_t step = 0; step < batches.size(); ++step) {
        Logs batch_logs;
        for (auto& c : cbs) c->on_test_batch_begin(static_cast<int64_t>(step), batch_logs);
        test_step(rows_of(x, batches[step]), rows_of(y, batches[step]));
        batch_logs = metric_logs("");
        for (auto& c : cbs) c->on_test_batch_end(static_cast<int64_t>(step), batch_logs);
    }
    logs = metric_logs("");
    for (auto& c : cbs) c->on_test_end(logs);
    return logs;
}

EvaluateResult Model::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
    return evaluate(Arrays{x}, Arrays{y}, options);
}

EvaluateResult Model::evaluate(const Arrays& x, const Arrays& y, const EvaluateOptions& options) {
    check_batch_size(options.batch_size);
    prepare_data(x, y, "evaluate");
    auto cbs = with_defaults(options.callbacks, options.verbose, nullptr);
    const Logs logs = run_evaluation(x, y, options.batch_size, cbs, options.verbose);
    EvaluateResult result;
    for (const auto& [k, v] : logs.items()) result.set(k, v);
    return result;
}

Tensor Model::predict(const Tensor& x, const PredictOptions& options) { return predict(Arrays{x}, options)[0]; }

Arrays Model::predict(const Arrays& x, const PredictOptions& options) {
    check_batch_size(options.batch_size);
    ensure_built(x);
    const int64_t n = x[0].dim(0);
    for (const auto& xi : x)
        if (xi.dim(0) != n) value_error("Data cardinality is ambiguous: the input arrays have {} and {} samples", n, xi.dim(0));
    const auto batches = make_batches(identity_order(n), options.batch_size);
    auto cbs = with_defaults(options.callbacks, options.verbose, nullptr);
    attach(cbs, this, {.epochs = 1, .steps = static_cast<int64_t>(batches.size()), .verbose = options.verbose});
    // Each output's rows; with open (None) axes besides the batch, the first batch's output decides
    // their shape.
    Arrays outs(n_outputs());
    std::vector<size_t> row_bytes(n_outputs(), 0);
    auto allocate = [&](size_t k, Shape shape) {
        shape[0] = n;
        outs[k] = Tensor(shape, DType::float32);
        row_bytes[k] = n ? outs[k].nbytes() / n : 0;
    };
    for (size_t k = 0; k < n_outputs(); ++k) {
        const Shape& shape = graph_ ? output_shapes_[k] : output_shape_;
        if (std::count(shape.begin() + 1, shape.end(), int64_t{-1}) == 0) allocate(k, shape);
    }
    Logs logs;
    for (auto& c : cbs) c->on_predict_begin(logs);
    int64_t row = 0;
    for (size_t step = 0; step < batches.size(); ++step) {
        Logs batch_logs;
        for (auto& c : cbs) c->on_predict_batch_begin(static_cast<int64_t>(step), batch_logs);
        std::vector<CallContext> contexts;
        const Arrays ys = forward(on_device(rows_of(x, batches[step]), device()), contexts, false);
        for (size_t k = 0; k < ys.size(); ++k) {
            const Tensor y = ys[k].to(Device::cpu());
            if (!outs[k].defined()) allocate(k, y.shape());
            if (y.nbytes() != row_bytes[k] * batches[step].size())
                runtime_error("predict(): the model produced shape {} for a batch of {} samples, expected rows of shape {}",
                              shape_str(y.shape()), batches[step].size(), shape_str(outs[k].shape()));
            std::memcpy(static_cast<char*>(outs[k].raw()) + row * row_bytes[k], y.raw(), y.nbytes());
        }
        row += static_cast<int64_t>(batches[step].size());
        for (auto& c : cbs) c->on_predict_batch_end(static_cast<int64_t>(step), batch_logs);
    }
    for (auto& c : cbs) c->on_predict_end(logs);
    for (size_t k = 0; k < n_outputs(); ++k) {
        if (outs[k].defined()) continue;   // no samples: the open axes have size 0
        Shape shape = graph_ ? output_shapes_[k] : output_shape_;
        for (int64_t& d : shape) d = std::max<int64_t>(d, 0);
        allocate(k, shape);
    }
    return outs;
}

Logs Model::train_on_batch(const Tensor& x, const Tensor& y) {
    prepare_data({x}, {y}, "train_on_batch");
    reset_metrics();
    train_step({x}, {y});
    return metric_logs("");
}

Logs Model::test_on_batch(const Tensor& x, const Tensor& y) {
    prepare_data({x}, {y}, "test_on_batch");
    reset_metrics();
    test_step({x}, {y});
    return metric_logs("");
}

// ---------------------------------------------------------------- weights

LayerPtr Model::get_layer(const std::string& name) const {
    for (const auto& l : layers_)
        if (l->name() == name) return l;
    value_error("No such layer: {}. Existing layers are: {}", name, [&] {
        std::string names;
        for (const auto& l : layers_) names += (names.empty() ? "" : ", ") + l->name();
        return names;
    }());
}

std::vector<VariablePtr> Model::weights() const {
    std::vector<VariablePtr> out;
    for (const auto& l : layers_)
        for (const auto& w : l->weights()) out.push_back(w);
    return out;
}

std::vector<VariablePtr> Model::trainable_weights() const {
    std::vector<VariablePtr> out;
    for (const auto& l : layers_)
        for (const auto& w : l->trainable_weights()) out.push_back(w);
    return out;
}

std::vector<Tensor> Model::get_weights() const {
    std::vector<Tensor> out;
    for (const auto& w : weights()) out.push_back(w->value.device().is_cpu() ? w->value.clone() : w->value.to(Device::cpu()));
    return out;
}

void Model::set_weights(const std::vector<Tensor>& values) {
    const auto vars = weights();
    if (values.size() != vars.size())
        value_error("set_weights(): model \"{}\" has {} weights, but {} were given", name_, vars.size(), values.size());
    for (size_t i = 0; i < vars.size(); ++i)
        if (values[i].shape() != vars[i]->value.shape())
            value_error("set_weights(): weight {} ('{}') has shape {}, but the given value has shape {}", i,
                        vars[i]->name, shape_str(vars[i]->value.shape()), shape_str(values[i].shape()));
    for (size_t i = 0; i < vars.size(); ++i) vars[i]->value.copy_from(values[i].astype(DType::float32));
}

int64_t Model::count_params() const {
    int64_t n = 0;
    for (const auto& l : layers_) n += l->count_params();
    return n;
}

}  // namespace keras
