// Model: building the layers for the data, running them forwards and backwards, and checking
// fit / evaluate's arrays against the model.
#include <algorithm>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/model.hpp"

#include "functional_graph.hpp"
#include "loss_and_metrics.hpp"

namespace keras {

// ---------------------------------------------------------------- building

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

// ---------------------------------------------------------------- forward / backward

Model::Arrays Model::forward(const Arrays& xs, std::vector<CallContext>& contexts, bool training, Arrays* masks) {
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

// ---------------------------------------------------------------- data checks

void Model::check_counts(const Arrays& x, const Arrays* y, const char* what) const {
    const size_t n_in = graph_ ? graph_->inputs.size() : 1;
    if (x.size() != n_in)
        value_error("Layer \"{}\" expects {} input(s), but it received {} input tensors.", name_, n_in, x.size());
    if (y && y->size() != n_outputs())
        value_error("{}(): model \"{}\" has {} output(s), but {} target arrays were given", what, name_, n_outputs(),
                    y->size());
}

static void check_xy_pair(const Tensor& x, const Tensor& y, const char* what) {
    if (!x.defined() || !y.defined()) value_error("{}(): x and y must both be given", what);
    if (x.ndim() == 0 || y.ndim() == 0) value_error("{}(): x and y need a batch axis; got x {} and y {}", what,
                                                    shape_str(x.shape()), shape_str(y.shape()));
    if (x.dim(0) != y.dim(0))
        value_error("Data cardinality is ambiguous:\n  x sizes: {}\n  y sizes: {}\nMake sure all arrays contain the same "
                    "number of samples.", x.dim(0), y.dim(0));
    if (x.dim(0) == 0) value_error("{}(): the data is empty (0 samples)", what);
}

void Model::check_xy(const Arrays& xs, const Arrays& ys, const char* what) const {
    check_counts(xs, &ys, what);
    for (const auto& x : xs)
        for (const auto& y : ys) check_xy_pair(x, y, what);
}

void Model::check_targets(const Arrays& ys) const {
    for (size_t k = 0; k < ys.size(); ++k) {
        Shape shape = output_shape(k);
        shape[0] = ys[k].dim(0);
        // An axis the model leaves open (None, e.g. the steps of an Input of shape (None,)) takes the
        // targets' size there; the defined axes are checked.
        for (size_t i = 1; i < shape.size() && i < static_cast<size_t>(ys[k].ndim()); ++i)
            if (shape[i] < 0) shape[i] = ys[k].dim(static_cast<int>(i));
        compiled_->losses()[k]->check_shapes(ys[k], shape);
    }
}

void Model::prepare_data(const Arrays& x, const Arrays& y, const char* what) {
    ensure_compiled(what);
    check_xy(x, y, what);
    ensure_built(x);
    check_targets(y);
    // The metrics' variants ("accuracy") depend on each output's last axis, known once built.
    std::vector<int64_t> units;
    for (size_t k = 0; k < n_outputs(); ++k) units.push_back(output_shape(k).empty() ? 1 : output_shape(k).back());
    compiled_->build(output_names(), units);
}

}  // namespace keras
