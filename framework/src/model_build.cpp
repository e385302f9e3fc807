// Model: checking data against the model's graph (building what waits for data), running the graph
// forwards and backwards, and checking fit / evaluate's arrays. Sequential's building is sequential.cpp.
#include <algorithm>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"

#include "functional_graph.hpp"
#include "loss_and_metrics.hpp"

namespace keras {

// ---------------------------------------------------------------- building

// A functional model was built from its inputs' shapes: only check this one against its first input.
void Model::build(const Shape& input_shape) {
    Shape shape = input_shape;
    if (!shape.empty()) shape[0] = -1;
    graph_->inputs[0].node->layer->build_for(shape);
}

void Model::ensure_built(const Arrays& xs) {
    check_counts(xs, nullptr, "call");
    for (const auto& x : xs)
        if (!x.defined()) value_error("Model \"{}\" received an undefined input tensor", name_);
    build_for_data(xs);
}

// Each input layer checks its array's shape and the first layers reading it check the values.
void Model::build_for_data(const Arrays& xs) {
    for (size_t i = 0; i < xs.size(); ++i) {
        Shape shape = xs[i].shape();
        if (!shape.empty()) shape[0] = -1;
        graph_->inputs[i].node->layer->build_for(shape);
        for (const auto& node : graph_->nodes)
            for (const auto& in : node->inputs)
                if (in.node == graph_->inputs[i].node) node->layer->check_data(xs[i]);
    }
}

// ---------------------------------------------------------------- forward / backward

Model::Arrays Model::forward(const Arrays& xs, std::vector<CallContext>& contexts, bool training, Arrays* masks) {
    return graph_->forward(xs, contexts, training, masks);
}

void Model::backward(const Arrays& dys, std::vector<CallContext>& contexts) { graph_->backward(dys, contexts); }
void Model::backward(const Arrays& dys, std::vector<CallContext>& contexts,
                     const std::function<void(size_t)>& after_node) {
    graph_->backward(dys, contexts, after_node);
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
