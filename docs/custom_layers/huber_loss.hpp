// The Huber loss as a function of ops: one value per sample, its gradient automatic.
inline keras::Tensor huber(const keras::Tensor& y_true, const keras::Tensor& y_pred) {
    using namespace keras;
    const float delta = 1.0f;
    Tensor error = ops::abs(ops::subtract(y_true, y_pred));
    Tensor quadratic = ops::multiply(ops::square(error), 0.5f);
    Tensor linear = ops::subtract(ops::multiply(error, delta), 0.5f * delta * delta);
    return ops::mean(ops::where(ops::less_equal(error, delta), quadratic, linear), -1);
}
// model.compile(optimizers::Adam(0.01), losses::LossFunctionWrapper(huber, "huber"));
