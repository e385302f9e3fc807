// Keras's dot-product Attention([query, value]) with a learned scale, written with ops: a layer of two
// inputs, query (batch, Tq, dim) and value (batch, Tv, dim) -> (batch, Tq, dim). The backward pass
// gives each input its own gradient.
class ScaledDotAttention : public keras::Layer {
public:
    explicit ScaledDotAttention(std::string name = "") : Layer("ScaledDotAttention", name) {}

    void build(const std::vector<keras::Shape>& input_shapes) override {
        (void)input_shapes;
        scale = add_weight("scale", {1}, "ones");
    }

    keras::Tensor call(const std::vector<keras::Tensor>& inputs) override {
        using namespace keras;
        const Tensor& query = inputs.at(0);
        const Tensor& value = inputs.at(1);
        Tensor scores = ops::multiply(ops::matmul(query, ops::transpose(value, {0, 2, 1})), scale);
        return ops::matmul(ops::softmax(scores, -1), value);   // (batch, Tq, dim)
    }

    keras::VariablePtr scale;
};
