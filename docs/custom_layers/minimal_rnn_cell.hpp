// Keras's MinimalRNNCell example: h_t = tanh(x_t W + h_{t-1} U). layers::RNN runs it over the steps
// (masks, go_backwards, return_sequences / return_state, stateful) and differentiates it.
class MinimalRNNCell : public keras::layers::AbstractRNNCell {
public:
    explicit MinimalRNNCell(int64_t units, std::string name = "")
        : AbstractRNNCell("MinimalRNNCell", name), units(units) {}

    std::vector<int64_t> state_size() const override { return {units}; }

    void build(const keras::Shape& input_shape) override {
        kernel = add_weight("kernel", {input_shape.back(), units}, "glorot_uniform");
        recurrent_kernel = add_weight("recurrent_kernel", {units, units}, "orthogonal");
    }

    keras::layers::StepOutput step(const keras::Tensor& x, const std::vector<keras::Tensor>& states,
                                   bool training) override {
        (void)training;
        using namespace keras;
        Tensor h = ops::tanh(ops::add(ops::matmul(x, kernel), ops::matmul(states[0], recurrent_kernel)));
        return {h, {h}};
    }

    int64_t units;
    keras::VariablePtr kernel, recurrent_kernel;
};
// auto rnn = keras::share(keras::layers::RNN(std::make_shared<MinimalRNNCell>(32), {.return_sequences = true}));
