// Attention pooling over an RNN's sequence output (batch, steps, features) -> (batch, features):
// each step gets a score v . tanh(x_t W + b), the scores a softmax over the steps, and the output
// is the scores' weighted sum of the steps.
class AttentionPooling : public keras::Layer {
public:
    explicit AttentionPooling(int64_t attention_units, std::string name = "")
        : Layer("AttentionPooling", name), attention_units(attention_units) {}

    void build(const keras::Shape& input_shape) override {
        const int64_t features = input_shape.back();
        w = add_weight("w", {features, attention_units}, "glorot_uniform");
        b = add_weight("b", {attention_units}, "zeros");
        v = add_weight("v", {attention_units, 1}, "glorot_uniform");
    }

    keras::Tensor call(const keras::Tensor& x) override {
        using namespace keras;
        Tensor hidden = ops::tanh(ops::add(ops::matmul(x, w), b));   // (batch, steps, units)
        Tensor scores = ops::matmul(hidden, v);                       // (batch, steps, 1)
        Tensor weights = ops::softmax(scores, 1);                     // over the steps
        return ops::sum(ops::multiply(x, weights), 1);                // (batch, features)
    }

    int64_t attention_units;
    keras::VariablePtr w, b, v;
};
