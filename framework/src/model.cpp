// Model: compile(), the accessors, the device and the weights. Building and running the layers is
// model_build.cpp; fit / evaluate / predict and the per-batch steps are trainer.cpp.
#include "keras/model.hpp"

#include "keras/backend.hpp"
#include "keras/errors.hpp"

#include "distribute/communicator.hpp"
#include "loss_and_metrics.hpp"

namespace keras {

double EvaluateResult::first_metric() const {
    if (items().size() < 2)
        value_error("This evaluate() result has only the loss: compile the model with metrics, e.g. {{\"accuracy\"}}");
    return items()[1].second;
}

// ---------------------------------------------------------------- compile

OptimizerArg::OptimizerArg(const char* name) : optimizer(optimizers::get(name)) {}
OptimizerArg::OptimizerArg(const std::string& name) : optimizer(optimizers::get(name)) {}

LossArg::LossArg(const char* name) : losses{losses::get(name)}, one_for_all(true) {}
LossArg::LossArg(const std::string& name) : losses{losses::get(name)}, one_for_all(true) {}
LossArg::LossArg(const std::vector<std::string>& names) {
    for (const auto& n : names) losses.push_back(losses::get(n));
}

void Model::compile(OptimizerArg optimizer, LossArg loss, const CompileOptions& options) {
    if (!optimizer.optimizer) value_error("compile(): the optimizer is null");
    for (const auto& l : loss.losses)
        if (!l) value_error("compile(): the loss is null");
    // One loss for every output, as Keras applies a single loss to each output.
    std::vector<losses::LossPtr> per_output =
        loss.one_for_all ? std::vector<losses::LossPtr>(n_outputs(), loss.losses.at(0)) : std::move(loss.losses);
    if (per_output.size() != n_outputs())
        value_error("When there is more than one output, `loss` must be one loss or a list of one loss per output. "
                    "Model \"{}\" has {} output(s); received {} losses", name_, n_outputs(), per_output.size());
    compiled_ = std::make_shared<LossAndMetrics>(std::move(per_output), options, output_names(), name_);
    optimizer_ = std::move(optimizer.optimizer);
    if (options.auto_scale_loss && dtype_policy_.mixed_float16() &&
        !std::dynamic_pointer_cast<optimizers::LossScaleOptimizer>(optimizer_))
        optimizer_ = std::make_shared<optimizers::LossScaleOptimizer>(optimizer_);
    compile_options_ = options;
    // Keras: a model compiled in strategy.scope() trains distributed.
    const auto* strategy = distribute::MultiWorkerMirroredStrategy::current();
    communicator_ = strategy ? strategy->communicator() : nullptr;
}

int Model::replica_rank() const { return communicator_ ? communicator_->rank() : 0; }
int Model::num_replicas() const { return communicator_ ? communicator_->size() : 1; }

optimizers::Optimizer& Model::optimizer() const {
    ensure_compiled("optimizer");
    return *optimizer_;
}

const losses::Loss& Model::loss() const {
    ensure_compiled("loss");
    return *compiled_->losses()[0];
}

const std::vector<losses::LossPtr>& Model::output_losses() const {
    static const std::vector<losses::LossPtr> none;
    return compiled_ ? compiled_->losses() : none;
}

const std::vector<double>& Model::loss_weights() const {
    static const std::vector<double> none;
    return compiled_ ? compiled_->loss_weights() : none;
}

void Model::ensure_compiled(const char* what) const {
    if (!optimizer_)
        value_error("You must call `compile()` before using the model: {}() was called on \"{}\" before compile()", what,
                    name_);
}

// ---------------------------------------------------------------- device

Model& Model::to(Device device) {
    backend::get(device);   // a CUDA device that cannot be used throws here, naming why
    device_ = device;
    if (built_) move_weights_to_device();
    return *this;
}

Device Model::device() const { return device_ ? *device_ : default_device(); }

void Model::place_weights() {
    if (!device_) device_ = default_device();
    move_weights_to_device();
}

void Model::move_weights_to_device() {
    const Device d = device();
    for (const auto& v : weights()) {
        v->value = v->value.to(d);
        v->grad = Tensor();
    }
}

// ---------------------------------------------------------------- weights

std::vector<LayerPtr> Model::layers() const {
    if (!is_functional() && !layers_.empty() && layers_.front()->class_name() == "InputLayer")
        return {layers_.begin() + 1, layers_.end()};
    return layers_;
}

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

void Model::reset_states() {
    for (const auto& layer : layers_)
        if (layer->stateful()) layer->reset_states();
}

int64_t Model::count_params() const {
    int64_t n = 0;
    for (const auto& l : layers_) n += l->count_params();
    return n;
}

}  // namespace keras
