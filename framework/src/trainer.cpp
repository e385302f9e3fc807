// Model's training loop (Keras's Trainer): fit / evaluate / predict walk an EpochIterator's batches,
// call train_step / test_step / predict_step once per batch and each callback hook once through a
// CallbackList. The per-batch steps are virtual, so a subclass can train its own way.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"
#include "keras/ops.hpp"
#include "keras/random.hpp"

#include "data_adapter.hpp"
#include "distribute/replicas.hpp"
#include "loss_and_metrics.hpp"

namespace keras {

using Arrays = std::vector<Tensor>;
using callbacks::CallbackList;

namespace {
Arrays on_device(const Arrays& arrays, Device d) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.to(d));
    return out;
}

void check_fit_options(const FitOptions& options) {
    data_adapter::check_batch_size(options.batch_size);
    if (!(options.validation_split >= 0.0 && options.validation_split < 1.0))
        value_error("`validation_split` must be in the range [0, 1). Received: validation_split={}",
                    options.validation_split);
    if (options.verbose < 0 || options.verbose > 2)
        value_error("`verbose` must be 0, 1 or 2. Received: verbose={}", options.verbose);
    if (options.epochs < 0) value_error("`epochs` must be >= 0. Received: epochs={}", options.epochs);
}

// Runs one batch's step between the backend's begin_step / end_step (the CPU backend times each step
// to choose its thread count). A step that throws is not timed.
template <class Step>
auto timed_step(Device device, backend::StepKind kind, int64_t samples, Step&& step) {
    backend::Backend& b = backend::get(device);
    b.begin_step(kind);
    auto result = step();
    b.end_step(kind, samples);
    return result;
}

// A diverged run says so once, at the first epoch whose mean loss is not finite.
void warn_if_diverged(int epoch, const Logs& logs, bool& reported) {
    if (reported || !logs.contains("loss") || std::isfinite(logs.at("loss"))) return;
    reported = true;
    fmt::print(stderr, "WARNING: epoch {}: the training loss is {}: training has diverged. Lower the learning rate, "
               "check the data, or add callbacks::TerminateOnNaN to stop at the first invalid batch.\n",
               epoch + 1, logs.at("loss"));
}

// A gradient times the optimizer's loss scale (LossScaleOptimizer), as if the loss had been scaled.
Tensor scaled(const Tensor& g, float factor) {
    return factor == 1.0f || !g.defined() ? g : ops::multiply(g, factor);
}

// Keras's model.losses, which its compute_loss adds to the loss: each regularized trainable weight's
// penalty (with `add_gradients`, its gradient, times loss_scale, joins the weight's) and the activity
// regularizers' penalties of this forward pass (their gradients were sent back with the outputs').
double regularization_losses(const std::vector<VariablePtr>& variables, const std::vector<CallContext>& contexts,
                             bool add_gradients, float loss_scale) {
    double total = 0.0;
    for (const CallContext& ctx : contexts) total += ctx.activity_loss;
    for (const auto& v : variables) {
        if (!v->regularizer) continue;
        total += (*v->regularizer)(v->value).to(Device::cpu()).item(0);
        if (add_gradients) accumulate_gradient(*v, scaled(v->regularizer->gradient(v->value), loss_scale));
    }
    return total;
}

// regularization_losses' gradients alone.
void add_regularization_gradients(const std::vector<VariablePtr>& variables, float loss_scale) {
    for (const auto& v : variables)
        if (v->regularizer) accumulate_gradient(*v, scaled(v->regularizer->gradient(v->value), loss_scale));
}

// Scales the loss's gradients with respect to the outputs, and the activity regularizers' ones the
// forward pass left in the contexts, before the backward pass: all gradients then are of the loss
// times the scale (Keras's optimizer.scale_loss).
void scale_output_gradients(Arrays& grads, std::vector<CallContext>& contexts, float loss_scale) {
    if (loss_scale == 1.0f) return;
    for (Tensor& g : grads) g = scaled(g, loss_scale);
    for (CallContext& ctx : contexts)
        for (Tensor& g : ctx.activity_gradients) g = scaled(g, loss_scale);
}
}  // namespace

// ---------------------------------------------------------------- the per-batch steps

Logs Model::train_step(const Batch& batch) {
    const auto variables = trainable_weights();
    for (const auto& v : variables) v->grad = Tensor();
    const int64_t rows = batch.x[0].dim(0);
    const std::vector<double> metrics_before = communicator_ ? compiled_->state() : std::vector<double>{};
    // A worker whose share of a batch is empty (a last batch smaller than the number of workers)
    // computes nothing but still joins the collectives.
    std::vector<LossAndMetrics::OutputValues> values;
    double regularization = 0.0;
    const bool compute = rows > 0 || !communicator_;
    const float loss_scale = optimizer_->loss_scale();
    // Distributed: the gradients' all-reduce runs in buckets during the backward pass.
    std::optional<distribute::GradientBuckets> buckets;
    if (communicator_) buckets.emplace(*communicator_, *graph_, variables, rows);
    if (compute) {
        std::vector<CallContext> contexts;
        Arrays masks;
        const Arrays y_pred = forward(on_device(batch.x, device()), contexts, true, &masks);
        Arrays grads(y_pred.size());
        for (size_t k = 0; k < y_pred.size(); ++k)
            values.push_back(compiled_->queue(k, batch.y[k], y_pred[k], masks[k], &grads[k]));
        scale_output_gradients(grads, contexts, loss_scale);
        if (buckets) backward(grads, contexts, [&](size_t node) { buckets->node_done(node); });
        else backward(grads, contexts);
        // The weight penalties' gradients are the same on every worker: added after the average.
        regularization = regularization_losses(variables, contexts, !buckets, loss_scale);
    }
    if (buckets) {
        buckets->finish();
        add_regularization_gradients(variables, loss_scale);
    }
    optimizer_->apply_gradients(variables);
    if (compute) compiled_->record(values, rows, regularization);
    if (communicator_) distribute::sum_metrics(*communicator_, *compiled_, metrics_before);
    return get_metrics_result();
}

Logs Model::test_step(const Batch& batch) {
    const int64_t rows = batch.x[0].dim(0);
    if (communicator_) {
        // The metrics of the whole batch on every worker, as in train_step.
        const std::vector<double> before = compiled_->state();
        if (rows > 0) test_step_rows(batch);
        distribute::sum_metrics(*communicator_, *compiled_, before);
        return get_metrics_result();
    }
    test_step_rows(batch);
    return get_metrics_result();
}

void Model::test_step_rows(const Batch& batch) {
    std::vector<CallContext> contexts;
    Arrays masks;
    const Arrays y_pred = forward(on_device(batch.x, device()), contexts, false, &masks);
    std::vector<LossAndMetrics::OutputValues> values;
    for (size_t k = 0; k < y_pred.size(); ++k) values.push_back(compiled_->queue(k, batch.y[k], y_pred[k], masks[k], nullptr));
    compiled_->record(values, batch.x[0].dim(0), regularization_losses(trainable_weights(), contexts, false, 1.0f));
}

Arrays Model::predict_step(const Arrays& x) {
    std::vector<CallContext> contexts;
    return forward(on_device(x, device()), contexts, false);
}

Logs Model::get_metrics_result() const {
    ensure_compiled("get_metrics_result");
    return compiled_->result();
}

void Model::reset_metrics() {
    if (compiled_) compiled_->reset();
}

// ---------------------------------------------------------------- fit

callbacks::History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
    return fit(Arrays{x}, Arrays{y}, options);
}

callbacks::History Model::fit(const Arrays& x, const Arrays& y, const FitOptions& options) {
    // Models train in several threads at once, but one model in one thread at a time.
    if (fitting_->exchange(true))
        runtime_error("Model \"{}\": fit() is already running for this model (in another thread, or a callback "
                      "called fit()); one model trains in one thread at a time", name());
    struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = false; }
    } done{*fitting_};
    check_fit_options(options);
    prepare_data(x, y, "fit");
    // Validation data: given, or the LAST fraction of x / y taken before any shuffling.
    data_adapter::TrainValidation data{x, y, {}, {}};
    if (options.validation_data) {
        data.x_val = {options.validation_data->first};
        data.y_val = {options.validation_data->second};
        check_xy(data.x_val, data.y_val, "fit (validation_data)");
        ensure_built(data.x_val);
        check_targets(data.y_val);
    } else if (options.validation_split > 0.0) {
        data = data_adapter::train_validation_split(x, y, options.validation_split);
    }
    // Distributed: NCCL's communicator when the model is on a GPU (docs/distributed.md), and the same
    // model everywhere, checked before anything trains.
    if (communicator_) communicator_ = distribute::for_device(communicator_, device());
    if (communicator_) distribute::check_same_model(*communicator_, *this);
    data_adapter::EpochIterator epochs(data.x_train, data.y_train, options.batch_size, options.shuffle);
    // Only the chief prints (the logs are the same on every worker).
    CallbackList callbacks(options.callbacks,
                           {.add_history = true, .add_progbar = options.verbose > 0 && is_chief(), .model = this,
                            .params = {.epochs = options.epochs, .steps = epochs.num_batches(), .verbose = options.verbose}});
    stop_training = false;
    initial_epoch_override.reset();
    bool reported_nan = false;
    Logs logs;
    callbacks.on_train_begin(logs);
    int first_epoch = initial_epoch_override.value_or(options.initial_epoch);
    if (communicator_) {
        // After on_train_begin, where BackupAndRestore restores: every worker continues from rank 0's
        // weights and epoch.
        distribute::broadcast_weights(*communicator_, *this);
        first_epoch = distribute::broadcast_int(*communicator_, first_epoch, "the broadcast of the first epoch");
    }
    initial_epoch_override.reset();
    for (int epoch = first_epoch; epoch < options.epochs && !stop_training; ++epoch) {
        reset_metrics();
        Logs epoch_logs;
        callbacks.on_epoch_begin(epoch, epoch_logs);
        // The epoch's shuffle and dropout draws come from (seed, epoch) alone: exact resume.
        random::seed_for_epoch(epoch);
        epochs.start_epoch();
        if (communicator_) epochs.shard(replica_rank(), num_replicas());
        epoch_logs = get_metrics_result();
        for (int64_t step = 0; step < epochs.num_batches(); ++step) {
            Logs batch_logs;
            callbacks.on_train_batch_begin(step, batch_logs);
            batch_logs = timed_step(device(), backend::StepKind::train, epochs.batch_rows(step),
                                    [&] { return train_step(epochs.batch(step)); });
            epoch_logs = batch_logs;
            callbacks.on_train_batch_end(step, batch_logs);
            if (stop_training) break;
        }
        if (is_chief()) warn_if_diverged(epoch, epoch_logs, reported_nan);
        if (!data.x_val.empty()) {
            CallbackList silent;
            const Logs val = run_evaluation(data.x_val, data.y_val, options.batch_size, silent, 0);
            for (const auto& [k, v] : val.items()) epoch_logs.set("val_" + k, v);
        }
        callbacks.on_epoch_end(epoch, epoch_logs);
        logs = epoch_logs;
    }
    callbacks.on_train_end(logs);
    return *callbacks.history();
}

// ---------------------------------------------------------------- evaluate / predict

Logs Model::run_evaluation(const Arrays& x, const Arrays& y, int64_t batch_size, CallbackList& callbacks,
                           int verbose) {
    data_adapter::EpochIterator batches(x, y, batch_size, false);
    if (communicator_) batches.shard(replica_rank(), num_replicas());
    callbacks.attach(this, {.epochs = 1, .steps = batches.num_batches(), .verbose = verbose});
    reset_metrics();
    Logs logs;
    callbacks.on_test_begin(logs);
    for (int64_t step = 0; step < batches.num_batches(); ++step) {
        Logs batch_logs;
        callbacks.on_test_batch_begin(step, batch_logs);
        batch_logs = timed_step(device(), backend::StepKind::test, batches.batch_rows(step),
                                [&] { return test_step(batches.batch(step)); });
        logs = batch_logs;
        callbacks.on_test_batch_end(step, batch_logs);
    }
    callbacks.on_test_end(logs);
    return logs;
}

EvaluateResult Model::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
    return evaluate(Arrays{x}, Arrays{y}, options);
}

EvaluateResult Model::evaluate(const Arrays& x, const Arrays& y, const EvaluateOptions& options) {
    data_adapter::check_batch_size(options.batch_size);
    prepare_data(x, y, "evaluate");
    CallbackList callbacks(options.callbacks, {.add_progbar = options.verbose > 0 && is_chief()});
    const Logs logs = run_evaluation(x, y, options.batch_size, callbacks, options.verbose);
    EvaluateResult result;
    for (const auto& [k, v] : logs.items()) result.set(k, v);
    return result;
}

Tensor Model::predict_on_batch(const Tensor& x) { return predict_on_batch(Arrays{x})[0]; }

Arrays Model::predict_on_batch(const Arrays& x) {
    ensure_built(x);
    const int64_t n = x.at(0).dim(0);
    for (const auto& xi : x)
        if (xi.dim(0) != n) value_error("Data cardinality is ambiguous: the input arrays have {} and {} samples", n, xi.dim(0));
    Arrays ys = timed_step(device(), backend::StepKind::predict, n, [&] { return predict_step(x); });
    for (Tensor& y : ys) y = y.to(Device::cpu());
    return ys;
}

Tensor Model::predict(const Tensor& x, const PredictOptions& options) { return predict(Arrays{x}, options)[0]; }

Arrays Model::predict(const Arrays& x, const PredictOptions& options) {
    data_adapter::check_batch_size(options.batch_size);
    ensure_built(x);
    const int64_t n = x[0].dim(0);
    for (const auto& xi : x)
        if (xi.dim(0) != n) value_error("Data cardinality is ambiguous: the input arrays have {} and {} samples", n, xi.dim(0));
    if (!communicator_) return predict_rows(x, options);
    // Distributed: each worker predicts its contiguous share of the rows; every worker gets them all.
    const auto share = distribute::share_of(n, replica_rank(), num_replicas());
    Arrays mine;
    for (const auto& xi : x) mine.push_back(xi.slice_rows(share.begin, share.end));
    return distribute::gather_rows(*communicator_, predict_rows(mine, options));
}

Arrays Model::predict_rows(const Arrays& x, const PredictOptions& options) {
    const int64_t n = x[0].dim(0);
    data_adapter::EpochIterator batches(x, {}, options.batch_size, false);
    CallbackList callbacks(options.callbacks,
                           {.add_progbar = options.verbose > 0 && is_chief(), .model = this,
                            .params = {.epochs = 1, .steps = batches.num_batches(), .verbose = options.verbose}});
    // Each output's rows; with open (None) axes besides the batch, the first batch's output decides
    // their shape.
    Arrays outs(n_outputs());
    std::vector<size_t> row_bytes(n_outputs(), 0);
    auto allocate = [&](size_t k, Shape shape) {
        shape[0] = n;
        outs[k] = Tensor(shape, DType::float32);
        row_bytes[k] = n ? outs[k].nbytes() / static_cast<size_t>(n) : 0;
    };
    for (size_t k = 0; k < n_outputs(); ++k) {
        const Shape& shape = output_shape(k);
        if (std::count(shape.begin() + 1, shape.end(), int64_t{-1}) == 0) allocate(k, shape);
    }
    Logs logs;
    callbacks.on_predict_begin(logs);
    int64_t row = 0;
    for (int64_t step = 0; step < batches.num_batches(); ++step) {
        Logs batch_logs;
        callbacks.on_predict_batch_begin(step, batch_logs);
        const Arrays ys = timed_step(device(), backend::StepKind::predict, batches.batch_rows(step),
                                     [&] { return predict_step(batches.batch(step).x); });
        const auto rows = static_cast<size_t>(batches.batch_rows(step));
        for (size_t k = 0; k < ys.size(); ++k) {
            const Tensor y = ys[k].to(Device::cpu());
            if (!outs[k].defined()) allocate(k, y.shape());
            if (y.nbytes() != row_bytes[k] * rows)
                runtime_error("predict(): the model produced shape {} for a batch of {} samples, expected rows of shape {}",
                              shape_str(y.shape()), rows, shape_str(outs[k].shape()));
            std::memcpy(static_cast<char*>(outs[k].raw()) + static_cast<size_t>(row) * row_bytes[k], y.raw(), y.nbytes());
        }
        row += static_cast<int64_t>(rows);
        callbacks.on_predict_batch_end(step, batch_logs);
    }
    callbacks.on_predict_end(logs);
    for (size_t k = 0; k < n_outputs(); ++k) {
        if (outs[k].defined()) continue;   // no samples: the open axes have size 0
        Shape shape = output_shape(k);
        for (int64_t& d : shape) d = std::max<int64_t>(d, 0);
        allocate(k, shape);
    }
    return outs;
}

// ---------------------------------------------------------------- one batch

Logs Model::train_on_batch(const Tensor& x, const Tensor& y) {
    prepare_data({x}, {y}, "train_on_batch");
    reset_metrics();
    return timed_step(device(), backend::StepKind::train, x.dim(0), [&] { return train_step({{x}, {y}}); });
}

Logs Model::test_on_batch(const Tensor& x, const Tensor& y) {
    prepare_data({x}, {y}, "test_on_batch");
    reset_metrics();
    return timed_step(device(), backend::StepKind::test, x.dim(0), [&] { return test_step({{x}, {y}}); });
}

}  // namespace keras
