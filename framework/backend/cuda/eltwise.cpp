// Activations and element-wise helpers on the GPU: shape checks here, kernels in eltwise.cu.
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {
const float* in(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* out(Tensor& t) { return static_cast<float*>(t.raw()); }

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
    if (a.shape() != b.shape())
        value_error("{}: shapes {} and {} do not match", what, shape_str(a.shape()), shape_str(b.shape()));
}
}  // namespace

Tensor CudaBackend::activation(Activation a, const Tensor& x) {
    check_on_device(x, "activation input");
    if (a == Activation::linear) return x;
    make_current();
    Tensor y(x.shape(), DType::float32, device());
    if (a == Activation::softmax) {
        const int64_t cols = x.ndim() ? x.dim(-1) : 1;
        CUDA_CHECK(kernels::softmax_forward(in(x), out(y), cols ? x.numel() / cols : 0, cols, stream_));
    } else {
        CUDA_CHECK(kernels::activation_forward(a, in(x), out(y), x.numel(), stream_));
    }
    return y;
}

Tensor CudaBackend::activation_backward(Activation a, const Tensor& x, const Tensor& y, const Tensor& dy) {
    check_on_device(dy, "activation gradient");
    if (a == Activation::linear) return dy;
    check_on_device(x, "activation input");
    check_on_device(y, "activation output");
    check_same_shape(x, dy, "activation_backward");
    make_current();
    Tensor dx(x.shape(), DType::float32, device());
    if (a == Activation::softmax) {
        const int64_t cols = x.ndim() ? x.dim(-1) : 1;
        CUDA_CHECK(kernels::softmax_backward(in(y), in(dy), out(dx), cols ? x.numel() / cols : 0, cols, stream_));
    } else {
        CUDA_CHECK(kernels::activation_backward(a, in(x), in(y), in(dy), out(dx), x.numel(), stream_));
    }
    return dx;
}

Tensor CudaBackend::mean_over_steps(const Tensor& x) {
    check_on_device(x, "mean_over_steps input");
    if (x.ndim() != 3) value_error("mean_over_steps: expected (N, T, C), got {}", shape_str(x.shape()));
    make_current();
    const int64_t n = x.dim(0), t = x.dim(1), c = x.dim(2);
    Tensor y({n, c}, DType::float32, device());
    CUDA_CHECK(kernels::mean_over_steps(in(x), out(y), n, t, c, stream_));
    return y;
}

Tensor CudaBackend::mean_over_steps_backward(const Tensor& dy, int64_t steps) {
    check_on_device(dy, "mean_over_steps gradient");
    make_current();
    const int64_t n = dy.dim(0), c = dy.dim(1);
    Tensor dx({n, steps, c}, DType::float32, device());
    CUDA_CHECK(kernels::mean_over_steps_backward(in(dy), out(dx), n, steps, c, stream_));
    return dx;
}

Tensor CudaBackend::multiply(const Tensor& a, const Tensor& b) {
    check_on_device(a, "multiply operand");
    check_on_device(b, "multiply operand");
    check_same_shape(a, b, "multiply");
    make_current();
    Tensor z(a.shape(), DType::float32, device());
    CUDA_CHECK(kernels::multiply(in(a), in(b), out(z), a.numel(), stream_));
    return z;
}

Tensor CudaBackend::add(const Tensor& a, const Tensor& b) {
    check_on_device(a, "add operand");
    check_on_device(b, "add operand");
    check_same_shape(a, b, "add");
    make_current();
    Tensor z(a.shape(), DType::float32, device());
    CUDA_CHECK(kernels::add(in(a), in(b), out(z), a.numel(), stream_));
    return z;
}

void CudaBackend::scale_(Tensor& x, float factor) {
    check_on_device(x, "scale_ operand");
    make_current();
    CUDA_CHECK(kernels::scale(out(x), factor, x.numel(), stream_));
}

// The caller needs the value on the host (gradient clipping by norm): this waits for the stream.
double CudaBackend::sum_squares(const Tensor& x) {
    check_on_device(x, "sum_squares operand");
    make_current();
    Tensor result({1}, DType::int64, device());   // 8 bytes of device memory for one double
    CUDA_CHECK(kernels::sum_squares(in(x), x.numel(), static_cast<double*>(result.raw()), stream_));
    double value = 0.0;
    copy_to_host(&value, result.raw(), sizeof value);
    return value;
}

void CudaBackend::clip_(Tensor& x, float lo, float hi) {
    check_on_device(x, "clip_ operand");
    make_current();
    CUDA_CHECK(kernels::clip(out(x), lo, hi, x.numel(), stream_));
}

}  // namespace keras::backend
