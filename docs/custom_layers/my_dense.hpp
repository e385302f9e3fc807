// A Dense-like layer written with ops: build() creates the weights, call() computes; the backward
// pass is automatic.
class MyDense : public keras::Layer {
public:
    explicit MyDense(int64_t units, std::string activation = "linear", std::string name = "")
        : Layer("MyDense", name), units(units), activation(std::move(activation)) {}

    void build(const keras::Shape& input_shape) override {
        kernel = add_weight("kernel", {input_shape.back(), units}, "glorot_uniform");
        bias = add_weight("bias", {units}, "zeros");
    }

    keras::Tensor call(const keras::Tensor& inputs) override {
        keras::Tensor y = keras::ops::add(keras::ops::matmul(inputs, kernel), bias);
        return activation == "relu" ? keras::ops::relu(y) : y;
    }

    int64_t units;
    std::string activation;
    keras::VariablePtr kernel, bias;
};
