// Model: compile / fit / evaluate / predict over a chain of layers. Sequential builds the chain
// with add(); the functional Model (inputs -> outputs graphs) extends the same training loop.
#pragma once

#include "keras/export.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "keras/callbacks.hpp"
#include "keras/keras_tensor.hpp"
#include "keras/layer.hpp"
#include "keras/logs.hpp"
#include "keras/losses.hpp"
#include "keras/metrics.hpp"
#include "keras/optimizers.hpp"
#include "keras/tensor.hpp"

namespace keras {

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
};

// save()'s keyword arguments (Keras's model.save(filepath, overwrite, include_optimizer)).
struct KERAS_API SaveOptions {
    bool overwrite = true;
    bool include_optimizer = true;
};

struct KERAS_API EvaluateOptions {
    int64_t batch_size = 32;
    int verbose = 1;
    std::vector<callbacks::CallbackPtr> callbacks{};
};

struct KERAS_API PredictOptions {
    int64_t batch_size = 32;
    int verbose = 1;
    std::vector<callbacks::CallbackPtr> callbacks{};
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

class KERAS_API Model {
public:
    virtual ~Model() = default;

    // The functional API: the model computing `outputs` from `inputs` (keras::Input tensors). Every
    // output must be computable from the inputs alone ("Graph disconnected" ValueError otherwise).
    Model(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs, const std::string& name = "");
    Model(const KerasTensor& input, const KerasTensor& output, const std::string& name = "");
    bool is_functional() const { return graph_ != nullptr; }
    // The graph of a functional model (null for Sequential); for saving and summary code.
    const FunctionalGraph* functional_graph() const { return graph_.get(); }
    const std::vector<KerasTensor>& inputs() const;
    const std::vector<KerasTensor>& outputs() const;
    // The names of the output layers, in order (the prefixes of the per-output log names).
    std::vector<std::string> output_names() const;

    template <typename Opt, typename = std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, Opt>>>
    void compile(Opt optimizer, const std::string& loss, const std::vector<std::string>& metrics = {}) {
        compile(std::make_shared<Opt>(std::move(optimizer)), losses::get(loss), metrics);
    }
    template <typename Opt, typename L,
              typename = std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, Opt> &&
                                          std::is_base_of_v<losses::Loss, L>>>
    void compile(Opt optimizer, L loss, const std::vector<std::string>& metrics = {}) {
        compile(std::make_shared<Opt>(std::move(optimizer)), std::make_shared<L>(std::move(loss)), metrics);
    }
    void compile(const std::string& optimizer, const std::string& loss, const std::vector<std::string>& metrics = {});
    void compile(optimizers::OptimizerPtr optimizer, losses::LossPtr loss, const std::vector<std::string>& metrics = {});
    // One loss per output (a multi-output model); the total loss is their sum. The metrics apply to
    // every output and are logged as "<output layer>_<metric>", as in Keras 2.
    void compile(const std::string& optimizer, const std::vector<std::string>& losses,
                 const std::vector<std::string>& metrics = {});
    void compile(optimizers::OptimizerPtr optimizer, std::vector<losses::LossPtr> losses,
                 const std::vector<std::string>& metrics = {});
    // The keyword form (CompileOptions): one loss for every output, or one per output.
    void compile(const std::string& optimizer, const std::string& loss, const CompileOptions& options);
    void compile(const std::string& optimizer, const std::vector<std::string>& losses, const CompileOptions& options);
    void compile(optimizers::OptimizerPtr optimizer, losses::LossPtr loss, const CompileOptions& options);
    void compile(optimizers::OptimizerPtr optimizer, std::vector<losses::LossPtr> losses, const CompileOptions& options);
    template <typename Opt, typename = std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, Opt>>>
    void compile(Opt optimizer, const std::vector<std::string>& losses, const CompileOptions& options) {
        std::vector<losses::LossPtr> resolved;
        for (const auto& l : losses) resolved.push_back(losses::get(l));
        compile(std::make_shared<Opt>(std::move(optimizer)), std::move(resolved), options);
    }

    callbacks::History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
    EvaluateResult evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
    Tensor predict(const Tensor& x, const PredictOptions& options = {});
    // One gradient step on one batch; returns the loss and metrics of that batch (metrics reset first).
    Logs train_on_batch(const Tensor& x, const Tensor& y);
    Logs test_on_batch(const Tensor& x, const Tensor& y);
    // Several inputs and / or outputs: one array per model input and per output, in order.
    // (FitOptions::validation_data takes single arrays; use validation_split with several.)
    callbacks::History fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options = {});
    EvaluateResult evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                            const EvaluateOptions& options = {});
    std::vector<Tensor> predict(const std::vector<Tensor>& x, const PredictOptions& options = {});

    // Builds every layer for inputs of this shape (batch axis -1 or any size).
    void build(const Shape& input_shape);
    bool built() const { return built_; }
    // Keras's table: Layer (type), Output Shape, Param #, then totals; functional models add
    // Keras 2's "Connected to" column.
    void summary(std::ostream* out = nullptr) const;

    const std::vector<LayerPtr>& layers() const { return layers_; }
    LayerPtr get_layer(const std::string& name) const;
    std::vector<VariablePtr> weights() const;
    std::vector<VariablePtr> trainable_weights() const;
    std::vector<Tensor> get_weights() const;            // copies
    void set_weights(const std::vector<Tensor>& values);  // shapes must match
    int64_t count_params() const;

    // Keras's legacy HDF5 model file (architecture, weights, training config, optimizer state),
    // written atomically. keras::models::load_model reads it back.
    void save(const std::string& filepath, const SaveOptions& options = {}) const;
    // Weights only: a legacy ".h5" weights file, or Keras 3's ".weights.h5" layout by that suffix.
    void save_weights(const std::string& filepath, bool overwrite = true) const;
    void load_weights(const std::string& filepath);

    // The device the model computes on, PyTorch-style: to() moves the weights there (the optimizer's
    // slots follow at its next step) and fit / evaluate / predict then move each batch of their host
    // arrays there; predict() and get_weights() always return host tensors. A model that was never
    // moved uses keras::default_device(), fixed when it is built. Returns *this, so
    // `model.to(keras::Device::cuda())` chains. A CUDA device that cannot be used is a RuntimeError.
    Model& to(Device device);
    Device device() const;

    const std::string& name() const { return name_; }
    bool compiled() const { return optimizer_ != nullptr; }
    optimizers::Optimizer& optimizer() const;
    const losses::Loss& loss() const;   // the first output's
    const std::vector<losses::LossPtr>& output_losses() const { return losses_; }
    // The metrics given to compile(), as given ("accuracy"): those for every output.
    const std::vector<std::string>& metric_names() const { return metric_names_; }
    // compile()'s keyword arguments as given (for the saved training_config).
    const CompileOptions& compile_options() const { return compile_options_; }
    // Each output's weight in the total loss (1 unless compile() set loss_weights).
    const std::vector<double>& loss_weights() const { return loss_weights_; }

    bool stop_training = false;   // set by callbacks (EarlyStopping, TerminateOnNaN)
    // Set in on_train_begin by a callback that restores a run (BackupAndRestore): fit() then starts
    // at this epoch instead of FitOptions::initial_epoch. fit() clears it when it returns.
    std::optional<int> initial_epoch_override;

protected:
    explicit Model(std::string name) : name_(std::move(name)) {}
    std::vector<LayerPtr> layers_;
    bool built_ = false;
    Shape input_shape_;    // batch axis -1, or the InputLayer's fixed batch size
    Shape output_shape_;   // batch axis -1

private:
    using Arrays = std::vector<Tensor>;
    // The outputs, and into *masks (when given) each output's mask (undefined where it has none).
    Arrays forward(const Arrays& x, std::vector<CallContext>& contexts, bool training, Arrays* masks = nullptr);
    void backward(const Arrays& dy, std::vector<CallContext>& contexts);
    double train_step(const Arrays& x, const Arrays& y);
    double test_step(const Arrays& x, const Arrays& y);
    // One batch's loss and metric values: (1,) tensors on the model's device when the loss / metric
    // has a device form (loss first, then one per metric; undefined where the host computed it).
    struct BatchValues {
        std::vector<Tensor> on_device;
        double host_loss = 0.0;
        Shape y_shape, y_pred_shape;
        Tensor mask;   // the output's mask (host), undefined without one
    };
    // Queues the loss (and its gradient into *grad, on y_pred's device) and the metric updates.
    // A defined mask makes the loss and metrics skip the masked steps (Keras's masked losses).
    BatchValues queue_loss_and_metrics(size_t output, const Tensor& y, const Tensor& y_pred, const Tensor& mask,
                                       Tensor* grad);
    // Reads each output's device values in one copy into the running means; returns the total loss.
    double record_batch(const std::vector<BatchValues>& values, int64_t batch_size);
    double record_output(size_t output, const BatchValues& values);
    Logs run_evaluation(const Arrays& x, const Arrays& y, int64_t batch_size,
                        std::vector<callbacks::CallbackPtr>& callbacks, int verbose);
    void ensure_built(const Arrays& x);
    void ensure_compiled(const char* what) const;
    void check_counts(const Arrays& x, const Arrays* y, const char* what) const;
    void check_xy(const Arrays& x, const Arrays& y, const char* what) const;
    void check_xy_pair(const Tensor& x, const Tensor& y, const char* what) const;
    void check_targets(const Arrays& y) const;   // y against the output shapes, via the losses
    // compile()d? x / y consistent, the model built for x, y matching its output, metrics resolved.
    void prepare_data(const Arrays& x, const Arrays& y, const char* what);
    size_t n_outputs() const { return graph_ ? output_shapes_.size() : 1; }
    void resolve_metrics();
    // compile()'s options checked against the outputs: each output's metric names and loss weight.
    std::vector<std::vector<std::string>> metrics_per_output(const CompileOptions& options) const;
    std::vector<double> loss_weights_per_output(const CompileOptions& options) const;
    void reset_metrics();
    Logs metric_logs(const std::string& prefix) const;
    void move_weights_to_device();

    std::string name_;
    std::optional<Device> device_;
    optimizers::OptimizerPtr optimizer_;
    losses::LossPtr loss_;                  // the first output's
    std::vector<losses::LossPtr> losses_;   // one per output
    std::vector<std::string> metric_names_;
    CompileOptions compile_options_;
    std::vector<std::vector<std::string>> output_metric_names_;   // resolved from compile(): one list per output
    std::vector<double> loss_weights_;                            // one per output
    struct OutputMetric {
        size_t output;
        metrics::MetricPtr metric;
        std::string log_name;
    };
    std::vector<OutputMetric> metrics_;
    metrics::Mean loss_tracker_{"loss"};
    std::vector<metrics::Mean> output_loss_trackers_;   // several outputs: "<output layer>_loss"
    std::shared_ptr<const FunctionalGraph> graph_;
    std::vector<Shape> input_shapes_, output_shapes_;   // functional models (batch axis -1)
};

class KERAS_API Sequential : public Model {
public:
    explicit Sequential(const std::string& name = "");
    Sequential(std::initializer_list<LayerPtr> layers, const std::string& name = "");

    void add(LayerPtr layer);
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
    void add(L layer) { add(std::make_shared<L>(std::move(layer))); }
    void pop();
};

}  // namespace keras

template <> struct std::tuple_size<keras::EvaluateResult> : std::integral_constant<size_t, 2> {};
template <size_t I> struct std::tuple_element<I, keras::EvaluateResult> { using type = double; };
