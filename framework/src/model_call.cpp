// Model::operator() and call_all: a batch through the model as a recorded op, so a GradientTape
// reaches the weights of every layer, whether its backward is hand-written or automatic.
#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"

namespace keras {

std::vector<Tensor> Model::call_all(const std::vector<Tensor>& xs, const CallOptions& options) {
    Arrays inputs;
    for (const auto& x : xs) inputs.push_back(x.defined() ? x.to(device_.value_or(x.device())) : x);
    ensure_built(inputs);
    // The contexts outlive this call: the recorded backward below runs the layers' backward on them.
    auto contexts = std::make_shared<std::vector<CallContext>>();
    Arrays ys = forward(inputs, *contexts, options.training);
    if (!autodiff::recording()) return ys;

    // One recorded op of several outputs whose backward runs the layers' backward passes
    // (hand-written or automatic) on the contexts of this call; the inputs get no gradient.
    return autodiff::record_accumulating("model " + name_, ys, xs, trainable_weights(),
                                         [this, contexts, n = xs.size()](const std::vector<Tensor>& dys) {
                                             this->backward(dys, *contexts);
                                             return std::vector<Tensor>(n);
                                         });
}

Tensor Model::operator()(const std::vector<Tensor>& xs, const CallOptions& options) {
    if (n_outputs() != 1)
        throw NotImplementedError(fmt::format("Model \"{}\" has {} outputs: model(x) gives a single output; "
                                              "call_all(x) gives them all", name_, n_outputs()));
    return call_all(xs, options)[0];
}

Tensor Model::operator()(const Tensor& x, const CallOptions& options) { return (*this)(std::vector<Tensor>{x}, options); }

}  // namespace keras
