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

    // One recorded op whose backward runs the layers' backward passes (hand-written or automatic) on
    // the contexts of this call; the batch itself gets no gradient.
    return autodiff::record_accumulating("model " + name_, y, x, trainable_weights(), [this, contexts](const Tensor& dy) {
        this->backward({dy}, *contexts);
        return Tensor{};
    });
}

}  // namespace keras
