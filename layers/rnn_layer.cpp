#include "keras/layers/rnn_layer.hpp"

#include "keras/errors.hpp"
#include "keras/ops.hpp"

namespace keras::layers {

std::vector<Tensor> AbstractRNNCell::get_initial_state(int64_t batch_size, Device device) const {
    std::vector<Tensor> states;
    for (int64_t size : state_size()) states.push_back(Tensor::zeros({batch_size, size}, DType::float32, device));
    return states;
}

RNN::RNN(std::shared_ptr<AbstractRNNCell> cell, RNNOptions options)
    : Layer("RNN", options.name), cell_(std::move(cell)), options_(options) {
    if (!cell_) value_error("RNN: the cell is null");
    supports_masking = true;
}

void RNN::check_input_shape(const Shape& input_shape) const { check_ndim(input_shape, 3); }

void RNN::build(const Shape& input_shape) {
    // The cell is built for one step's input; its weights are this layer's (one set of Variables).
    cell_->build_for({input_shape[0], input_shape[2]});
    track_weights_of(*cell_);
}

Shape RNN::compute_output_shape(const Shape& input_shape) const {
    const int64_t out = cell_->output_size();
    return options_.return_sequences ? Shape{input_shape[0], input_shape[1], out} : Shape{input_shape[0], out};
}

std::vector<Shape> RNN::compute_output_shapes(const Shape& input_shape) const {
    std::vector<Shape> shapes{compute_output_shape(input_shape)};
    if (options_.return_state)
        for (int64_t size : cell_->state_size()) shapes.push_back({input_shape[0], size});
    return shapes;
}

Tensor RNN::compute_mask(const Tensor&, const Tensor& mask) const {
    return options_.return_sequences ? mask : Tensor{};
}

void RNN::check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const {
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

Tensor RNN::call(const Tensor& x, CallContext& ctx) { return call_outputs(x, {}, ctx)[0]; }

std::vector<Tensor> RNN::call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) {
    std::vector<Shape> shapes;
    for (const auto& s : initial_state) shapes.push_back(s.shape());
    check_initial_state(x.shape(), shapes);
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
    config["return_sequences"] = options_.return_sequences;
    config["return_state"] = options_.return_state;
    config["go_backwards"] = options_.go_backwards;
    config["stateful"] = options_.stateful;
    config["unroll"] = options_.unroll;
    config["zero_output_for_mask"] = options_.zero_output_for_mask;
    config["cell"] = {{"class_name", cell_->class_name()}, {"config", cell_->get_config()}};
    return config;
}

}  // namespace keras::layers
