// Model: compile / fit / evaluate / predict over a graph of layers (Keras's Model and Trainer).
// Sequential builds a chain with add(); the functional Model runs an inputs -> outputs graph.
// The pieces: compile() resolves losses and metrics into a LossAndMetrics (loss_and_metrics.cpp),
// fit / evaluate / predict (trainer.cpp) walk an EpochIterator (data_adapter.cpp) and call
// train_step / test_step / predict_step per batch, and a callbacks::CallbackList per hook.
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "keras/callbacks.hpp"
#include "keras/keras_tensor.hpp"
#include "keras/layer.hpp"
#include "keras/logs.hpp"
#include "keras/losses.hpp"
#include "keras/lr_finder.hpp"
#include "keras/metrics.hpp"
#include "keras/optimizers.hpp"
#include "keras/export.hpp"
#include "keras/tensor.hpp"

namespace keras {

namespace distribute {
class Communicator;   // keras/distribute.hpp
}

// fit()'s keyword arguments. The order allows the common call
// {.batch_size, .epochs, .validation_split, .shuffle, .verbose} with C++20 designated initializers.
struct KERAS_API FitOptions {
    int64_t batch_size = 32;
    int epochs = 1;
    double validation_split = 0.0;            // the LAST fraction of x / y, taken before shuffling
    std::optional<std::pair<Tensor, Tensor>> validation_data{};
    bool shuffle = true;
    int verbose = 1;                          // 0 silent, 1 progress bar, 2 one line per epoch
    std::vector<callbacks::CallbackPtr> callbacks{};
    int initial_epoch = 0;
};

// fine_tune()'s keyword arguments: fastai's Learner.fine_tune. The head is the layers from head_layer
// on (an index into layers(), negative from the end; or head_name, when given, names its first layer).
struct KERAS_API FineTuneOptions {
    int freeze_epochs = 1;
    double base_lr = 2e-3;
    double lr_mult = 100.0;     // the body learns base_lr / 2 / lr_mult once unfrozen, the head base_lr / 2
    double pct_start = 0.3;     // of the unfrozen one-cycle (the frozen one uses 0.99, as fastai)
    double div = 5.0;           // of the unfrozen one-cycle (the frozen one uses 25)
    int head_layer = -1;
    std::string head_name{};
};

// compile()'s keyword arguments, Keras's model.compile(metrics=..., loss_weights=...), for several
// outputs: model.compile(opt, losses, {.per_output_metrics = {{"accuracy"}, {"mae"}}, .loss_weights = {0.3, 2.0}}).
// Give metrics in one form and loss weights in one form. Per-output logs keep Keras 2's names
// ("<output>_loss", unweighted, and "<output>_<metric>"); "loss" is the weighted sum.
struct KERAS_API CompileOptions {
    std::vector<std::string> metrics{};                                     // for every output
    std::vector<std::vector<std::string>> per_output_metrics{};             // one list per output, in order
    std::map<std::string, std::vector<std::string>> metrics_by_output{};    // by output name (others: none)
    std::vector<double> loss_weights{};                                     // one per output, in order
    std::map<std::string, double> loss_weights_by_output{};                 // every output by name
    // Keras's auto_scale_loss: under a "mixed_float16" model policy, the optimizer is wrapped in an
    // optimizers::LossScaleOptimizer (unless it is one).
    bool auto_scale_loss = true;
};

// compile()'s `optimizer` as Keras takes it: a name ("adam"), an optimizer value
// (optimizers::Adam(0.001)) or a shared optimizer (optimizers::OptimizerPtr).
struct KERAS_API OptimizerArg {
    OptimizerArg(const char* name);
    OptimizerArg(const std::string& name);
    template <typename P, std::enable_if_t<std::is_convertible_v<P, optimizers::OptimizerPtr>, int> = 0>
    OptimizerArg(P optimizer) : optimizer(std::move(optimizer)) {}
    template <typename O, std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, O>, int> = 0>
    OptimizerArg(O optimizer) : optimizer(std::make_shared<O>(std::move(optimizer))) {}
    optimizers::OptimizerPtr optimizer;
};

// compile()'s `loss` as Keras takes it: one loss for every output (a name, a loss value or a
// losses::LossPtr), or a list of one loss per output (names or LossPtrs).
struct KERAS_API LossArg {
    LossArg(const char* name);
    LossArg(const std::string& name);
    template <typename P, std::enable_if_t<std::is_convertible_v<P, losses::LossPtr>, int> = 0>
    LossArg(P loss) : losses{std::move(loss)}, one_for_all(true) {}
    template <typename L, std::enable_if_t<std::is_base_of_v<losses::Loss, L>, int> = 0>
    LossArg(L loss) : losses{std::make_shared<L>(std::move(loss))}, one_for_all(true) {}
    LossArg(const std::vector<std::string>& names);
    LossArg(std::initializer_list<std::string> names) : LossArg(std::vector<std::string>(names)) {}
    LossArg(std::vector<losses::LossPtr> per_output) : losses(std::move(per_output)) {}
    LossArg(std::initializer_list<losses::LossPtr> per_output) : losses(per_output) {}
    std::vector<losses::LossPtr> losses;
    bool one_for_all = false;   // a single loss, applied to each output
};

// One batch as fit() / evaluate() hand it to train_step() / test_step(): one host array per model
// input (x) and per output (y), in order.
struct KERAS_API Batch {
    std::vector<Tensor> x, y;
};

// save()'s keyword arguments (Keras's model.save(filepath, overwrite, include_optimizer)).
struct KERAS_API SaveOptions {
    bool overwrite = true;
    bool include_optimizer = true;
};

// evaluate()'s keyword arguments.
struct KERAS_API EvaluateOptions {
    int64_t batch_size = 32;
    int verbose = 1;
    std::vector<callbacks::CallbackPtr> callbacks{};
};

// predict()'s keyword arguments.
struct KERAS_API PredictOptions {
    int64_t batch_size = 32;
    int verbose = 1;
    std::vector<callbacks::CallbackPtr> callbacks{};
};

// Model::operator()'s keyword arguments (Keras's model(x, training=False)).
struct KERAS_API CallOptions {
    bool training = false;
};

// evaluate()'s result: the loss and each compiled metric by name. `auto [loss, acc] = evaluate(...)`
// binds the loss and the first metric.
struct KERAS_API EvaluateResult : Logs {
    double loss() const { return at("loss"); }
    double operator[](const std::string& key) const { return at(key); }
    template <size_t I> double get() const {
        static_assert(I < 2);
        if constexpr (I == 0) return loss();
        else return first_metric();
    }
private:
    double first_metric() const;
};

struct FunctionalGraph;   // framework/src/functional_graph.hpp
class LossAndMetrics;     // framework/src/loss_and_metrics.hpp

// Keras's Model: compile, fit, evaluate, predict, save; built from inputs and outputs (the functional
// API) or, as a Sequential, from a stack of layers.
class KERAS_API Model {
public:
    virtual ~Model() = default;

    // The functional API: the model computing `outputs` from `inputs` (keras::Input tensors). Every
    // output must be computable from the inputs alone ("Graph disconnected" ValueError otherwise).
    Model(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs, const std::string& name = "");
    // One input, one output.
    Model(const KerasTensor& input, const KerasTensor& output, const std::string& name = "");
    // Built from inputs and outputs (Keras's Functional); a Sequential is not, though it runs on a
    // graph too. Saving (the config's class) and summary() (its columns) tell the two apart.
    virtual bool is_functional() const { return true; }
    // The graph the model runs: a functional model's, or a built Sequential's chain of its layers
    // (null before it is built).
    const FunctionalGraph* functional_graph() const { return graph_.get(); }
    // Keras's model.inputs: the keras::Input tensors of a functional model.
    const std::vector<KerasTensor>& inputs() const;
    // Keras's model.outputs.
    const std::vector<KerasTensor>& outputs() const;
    // The names of the output layers, in order (the prefixes of the per-output log names).
    std::vector<std::string> output_names() const;

    // Keras's model.compile(optimizer, loss, metrics, loss_weights): compile("adam", "mse"),
    // compile(optimizers::Adam(0.001), "binary_crossentropy", {"accuracy"}), or for several outputs
    // compile("adam", {"mse", "sparse_categorical_crossentropy"}, {.per_output_metrics = ...}). A
    // single loss applies to every output; the total loss is the loss_weights-weighted sum.
    void compile(OptimizerArg optimizer, LossArg loss, const CompileOptions& options = {});
    // One metric by name, compile(opt, loss, "accuracy"); a braced {"accuracy"} comes here too.
    void compile(OptimizerArg optimizer, LossArg loss, const char* metric) {
        compile(std::move(optimizer), std::move(loss), std::vector<std::string>{metric});
    }
    // The metrics list alone, Keras's compile(..., metrics=[...]).
    void compile(OptimizerArg optimizer, LossArg loss, const std::vector<std::string>& metrics) {
        compile(std::move(optimizer), std::move(loss), CompileOptions{.metrics = metrics});
    }
    // Keras's model.dtype_policy: the global policy when the model was made.
    const mixed_precision::DTypePolicy& dtype_policy() const { return dtype_policy_; }

    // Keras's model.fit: trains for options.epochs on x / y in batches; returns the History of the logs.
    callbacks::History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
    // Keras's model.evaluate: the loss and metrics over x / y (`auto [loss, acc] = ...`).
    EvaluateResult evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
    // Keras's model(x, training=...): one batch's output on the model's device. While a GradientTape
    // records, the call is recorded too, so tape.gradient(loss, model.trainable_weights()) reaches
    // the weights (custom training loops; the backward is the layers' own). Single-output models;
    // a model of several inputs takes one tensor per input; call_all gives every output.
    Tensor operator()(const Tensor& x, const CallOptions& options = {});
    // A model of several inputs: one tensor per input.
    Tensor operator()(const std::vector<Tensor>& xs, const CallOptions& options = {});
    // Every output of a model of several outputs.
    std::vector<Tensor> call_all(const std::vector<Tensor>& xs, const CallOptions& options = {});
    // Keras's model.predict: the output for every sample of x, computed in batches.
    Tensor predict(const Tensor& x, const PredictOptions& options = {});
    // Keras's model.predict_on_batch: x as one batch, its output on the host; no batching, callbacks
    // or progress bar (the low-overhead path for serving one request at a time).
    Tensor predict_on_batch(const Tensor& x);
    // predict_on_batch() with one array per input; one result per output.
    std::vector<Tensor> predict_on_batch(const std::vector<Tensor>& x);
    // One gradient step on one batch; returns the loss and metrics of that batch (metrics reset first).
    Logs train_on_batch(const Tensor& x, const Tensor& y);
    // The loss and metrics of one batch, without training.
    Logs test_on_batch(const Tensor& x, const Tensor& y);
    // Several inputs and / or outputs: one array per model input and per output, in order.
    // (FitOptions::validation_data takes single arrays; use validation_split with several.)
    callbacks::History fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options = {});
    // evaluate() with one array per input and per output.
    EvaluateResult evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                            const EvaluateOptions& options = {});
    // predict() with one array per input; one result per output.
    std::vector<Tensor> predict(const std::vector<Tensor>& x, const PredictOptions& options = {});

    // fastai's training tools (docs/training.md). lr_find: trains options.num_it batches at
    // exponentially growing rates, records the smoothed loss, then puts the weights and the
    // optimizer's state (slots, iterations, learning rate) back as they were, bit for bit (stateful
    // layers' states are reset). Returns the curve and fastai's suggestions.
    LRFinderResult lr_find(const Tensor& x, const Tensor& y, const LRFindOptions& options = {});
    // fit() for `epochs` under the one-cycle policy peaking at lr_max (callbacks::OneCycleScheduler,
    // added to fit.callbacks); fit.epochs must be left at its default. The optimizer keeps the last
    // batch's rate and momentum.
    callbacks::History fit_one_cycle(const Tensor& x, const Tensor& y, int epochs, double lr_max,
                                     const FitOptions& fit = {}, const callbacks::OneCycleOptions& cycle = {});
    // fastai's fine_tune: freezes the layers before the head, fit_one_cycle(freeze_epochs, base_lr,
    // pct_start 0.99), unfreezes them, then fit_one_cycle(epochs, base_lr / 2, pct_start, div) with
    // the body's weights at 1 / lr_mult of the head's rate (two groups of fastai's discriminative
    // rates). Layers that were already frozen (trainable = false) stay frozen. Returns the second
    // fit's History.
    callbacks::History fine_tune(const Tensor& x, const Tensor& y, int epochs, const FineTuneOptions& options = {},
                                 const FitOptions& fit = {});

    // Builds every layer for inputs of this shape (batch axis -1 or any size).
    virtual void build(const Shape& input_shape);
    // Whether the layers have their weights.
    bool built() const { return built_; }
    // Keras's table: Layer (type), Output Shape, Param #, then totals; functional models add
    // Keras 2's "Connected to" column.
    void summary(std::ostream* out = nullptr) const;

    // Keras's model.layers: a Sequential's leave out its InputLayer (as Keras 3's Sequential.layers),
    // a functional model's keep theirs (as Keras's Functional.layers).
    std::vector<LayerPtr> layers() const;
    // Every layer, a Sequential's InputLayer first when it has one: what its saved config lists.
    const std::vector<LayerPtr>& all_layers() const { return layers_; }
    // Keras's model.get_layer(name); ValueError naming the layers there are when there is none.
    LayerPtr get_layer(const std::string& name) const;
    // Every layer's weights, in layer order.
    std::vector<VariablePtr> weights() const;
    // The weights training updates (of trainable layers, trainable variables).
    std::vector<VariablePtr> trainable_weights() const;
    std::vector<Tensor> get_weights() const;            // copies
    void set_weights(const std::vector<Tensor>& values);  // shapes must match
    // The number of weight values.
    int64_t count_params() const;
    // tf-keras's model.reset_states(): zeroes the kept states of every stateful layer (others are
    // left alone); reset_state() is the same.
    void reset_states();
    void reset_state() { reset_states(); }

    // Keras's legacy HDF5 model file (architecture, weights, training config, optimizer state),
    // written atomically. keras::models::load_model reads it back.
    void save(const std::string& filepath, const SaveOptions& options = {}) const;
    // Weights only: a legacy ".h5" weights file, or Keras 3's ".weights.h5" layout by that suffix.
    void save_weights(const std::string& filepath, bool overwrite = true) const;
    // Reads weights saved by save_weights (either layout) or save, by layer name and order.
    void load_weights(const std::string& filepath);

    // The device the model computes on, PyTorch-style: to() moves the weights there (the optimizer's
    // slots follow at its next step) and fit / evaluate / predict then move each batch of their host
    // arrays there; predict() and get_weights() always return host tensors. A model that was never
    // moved uses keras::default_device(), fixed when it is built. Returns *this, so
    // `model.to(keras::Device::cuda())` chains. A CUDA device that cannot be used is a RuntimeError.
    Model& to(Device device);
    Device device() const;   // The device the weights are on (or will be).

    const std::string& name() const { return name_; }   // Keras's model.name.
    bool compiled() const { return optimizer_ != nullptr; }   // Whether compile() was called.
    optimizers::Optimizer& optimizer() const;   // The compiled optimizer (RuntimeError before compile()).
    const losses::Loss& loss() const;   // the first output's
    const std::vector<losses::LossPtr>& output_losses() const;   // One loss per output.
    // The metrics given to compile(), as given ("accuracy"): those for every output.
    const std::vector<std::string>& metric_names() const { return compile_options_.metrics; }
    // compile()'s keyword arguments as given (for the saved training_config).
    const CompileOptions& compile_options() const { return compile_options_; }
    // Each output's weight in the total loss (1 unless compile() set loss_weights).
    const std::vector<double>& loss_weights() const;

    // Compiled in a distribute::MultiWorkerMirroredStrategy's scope: this worker's rank and the number
    // of workers (0 and 1 otherwise). Only rank 0 (the chief) writes files: save() and save_weights()
    // do nothing on the other workers, and the checkpoint callbacks write nothing there.
    int replica_rank() const;
    int num_replicas() const;
    bool is_chief() const { return replica_rank() == 0; }

    bool stop_training = false;   // set by callbacks (EarlyStopping, TerminateOnNaN)
    // Set in on_train_begin by a callback that restores a run (BackupAndRestore): fit() then starts
    // at this epoch instead of FitOptions::initial_epoch. fit() clears it when it returns.
    std::optional<int> initial_epoch_override;

    // Keras's Model.train_step(data), which fit() and train_on_batch() call once per batch: override
    // it to train differently. The default runs the model forwards, the compiled losses and metrics,
    // the gradients backwards and one optimizer step, and returns the logs ("loss" and each metric,
    // running means since the last reset_metrics(), as get_metrics_result() gives them). fit() passes the returned logs to the callbacks.
    virtual Logs train_step(const Batch& batch);
    // Keras's Model.test_step(data) for evaluate(), validation and test_on_batch(): the default
    // updates the compiled losses and metrics without training and returns their logs.
    virtual Logs test_step(const Batch& batch);
    // Keras's Model.predict_step(x) for predict(): the outputs of one batch (on any device).
    virtual std::vector<Tensor> predict_step(const std::vector<Tensor>& x);
    // The compiled losses' and metrics' running values ("loss", per-output losses, metrics).
    Logs get_metrics_result() const;
    void reset_metrics();   // Resets the compiled metrics' running values.

protected:
    explicit Model(std::string name) : name_(std::move(name)) {}
    std::vector<LayerPtr> layers_;
    bool built_ = false;
    Shape input_shape_;    // batch axis -1, or the InputLayer's fixed batch size
    Shape output_shape_;   // batch axis -1
    // The graph forward() / backward() run, and the input and output shapes it gives.
    void set_graph(std::shared_ptr<const FunctionalGraph> graph);
    // Once built: fixes the device (keras::default_device() unless to() chose one) and moves the weights there.
    void place_weights();
    // Checks one batch per input against the model before it runs, building what needs the data
    // first (a Sequential without an InputLayer builds on its first data).
    virtual void build_for_data(const std::vector<Tensor>& x);

    using Arrays = std::vector<Tensor>;
    // The outputs, and into *masks (when given) each output's mask (undefined where it has none).
    Arrays forward(const Arrays& x, std::vector<CallContext>& contexts, bool training, Arrays* masks = nullptr);
    // Accumulates every trainable weight's gradient (Variable::grad) from the outputs' gradients.
    void backward(const Arrays& dy, std::vector<CallContext>& contexts);
    // backward() calling after_node(n) once the walk is past node n of the graph (last node first).
    void backward(const Arrays& dy, std::vector<CallContext>& contexts, const std::function<void(size_t)>& after_node);

private:
    Logs run_evaluation(const Arrays& x, const Arrays& y, int64_t batch_size, callbacks::CallbackList& callbacks,
                        int verbose);
    void ensure_built(const Arrays& x);
    void ensure_compiled(const char* what) const;
    void check_counts(const Arrays& x, const Arrays* y, const char* what) const;
    void check_xy(const Arrays& x, const Arrays& y, const char* what) const;
    void check_targets(const Arrays& y) const;   // y against the output shapes, via the losses
    // compile()d? x / y consistent, the model built for x, y matching its output, metrics resolved.
    void prepare_data(const Arrays& x, const Arrays& y, const char* what);
    // A model not yet built (a Sequential) has one output.
    size_t n_outputs() const { return graph_ ? output_shapes_.size() : 1; }
    const Shape& output_shape(size_t k) const { return output_shapes_.at(k); }
    void move_weights_to_device();
    // test_step's work on this worker's rows (the metrics updated, nothing returned).
    void test_step_rows(const Batch& batch);
    // predict()'s loop over x's rows on this worker alone.
    Arrays predict_rows(const Arrays& x, const PredictOptions& options);

    // The workers' collectives when compiled in a MultiWorkerMirroredStrategy's scope; null otherwise.
    std::shared_ptr<distribute::Communicator> communicator_;

    std::string name_;
    mixed_precision::DTypePolicy dtype_policy_ = mixed_precision::global_policy();
    std::optional<Device> device_;
    optimizers::OptimizerPtr optimizer_;
    CompileOptions compile_options_;
    // The compiled losses, loss weights and metrics (Keras's CompileLoss / CompileMetrics).
    std::shared_ptr<LossAndMetrics> compiled_;
    std::shared_ptr<const FunctionalGraph> graph_;
    std::vector<Shape> input_shapes_, output_shapes_;   // the graph's (batch axis -1)
    // Set while fit() runs: a second fit() of this model from another thread is refused (its
    // weights and optimizer state would be updated by both at once). Shared by copies, which share
    // the layers too.
    std::shared_ptr<std::atomic<bool>> fitting_ = std::make_shared<std::atomic<bool>>(false);
};

// Keras's Sequential: a plain stack of layers, each feeding the next (add(), pop()).
class KERAS_API Sequential : public Model {
public:
    // An empty Sequential; add() layers to it.
    explicit Sequential(const std::string& name = "");
    // Keras's Sequential([layer, ...]).
    Sequential(std::initializer_list<LayerPtr> layers, const std::string& name = "");

    // Appends a layer (Keras's model.add); the model is built again on next use.
    void add(LayerPtr layer);
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
    void add(L layer) { add(std::make_shared<L>(std::move(layer))); }   // Appends a layer value: model.add(layers::Dense(1)).
    // Removes the last layer (Keras's model.pop()).
    void pop();
    // Builds every layer for inputs of this shape (batch axis -1 or any size), and the chain they run as.
    void build(const Shape& input_shape) override;
    bool is_functional() const override { return false; }

protected:
    void build_for_data(const std::vector<Tensor>& x) override;

private:
    // The graph of the layers in order, from an input of input_shape_; run by Model's forward().
    void rebuild_graph();
};

}  // namespace keras

template <> struct std::tuple_size<keras::EvaluateResult> : std::integral_constant<size_t, 2> {};
// Structured bindings of EvaluateResult: `auto [loss, acc] = model.evaluate(x, y);`.
template <size_t I> struct std::tuple_element<I, keras::EvaluateResult> { using type = double; };
