// 1-D windows: Keras's padding rule, and Backend's default convolution and pooling, composed of the
// backend's own generic ops (take gathers each output step's window, then a matmul or a reduction),
// so they run on whatever device the backend is for. The CPU backend overrides them with oneDNN's
// primitives (onednn/conv_pool.cpp); these stay the reference they are tested against.
#include <algorithm>
#include <limits>

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

Window1D Window1D::for_padding(int64_t size, int64_t stride, int64_t dilation, const std::string& padding,
                               int64_t steps) {
    Window1D w{size, stride, dilation, 0, 0};
    if (padding == "causal") {
        w.pad_before = w.span() - 1;
    } else if (padding == "same") {
        const int64_t out = (steps + stride - 1) / stride;
        const int64_t total = std::max<int64_t>((out - 1) * stride + w.span() - steps, 0);
        w.pad_before = total / 2;
        w.pad_after = total - w.pad_before;
    } else if (padding != "valid") {
        value_error("padding must be one of 'valid', 'same' or 'causal'; received '{}'", padding);
    }
    return w;
}

namespace {

// (To, size) int64 indices into the steps axis for each output step's taps; a position in the padding
// is `steps`, the row gather() appends.
Tensor window_indices(const Window1D& w, int64_t steps, bool& padded) {
    const int64_t out = w.out_steps(steps);
    Tensor indices({out, w.size}, DType::int64);
    int64_t* p = indices.data<int64_t>();
    padded = false;
    for (int64_t o = 0; o < out; ++o)
        for (int64_t j = 0; j < w.size; ++j) {
            const int64_t t = o * w.stride + j * w.dilation - w.pad_before;
            const bool inside = t >= 0 && t < steps;
            padded = padded || !inside;
            p[o * w.size + j] = inside ? t : steps;
        }
    return indices;
}

// Each output step's window of x (N, T, C): (N, To, size, C), padding filled with pad_value.
struct Windows {
    Tensor indices;   // window_indices, on the backend's device
    bool padded = false;
    Tensor gathered;
};

Windows gather(Backend& b, const Window1D& w, const Tensor& x, float pad_value) {
    Windows out;
    out.indices = window_indices(w, x.dim(1), out.padded).to(b.device());
    Tensor source = x;
    if (out.padded) source = b.concatenate({x, Tensor::full({x.dim(0), 1, x.dim(2)}, pad_value, b.device())}, 1);
    out.gathered = b.take(source, out.indices, 1);
    return out;
}

// The adjoint of gather: d_windows (N, To, size, C) summed back onto (N, T, C).
Tensor scatter(Backend& b, const Windows& windows, const Tensor& d_windows, const Shape& x_shape) {
    const int64_t padded_steps = x_shape[1] + (windows.padded ? 1 : 0);
    const Tensor dx = b.take_backward(d_windows, windows.indices, 1, {x_shape[0], padded_steps, x_shape[2]});
    return windows.padded ? b.slice(dx, {0, 0, 0}, x_shape) : dx;
}

// (1, To, 1): how many of each output step's taps are real steps (the average's divisor).
Tensor real_taps(const Window1D& w, int64_t steps, Device device) {
    bool padded = false;
    const Tensor indices = window_indices(w, steps, padded);
    const int64_t* p = indices.data<int64_t>();
    Tensor counts({1, indices.dim(0), 1}, DType::float32);
    for (int64_t o = 0; o < indices.dim(0); ++o)
        counts.data<float>()[o] = static_cast<float>(std::count_if(p + o * w.size, p + (o + 1) * w.size,
                                                                   [steps](int64_t t) { return t < steps; }));
    return counts.to(device);
}

// Group g's block of a (rows, ..., width) tensor along its last axis, the whole tensor for one group.
Tensor group_part(Backend& b, const Tensor& x, int64_t groups, int64_t g) {
    if (groups == 1) return x;
    Shape shape = x.shape();
    const int64_t width = shape.back() / groups;
    std::vector<int64_t> start(shape.size(), 0);
    start.back() = g * width;
    shape.back() = width;
    return b.slice(x, start, shape);
}

Tensor join_groups(Backend& b, const std::vector<Tensor>& parts) {
    return parts.size() == 1 ? parts[0] : b.concatenate(parts, parts[0].ndim() - 1);
}

}  // namespace

Tensor Backend::conv1d(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel) {
    const Windows windows = gather(*this, w, x, 0.0f);   // (N, To, K, C)
    const int64_t rows = windows.gathered.dim(0) * windows.gathered.dim(1), K = w.size;
    const int64_t group_channels = kernel.dim(1), group_filters = kernel.dim(2) / groups;
    // Each group: its channels' windows flattened (rows, K * Cg) times its filters' kernel flattened
    // the same way (K * Cg, Fg).
    std::vector<Tensor> parts;
    for (int64_t g = 0; g < groups; ++g) {
        const Tensor xg = group_part(*this, windows.gathered, groups, g).reshape({rows, K * group_channels});
        const Tensor kg = group_part(*this, kernel, groups, g).reshape({K * group_channels, group_filters});
        parts.push_back(matmul(xg, kg));
    }
    return join_groups(*this, parts).reshape({x.dim(0), windows.gathered.dim(1), kernel.dim(2)});
}

void Backend::conv1d_backward(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel,
                              const Tensor& dy, Tensor& dx, Tensor& dkernel) {
    const Windows windows = gather(*this, w, x, 0.0f);
    const int64_t N = x.dim(0), out = windows.gathered.dim(1), rows = N * out, K = w.size;
    const int64_t group_channels = kernel.dim(1), group_filters = kernel.dim(2) / groups;
    const Tensor dy_rows = dy.reshape({rows, kernel.dim(2)});
    std::vector<Tensor> d_windows, d_kernels;
    for (int64_t g = 0; g < groups; ++g) {
        const Tensor xg = group_part(*this, windows.gathered, groups, g).reshape({rows, K * group_channels});
        const Tensor kg = group_part(*this, kernel, groups, g).reshape({K * group_channels, group_filters});
        const Tensor dyg = group_part(*this, dy_rows, groups, g);
        d_windows.push_back(matmul(dyg, transpose(kg, {1, 0})).reshape({N, out, K, group_channels}));
        d_kernels.push_back(matmul(transpose(xg, {1, 0}), dyg).reshape({K, group_channels, group_filters}));
    }
    dx = scatter(*this, windows, join_groups(*this, d_windows), x.shape());
    dkernel = join_groups(*this, d_kernels);
}

PoolForward Backend::pool1d(PoolKind kind, const Window1D& w, const Tensor& x, bool /*training*/) {
    const bool max = kind == PoolKind::max;
    const Windows windows = gather(*this, w, x, max ? std::numeric_limits<float>::lowest() : 0.0f);
    const Tensor reduced = reduce(max ? ReduceOp::max : ReduceOp::sum, windows.gathered, {2});
    Tensor y = reduced.reshape({x.dim(0), windows.gathered.dim(1), x.dim(2)});
    if (!max) y = binary(BinaryOp::divide, y, real_taps(w, x.dim(1), device()));
    return {y, {}};
}

Tensor Backend::pool1d_backward(PoolKind kind, const Window1D& w, const Tensor& x, const PoolForward& fwd,
                                const Tensor& dy) {
    const int64_t N = x.dim(0), C = x.dim(2), out = fwd.y.dim(1);
    if (kind == PoolKind::average) {
        // Each real tap gets dy / count; padding taps get it too, and scatter() drops them.
        Windows windows;
        windows.indices = window_indices(w, x.dim(1), windows.padded).to(device());
        const Tensor share = binary(BinaryOp::divide, dy, real_taps(w, x.dim(1), device())).reshape({N, out, 1, C});
        const Tensor d_windows = binary(BinaryOp::add, Tensor::zeros({N, out, w.size, C}, DType::float32, device()), share);
        return scatter(*this, windows, d_windows, x.shape());
    }
    // Max: tap j takes the gradient where it equals the maximum and no earlier tap did.
    const Windows windows = gather(*this, w, x, std::numeric_limits<float>::lowest());
    const Tensor y = fwd.y.reshape({N, out, 1, C});
    Tensor taken = Tensor::zeros({N, out, 1, C}, DType::float32, device());
    std::vector<Tensor> d_taps;
    for (int64_t j = 0; j < w.size; ++j) {
        const Tensor tap = slice(windows.gathered, {0, 0, j, 0}, {N, out, 1, C});
        const Tensor first = binary(BinaryOp::multiply, binary(BinaryOp::equal, tap, y),
                                    binary(BinaryOp::subtract, Tensor::full({1}, 1.0f, device()), taken));
        taken = binary(BinaryOp::add, taken, first);
        d_taps.push_back(binary(BinaryOp::multiply, first, dy.reshape({N, out, 1, C})));
    }
    return scatter(*this, windows, concatenate(d_taps, 2), x.shape());
}

}  // namespace keras::backend
