// losses::LossFunctionWrapper: a loss written with ops, its gradient from autodiff.
#include "keras/autodiff.hpp"
#include "keras/errors.hpp"
#include "keras/losses.hpp"
#include "keras/ops.hpp"

namespace keras::losses {

LossFunctionWrapper::LossFunctionWrapper(Function fn, std::string name) : fn_(std::move(fn)), name_(std::move(name)) {
    if (!fn_) value_error("LossFunctionWrapper \"{}\": the function is empty", name_);
}

void LossFunctionWrapper::check_shapes(const Tensor&, const Shape&) const {
    // The function decides what targets it reads (class ids, one-hot rows, ...): nothing to check here.
}

double LossFunctionWrapper::compute_masked(const Tensor& y_true, const Tensor& y_pred, const Tensor& mask,
                                           Tensor* grad) const {
    GradientTape tape;
    Tensor pred = y_pred;
    tape.watch(pred);
    const Tensor values = fn_(y_true, pred);
    if (!values.defined() || values.dtype() != DType::float32)
        value_error("Loss \"{}\" must return a float32 tensor of per-sample (or per-step) losses", name_);
    // Each value's weight in the batch value: the plain mean, or Keras's masked mean over real steps
    // when the values are per step (one per mask entry).
    std::vector<float> weights(static_cast<size_t>(values.numel()), values.numel() ? 1.0f / float(values.numel()) : 0.0f);
    if (mask.defined()) {
        const auto w = position_weights(mask, y_pred.shape());
        if (w.size() != weights.size())
            value_error("Loss \"{}\" returned {} values of shape {}, but the output's mask needs one per step ({} of them): "
                        "return the loss per step (reduce only the last axis)", name_, values.numel(),
                        shape_str(values.shape()), w.size());
        std::copy(w.begin(), w.end(), weights.begin());
    }
    const Tensor flat = ops::reshape(values, {values.numel()});
    const Tensor loss = ops::sum(ops::multiply(flat, Tensor(weights, {values.numel()}).to(values.device())));
    if (grad) *grad = tape.gradient(loss, pred, /*unconnected_zeros=*/true);
    return loss.to(Device::cpu()).item();
}

nlohmann::json LossFunctionWrapper::get_config() const { return {{"name", name_}, {"reduction", "sum_over_batch_size"}}; }

}  // namespace keras::losses
