#include "keras/layers/rnn_layer.hpp"

#include "keras/errors.hpp"
#include "keras/layers/rnn.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

std::vector<Tensor> AbstractRNNCell::get_initial_state(int64_t batch_size, Device device) const {
    std::vector<Tensor> states;
    for (int64_t size : state_size()) states.push_back(Tensor::zeros({batch_size, size}, DType::float32, device));
    return states;
}

namespace {
// The recurrent layer a built-in cell runs in: what LSTM / GRU / SimpleRNN are, over the given cell
// (shared with the user, its weights are the RNN's), named as the RNN so errors name the user's layer.
class CellRNN final : public RNNBase {
public:
    CellRNN(const std::string& name, const RNNOptions& o, std::shared_ptr<RNNCell> cell)
        : RNNBase("RNN", name, RecurrentCommon{.return_sequences = o.return_sequences, .return_state = o.return_state,
                                               .go_backwards = o.go_backwards, .stateful = o.stateful,
                                               .zero_output_for_mask = o.zero_output_for_mask}) {
        set_cell(std::move(cell));
    }
};
}  // namespace

RNN::RNN(std::shared_ptr<AbstractRNNCell> cell, RNNOptions options)
    : Layer("RNN", options.name, options.trainable), cell_layer_(cell), cell_(std::move(cell)), options_(options) {
    if (!cell_) value_error("RNN: the cell is null");
    supports_masking = true;
}

RNN::RNN(std::shared_ptr<RNNCell> cell, RNNOptions options) : Layer("RNN", options.name, options.trainable), cell_layer_(cell), options_(options) {
    if (!cell) value_error("RNN: the cell is null");
    fused_ = std::make_shared<CellRNN>(name(), options_, std::move(cell));
    supports_masking = true;
}

std::vector<int64_t> RNN::state_sizes() const {
    if (fused_) return std::vector<int64_t>(static_cast<size_t>(fused_->state_count()), fused_->units());
    return cell_->state_size();
}

void RNN::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

void RNN::check_symbolic_input(const Shape& input_shape) const {
    if (fused_) fused_->check_symbolic_input(input_shape);
}

void RNN::build(const Shape& input_shape) {
    // The cell is built for one step's input (a built-in cell through its recurrent layer, which checks
    // the input as LSTM / GRU / SimpleRNN do); its weights are this layer's (one set of Variables).
    if (fused_) {
        fused_->build_for(input_shape);
        track_weights_of(*fused_);
        return;
    }
    cell_->build_for({input_shape[0], input_shape[2]});
    track_weights_of(*cell_);
}

Shape RNN::compute_output_shape(const Shape& input_shape) const {
    if (fused_) return fused_->compute_output_shape(input_shape);
    const int64_t out = cell_->output_size();
    return options_.return_sequences ? Shape{input_shape[0], input_shape[1], out} : Shape{input_shape[0], out};
}

std::vector<Shape> RNN::compute_output_shapes(const Shape& input_shape) const {
    std::vector<Shape> shapes{compute_output_shape(input_shape)};
    if (options_.return_state)
        for (int64_t size : state_sizes()) shapes.push_back({input_shape[0], size});
    return shapes;
}

Tensor RNN::compute_mask(const Tensor&, const Tensor& mask) const {
    return options_.return_sequences ? mask : Tensor{};
}

void RNN::check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const {
    if (fused_) return fused_->check_initial_state(input_shape, states);
    if (states.empty()) return;
    const auto sizes = cell_->state_size();
    if (states.size() != sizes.size())
        value_error("Layer \"{}\" expects {} state(s) in `initial_state`, but it received {}", name(), sizes.size(),
                    states.size());
    for (size_t i = 0; i < sizes.size(); ++i)
        if (states[i].size() != 2 || states[i][1] != sizes[i] ||
            (states[i][0] >= 0 && input_shape[0] >= 0 && states[i][0] != input_shape[0]))
            value_error("Layer \"{}\": initial state {} has shape {}, expected (batch, {})", name(), i,
                        shape_str(states[i]), sizes[i]);
}

Tensor RNN::call(const Tensor& x, CallContext& ctx) {
    if (fused_) return fused_->call(x, ctx);
    return call_outputs(x, {}, ctx)[0];
}

Tensor RNN::backward(const Tensor& dy, CallContext& ctx) {
    return fused_ ? fused_->backward(dy, ctx) : Layer::backward(dy, ctx);
}

std::vector<Tensor> RNN::backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) {
    return fused_ ? fused_->backward_outputs(dys, ctx) : recorded_backward(dys, ctx);
}

std::string RNN::implementation_note() const {
    return fused_ ? fused_->implementation_note() : "step loop over " + cell_->class_name() + " (autodiff)";
}

void RNN::reset_states() {
    if (fused_) fused_->reset_states();
    states_.clear();
}

std::vector<Tensor> RNN::states() const { return fused_ ? fused_->states() : states_; }

std::vector<Tensor> RNN::call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) {
    if (fused_) return fused_->call_outputs(x, initial_state, ctx);
    check_initial_state(x.shape(), shapes_of(initial_state));
    std::vector<Tensor> start = initial_state;
    if (start.empty() && options_.stateful && !states_.empty()) {
        if (states_[0].dim(0) != x.dim(0))
            value_error("Layer \"{}\" is stateful with batch size {}, but received a batch of {} (reset_states() first)",
                        name(), states_[0].dim(0), x.dim(0));
        start = states_;
    }
    const Tensor mask = ctx.mask;
    auto outputs = record_call(x, start, ctx, [&](const Tensor& in, const std::vector<Tensor>& states) {
        return run(in, states, mask, ctx.training);
    });
    if (options_.stateful) {
        states_.clear();
        for (size_t i = 1; i < outputs.size(); ++i) states_.push_back(outputs[i].detached());
    }
    if (!options_.return_state) outputs.resize(1);
    return outputs;
}

std::vector<Tensor> RNN::run(const Tensor& x, const std::vector<Tensor>& initial_state, const Tensor& mask,
                             bool training) {
    const int64_t batch = x.dim(0), steps = x.dim(1), features = x.dim(2);
    std::vector<Tensor> states = initial_state.empty() ? cell_->get_initial_state(batch, x.device()) : initial_state;
    const Tensor m = mask.defined() ? mask.to(x.device()) : Tensor{};
    Tensor output = Tensor::zeros({batch, cell_->output_size()}, DType::float32, x.device());   // before any real step
    std::vector<Tensor> outputs(steps);
    for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = options_.go_backwards ? steps - 1 - i : i;
        const Tensor x_t = ops::reshape(ops::slice(x, {0, t, 0}, {batch, 1, features}), {batch, features});
        StepOutput step = cell_->step(x_t, states, training);
        if (step.states.size() != states.size())
            value_error("Cell \"{}\" returned {} state(s) from a step; its state_size has {}", cell_->name(),
                        step.states.size(), states.size());
        if (m.defined()) {
            // Keras's masked step: states and output stay as they were (zeros with zero_output_for_mask).
            const Tensor m_t = ops::reshape(ops::slice(m, {0, t}, {batch, 1}), {batch, 1});
            for (size_t k = 0; k < states.size(); ++k) states[k] = ops::where(m_t, step.states[k], states[k]);
            output = ops::where(m_t, step.output, options_.zero_output_for_mask ? ops::zeros_like(step.output) : output);
        } else {
            states = std::move(step.states);
            output = step.output;
        }
        outputs[i] = output;
    }
    std::vector<Tensor> result{options_.return_sequences ? ops::stack(outputs, 1) : output};
    result.insert(result.end(), states.begin(), states.end());
    return result;
}

nlohmann::json RNN::get_config() const {
    auto config = Layer::get_config();
    write_fields(config, options_);
    config["cell"] = {{"class_name", cell_layer_->class_name()}, {"config", cell_layer_->get_config()}};
    if (fused_) {   // Keras's own cell classes, as Keras 3 writes them
        config["cell"]["module"] = "keras.layers";
        config["cell"]["registered_name"] = nullptr;
    }
    return config;
}

}  // namespace keras::layers
