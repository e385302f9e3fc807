// Element-wise ops and their gradients.
#include <cmath>

#include "keras/errors.hpp"
#include "ops_internal.hpp"

namespace keras::ops {

using backend::BinaryOp;
using backend::UnaryOp;
using detail::backend_of;
using detail::sum_to;

namespace {
// Both operands on one device as tensors: a number follows the other operand's device.
std::pair<Tensor, Tensor> operands(const std::string& op, const Operand& a, const Operand& b) {
    const Device d = detail::common_device(op, {&a, &b});
    Tensor ta = a.tensor, tb = b.tensor;
    if (a.scalar) ta = ta.to(d);
    if (b.scalar) tb = tb.to(d);
    detail::check_float(op, ta);
    detail::check_float(op, tb);
    return {ta, tb};
}

Tensor raw_binary(BinaryOp op, const Tensor& a, const Tensor& b) { return backend_of(a).binary(op, a, b); }
Tensor raw_unary(UnaryOp op, const Tensor& x) { return backend_of(x).unary(op, x); }

// An element-wise binary op recorded with `grads(dy, a, b, y) -> {da, db}` (before undoing broadcasts).
template <typename Grads>
Tensor binary_op(const std::string& name, BinaryOp op, const Operand& x1, const Operand& x2, Grads grads) {
    auto [a, b] = operands(name, x1, x2);
    Tensor y = raw_binary(op, a, b);
    return autodiff::record(name, y, {a, b}, [a = a.detached(), b = b.detached(), y = y.detached(), grads](const Tensor& dy) {
        auto [da, db] = grads(dy, a, b, y);
        return std::vector<Tensor>{da.defined() ? sum_to(da, a.shape()) : da, db.defined() ? sum_to(db, b.shape()) : db};
    });
}

Tensor comparison(const std::string& name, BinaryOp op, const Operand& x1, const Operand& x2) {
    auto [a, b] = operands(name, x1, x2);
    return raw_binary(op, a, b);   // a step function: no gradient, not recorded
}

Tensor as_tensor(const std::string& name, const Operand& x) {
    detail::check_float(name, x.tensor);
    return x.tensor;
}

// An element-wise unary op recorded with `grad(dy, x, y) -> dx`.
template <typename Grad>
Tensor unary_op(const std::string& name, UnaryOp op, const Operand& operand, Grad grad) {
    Tensor x = as_tensor(name, operand);
    Tensor y = raw_unary(op, x);
    return autodiff::record(name, y, {x}, [x = x.detached(), y = y.detached(), grad](const Tensor& dy) {
        return std::vector<Tensor>{grad(dy, x, y)};
    });
}

using Pair = std::pair<Tensor, Tensor>;
}  // namespace

// ---- Creation

Tensor convert_to_tensor(const Operand& x) { return x.tensor; }
Tensor zeros(const Shape& shape, Device device) { return Tensor::zeros(shape, DType::float32, device); }
Tensor ones(const Shape& shape, Device device) { return Tensor::full(shape, 1.0f, device); }
Tensor zeros_like(const Tensor& x) { return Tensor::zeros(x.shape(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return Tensor::full(x.shape(), 1.0f, x.device()); }
Tensor stop_gradient(const Tensor& x) { return x.detached(); }

// Only float32 carries gradients, so a cast that changes the dtype is the end of the gradient's path.
Tensor cast(const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : x.astype(dtype); }

// ---- Binary

Tensor add(const Operand& x1, const Operand& x2) {
    return binary_op("add", BinaryOp::add, x1, x2, [](const Tensor& dy, const Tensor&, const Tensor&, const Tensor&) {
        return Pair{dy, dy};
    });
}

Tensor subtract(const Operand& x1, const Operand& x2) {
    return binary_op("subtract", BinaryOp::subtract, x1, x2,
                     [](const Tensor& dy, const Tensor&, const Tensor&, const Tensor&) {
                         return Pair{dy, raw_unary(UnaryOp::negative, dy)};
                     });
}

Tensor multiply(const Operand& x1, const Operand& x2) {
    return binary_op("multiply", BinaryOp::multiply, x1, x2,
                     [](const Tensor& dy, const Tensor& a, const Tensor& b, const Tensor&) {
                         return Pair{raw_binary(BinaryOp::multiply, dy, b), raw_binary(BinaryOp::multiply, dy, a)};
                     });
}

Tensor divide(const Operand& x1, const Operand& x2) {
    return binary_op("divide", BinaryOp::divide, x1, x2, [](const Tensor& dy, const Tensor&, const Tensor& b, const Tensor& y) {
        // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b
        const Tensor da = raw_binary(BinaryOp::divide, dy, b);
        return Pair{da, raw_unary(UnaryOp::negative, raw_binary(BinaryOp::multiply, da, y))};
    });
}

Tensor maximum(const Operand& x1, const Operand& x2) {
    // Ties send the gradient to x1, as TensorFlow does.
    return binary_op("maximum", BinaryOp::maximum, x1, x2, [](const Tensor& dy, const Tensor& a, const Tensor& b, const Tensor&) {
        const Tensor to_a = raw_binary(BinaryOp::greater_equal, a, b);
        return Pair{raw_binary(BinaryOp::multiply, dy, to_a),
                    raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::less, a, b))};
    });
}

Tensor minimum(const Operand& x1, const Operand& x2) {
    return binary_op("minimum", BinaryOp::minimum, x1, x2, [](const Tensor& dy, const Tensor& a, const Tensor& b, const Tensor&) {
        const Tensor to_a = raw_binary(BinaryOp::less_equal, a, b);
        return Pair{raw_binary(BinaryOp::multiply, dy, to_a),
                    raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::greater, a, b))};
    });
}

Tensor power(const Operand& x1, const Operand& x2) {
    return binary_op("power", BinaryOp::power, x1, x2, [](const Tensor& dy, const Tensor& a, const Tensor& b, const Tensor& y) {
        // d/da = b * a^(b-1); d/db = a^b * log(a), taken as 0 where a <= 0 (TensorFlow's choice).
        const Tensor b_minus_1 = raw_binary(BinaryOp::subtract, b, Tensor::full({}, 1.0f, b.device()));
        const Tensor da = raw_binary(BinaryOp::multiply, dy,
                                     raw_binary(BinaryOp::multiply, b, raw_binary(BinaryOp::power, a, b_minus_1)));
        const Tensor positive = raw_binary(BinaryOp::greater, a, Tensor::full({}, 0.0f, a.device()));
        const Tensor safe_a = backend_of(a).where(positive, a, Tensor::full({}, 1.0f, a.device()));
        const Tensor db = raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::multiply, y, raw_unary(UnaryOp::log, safe_a)));
        return Pair{da, backend_of(db).where(positive, db, Tensor::full({}, 0.0f, db.device()))};
    });
}

Tensor greater(const Operand& x1, const Operand& x2) { return comparison("greater", BinaryOp::greater, x1, x2); }
Tensor greater_equal(const Operand& x1, const Operand& x2) {
    return comparison("greater_equal", BinaryOp::greater_equal, x1, x2);
}
Tensor less(const Operand& x1, const Operand& x2) { return comparison("less", BinaryOp::less, x1, x2); }
Tensor less_equal(const Operand& x1, const Operand& x2) { return comparison("less_equal", BinaryOp::less_equal, x1, x2); }
Tensor equal(const Operand& x1, const Operand& x2) { return comparison("equal", BinaryOp::equal, x1, x2); }
Tensor not_equal(const Operand& x1, const Operand& x2) { return comparison("not_equal", BinaryOp::not_equal, x1, x2); }

// ---- Unary

Tensor negative(const Operand& x) {
    return unary_op("negative", UnaryOp::negative, x,
                    [](const Tensor& dy, const Tensor&, const Tensor&) { return raw_unary(UnaryOp::negative, dy); });
}

Tensor exp(const Operand& x) {
    return unary_op("exp", UnaryOp::exp, x,
                    [](const Tensor& dy, const Tensor&, const Tensor& y) { return raw_binary(BinaryOp::multiply, dy, y); });
}

Tensor log(const Operand& x) {
    return unary_op("log", UnaryOp::log, x,
                    [](const Tensor& dy, const Tensor& x, const Tensor&) { return raw_binary(BinaryOp::divide, dy, x); });
}

Tensor tanh(const Operand& x) {
    return unary_op("tanh", UnaryOp::tanh, x, [](const Tensor& dy, const Tensor&, const Tensor& y) {
        const Tensor one = Tensor::full({}, 1.0f, y.device());
        return raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::subtract, one, raw_unary(UnaryOp::square, y)));
    });
}

Tensor sigmoid(const Operand& x) {
    return unary_op("sigmoid", UnaryOp::sigmoid, x, [](const Tensor& dy, const Tensor&, const Tensor& y) {
        const Tensor one = Tensor::full({}, 1.0f, y.device());
        return raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::multiply, y, raw_binary(BinaryOp::subtract, one, y)));
    });
}

Tensor relu(const Operand& x) {
    return unary_op("relu", UnaryOp::relu, x, [](const Tensor& dy, const Tensor& x, const Tensor&) {
        return raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::greater, x, Tensor::full({}, 0.0f, x.device())));
    });
}

Tensor sqrt(const Operand& x) {
    return unary_op("sqrt", UnaryOp::sqrt, x, [](const Tensor& dy, const Tensor&, const Tensor& y) {
        return raw_binary(BinaryOp::divide, dy, raw_binary(BinaryOp::multiply, y, Tensor::full({}, 2.0f, y.device())));
    });
}

Tensor square(const Operand& x) {
    return unary_op("square", UnaryOp::square, x, [](const Tensor& dy, const Tensor& x, const Tensor&) {
        return raw_binary(BinaryOp::multiply, dy, raw_binary(BinaryOp::multiply, x, Tensor::full({}, 2.0f, x.device())));
    });
}

Tensor abs(const Operand& x) {
    return unary_op("abs", UnaryOp::abs, x, [](const Tensor& dy, const Tensor& x, const Tensor&) {
        return raw_binary(BinaryOp::multiply, dy, raw_unary(UnaryOp::sign, x));
    });
}

Tensor sign(const Operand& x) { return raw_unary(UnaryOp::sign, as_tensor("sign", x)); }   // no gradient

Tensor reciprocal(const Operand& x) {
    return unary_op("reciprocal", UnaryOp::reciprocal, x, [](const Tensor& dy, const Tensor&, const Tensor& y) {
        return raw_unary(UnaryOp::negative, raw_binary(BinaryOp::multiply, dy, raw_unary(UnaryOp::square, y)));
    });
}

Tensor softplus(const Operand& x) {
    // log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): no overflow for large |x|.
    const Tensor t = as_tensor("softplus", x);
    return add(relu(t), log(add(exp(negative(abs(t))), 1.0f)));
}

Tensor clip(const Operand& operand, float x_min, float x_max) {
    Tensor x = as_tensor("clip", operand);
    Tensor y = backend_of(x).clip(x, x_min, x_max);
    return autodiff::record("clip", y, {x}, [x = x.detached(), x_min, x_max](const Tensor& dy) {
        // The gradient passes where x is inside [x_min, x_max].
        const Tensor inside = raw_binary(BinaryOp::multiply,
                                         raw_binary(BinaryOp::greater_equal, x, Tensor::full({}, x_min, x.device())),
                                         raw_binary(BinaryOp::less_equal, x, Tensor::full({}, x_max, x.device())));
        return std::vector<Tensor>{raw_binary(BinaryOp::multiply, dy, inside)};
    });
}

Tensor where(const Operand& condition, const Operand& x1, const Operand& x2) {
    const Device d = detail::common_device("where", {&condition, &x1, &x2});
    Tensor c = condition.tensor.to(d), a = x1.tensor.to(d), b = x2.tensor.to(d);
    detail::check_float("where", c);
    detail::check_float("where", a);
    detail::check_float("where", b);
    Tensor y = backend_of(c).where(c, a, b);
    return autodiff::record("where", y, {c, a, b}, [c = c.detached(), as = a.shape(), bs = b.shape()](const Tensor& dy) {
        const Tensor zero = Tensor::full({}, 0.0f, dy.device());
        return std::vector<Tensor>{Tensor{}, sum_to(backend_of(dy).where(c, dy, zero), as),
                                   sum_to(backend_of(dy).where(c, zero, dy), bs)};
    });
}

}  // namespace keras::ops

namespace keras {
Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return ops::subtract(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return ops::multiply(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return ops::divide(a, b); }
Tensor operator+(const Tensor& a, float b) { return ops::add(a, b); }
Tensor operator-(const Tensor& a, float b) { return ops::subtract(a, b); }
Tensor operator*(const Tensor& a, float b) { return ops::multiply(a, b); }
Tensor operator/(const Tensor& a, float b) { return ops::divide(a, b); }
Tensor operator+(float a, const Tensor& b) { return ops::add(a, b); }
Tensor operator-(float a, const Tensor& b) { return ops::subtract(a, b); }
Tensor operator*(float a, const Tensor& b) { return ops::multiply(a, b); }
Tensor operator/(float a, const Tensor& b) { return ops::divide(a, b); }
Tensor operator-(const Tensor& a) { return ops::negative(a); }
}  // namespace keras
