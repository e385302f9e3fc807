// Model::operator(): a batch through the model as a recorded op, so a GradientTape reaches the
// weights of every layer, whether its backward is hand-written or automatic.
#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"

namespace keras {

Tensor Model::operator()(const Tensor& x, const CallOptions& options) {
    if (n_outputs() != 1)
        throw NotImplementedError(fmt::format("Model \"{}\" has {} outputs: calling a model on a batch supports "
                                              "single-output models (use predict() for several outputs)", name_, n_outputs()));
    const Arrays xs{x.to(device_.value_or(x.device()))};
    ensure_built(xs);
    // The contexts outlive this call: the recorded backward below runs the layers' backward on them.
    auto contexts = std::make_shared<std::vector<CallContext>>();
    Tensor y = forward(xs, *contexts, options.training)[0];
    if (!autodiff::recording()) return y;

    // Inputs of the recorded op: the batch (no gradient is sent to it), then a read of every
    // trainable weight, whose gradients the layers' backward pass fills in.
    const std::vector<VariablePtr> weights = trainable_weights();
    std::vector<Tensor> inputs{x};
    for (const auto& w : weights) inputs.push_back(autodiff::read(*w));
    auto backward = [this, contexts, weights](const Tensor& dy) {
        // The layers add into Variable::grad: keep what the fields held (fit()'s own gradients) and
        // hand back only this call's share.
        std::vector<Tensor> kept;
        for (const auto& w : weights) kept.push_back(std::exchange(w->grad, Tensor{}));
        this->backward({dy}, *contexts);
        std::vector<Tensor> grads{Tensor{}};
        for (size_t i = 0; i < weights.size(); ++i) {
            grads.push_back(weights[i]->grad.defined() ? weights[i]->grad : Tensor{});
            weights[i]->grad = kept[i];
        }
        return grads;
    };
    return autodiff::record("model " + name_, y.detached(), inputs, backward);
}

}  // namespace keras
