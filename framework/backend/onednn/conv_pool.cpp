// 1-D convolution and pooling on oneDNN's convolution and pooling primitives. Activations stay in
// Keras's channels-last layout (oneDNN's nwc); the kernel is handed over in the layout the primitive
// picked (a reorder of K * C * F floats, cheap next to the convolution), and its gradient comes back
// the same way. Primitive descriptors are made per call: oneDNN's own primitive cache keeps the
// compiled primitives.
#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::algorithm;
using dnnl::memory;

namespace {

constexpr auto f32 = memory::data_type::f32;

// (N, T, C) channels last, as oneDNN's (N, C, T) dims in nwc.
memory::desc steps_desc(int64_t n, int64_t steps, int64_t channels) {
    return memory::desc({n, channels, steps}, f32, memory::format_tag::nwc);
}

// Keras's kernel (K, C / groups, F), seen as oneDNN's (F, Cg, K) weights or, with groups,
// (G, F / G, Cg, K): element [k][c][g * F/G + o] sits at k * Cg * F + c * F + g * F/G + o. With
// `any`, the same dims in the layout the primitive picks.
memory::desc kernel_desc(const Tensor& kernel, int64_t groups, bool any) {
    const int64_t K = kernel.dim(0), Cg = kernel.dim(1), F = kernel.dim(2);
    const memory::dims dims = groups == 1 ? memory::dims{F, Cg, K} : memory::dims{groups, F / groups, Cg, K};
    if (any) return memory::desc(dims, f32, memory::format_tag::any);
    return memory::desc(dims, f32, groups == 1 ? memory::dims{1, F, Cg * F} : memory::dims{F / groups, 1, F, Cg * F});
}

// A convolution's descriptors and geometry (oneDNN counts dilation from 0).
struct ConvGeometry {
    memory::desc src, dst, kernel, kernel_any;
    memory::dims strides, dilates, pad_l, pad_r;
    ConvGeometry(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel)
        : src(steps_desc(x.dim(0), x.dim(1), x.dim(2))),
          dst(steps_desc(x.dim(0), w.out_steps(x.dim(1)), kernel.dim(2))),
          kernel(kernel_desc(kernel, groups, false)),
          kernel_any(kernel_desc(kernel, groups, true)),
          strides{w.stride},
          dilates{w.dilation - 1},
          pad_l{w.pad_before},
          pad_r{w.pad_after} {}
};

dnnl::convolution_forward::primitive_desc forward_pd(const dnnl::engine& engine, const ConvGeometry& g) {
    return dnnl_compat::make_pd<dnnl::convolution_forward>(
        engine, OneDnnBackend::user_scratchpad(), dnnl::prop_kind::forward_training, algorithm::convolution_direct,
        g.src, g.kernel_any, g.dst, g.strides, g.dilates, g.pad_l, g.pad_r);
}

}  // namespace

// `from` in the layout `to_desc` asks for: `from` itself when they agree, else a reordered copy.
static memory in_layout(OneDnnBackend& b, const memory& from, const memory::desc& to_desc) {
    if (from.get_desc() == to_desc) return from;
    memory to(to_desc, b.engine());
    b.reorder(from, to);
    return to;
}

Tensor OneDnnBackend::conv1d(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel) {
    if (!all_f32({&x, &kernel})) return Backend::conv1d(w, groups, x, kernel);
    const ConvGeometry g(w, groups, x, kernel);
    const auto pd = forward_pd(engine_, g);
    Tensor y({x.dim(0), w.out_steps(x.dim(1)), kernel.dim(2)}, DType::float32);
    run(dnnl::convolution_forward(pd),
        {{DNNL_ARG_SRC, wrap(engine_, g.src, x)},
         {DNNL_ARG_WEIGHTS, in_layout(*this, wrap(engine_, g.kernel, kernel), pd.weights_desc())},
         {DNNL_ARG_DST, wrap(engine_, g.dst, y)}});
    return y;
}

void OneDnnBackend::conv1d_backward(const Window1D& w, int64_t groups, const Tensor& x, const Tensor& kernel,
                                    const Tensor& dy, Tensor& dx, Tensor& dkernel) {
    if (!all_f32({&x, &kernel, &dy})) return Backend::conv1d_backward(w, groups, x, kernel, dy, dx, dkernel);
    const ConvGeometry g(w, groups, x, kernel);
    const auto hint = forward_pd(engine_, g);
    const auto attr = user_scratchpad();

    const auto data_pd = dnnl_compat::make_backward_pd<dnnl::convolution_backward_data>(
        engine_, attr, hint, algorithm::convolution_direct, g.src, g.kernel_any, g.dst, g.strides, g.dilates, g.pad_l,
        g.pad_r);
    dx = Tensor(x.shape(), DType::float32);
    run(dnnl::convolution_backward_data(data_pd),
        {{DNNL_ARG_DIFF_DST, wrap(engine_, g.dst, dy)},
         {DNNL_ARG_WEIGHTS, in_layout(*this, wrap(engine_, g.kernel, kernel), data_pd.weights_desc())},
         {DNNL_ARG_DIFF_SRC, wrap(engine_, g.src, dx)}});

    const auto weights_pd = dnnl_compat::make_backward_pd<dnnl::convolution_backward_weights>(
        engine_, attr, hint, algorithm::convolution_direct, g.src, g.kernel_any, g.dst, g.strides, g.dilates, g.pad_l,
        g.pad_r);
    dkernel = Tensor(kernel.shape(), DType::float32);
    const memory keras_dkernel = wrap(engine_, g.kernel, dkernel);
    const bool same_layout = weights_pd.diff_weights_desc() == g.kernel;
    const memory picked = same_layout ? keras_dkernel : memory(weights_pd.diff_weights_desc(), engine_);
    run(dnnl::convolution_backward_weights(weights_pd),
        {{DNNL_ARG_SRC, wrap(engine_, g.src, x)},
         {DNNL_ARG_DIFF_DST, wrap(engine_, g.dst, dy)},
         {DNNL_ARG_DIFF_WEIGHTS, picked}});
    if (!same_layout) reorder(picked, keras_dkernel);
}

namespace {
algorithm pool_algorithm(PoolKind kind) {
    return kind == PoolKind::max ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
}

dnnl::pooling_forward::primitive_desc pool_pd(const dnnl::engine& engine, PoolKind kind, const Window1D& w,
                                              const Tensor& x, dnnl::prop_kind prop) {
    return dnnl_compat::pooling_pd(engine, OneDnnBackend::user_scratchpad(), prop, pool_algorithm(kind),
                                   steps_desc(x.dim(0), x.dim(1), x.dim(2)),
                                   steps_desc(x.dim(0), w.out_steps(x.dim(1)), x.dim(2)), {w.stride}, {w.size},
                                   {w.pad_before}, {w.pad_after});
}
}  // namespace

// Max pooling in training keeps oneDNN's workspace (which tap won each window) for the backward.
PoolForward OneDnnBackend::pool1d(PoolKind kind, const Window1D& w, const Tensor& x, bool training) {
    if (!all_f32({&x}) || w.dilation != 1) return Backend::pool1d(kind, w, x, training);
    const bool workspace = training && kind == PoolKind::max;
    const auto pd = pool_pd(engine_, kind, w, x,
                            workspace ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference);
    PoolForward out{Tensor({x.dim(0), w.out_steps(x.dim(1)), x.dim(2)}, DType::float32), {}};
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine_, pd.src_desc(), x)},
                                         {DNNL_ARG_DST, wrap(engine_, pd.dst_desc(), out.y)}};
    if (workspace) {
        memory ws(pd.workspace_desc(), engine_);
        args.emplace(DNNL_ARG_WORKSPACE, ws);
        out.saved = ws;
    }
    run(dnnl::pooling_forward(pd), std::move(args));
    return out;
}

Tensor OneDnnBackend::pool1d_backward(PoolKind kind, const Window1D& w, const Tensor& x, const PoolForward& fwd,
                                      const Tensor& dy) {
    const memory* ws = std::any_cast<memory>(&fwd.saved);
    if (!all_f32({&x, &dy}) || w.dilation != 1 || (kind == PoolKind::max && !ws))
        return Backend::pool1d_backward(kind, w, x, fwd, dy);
    const auto hint = pool_pd(engine_, kind, w, x, dnnl::prop_kind::forward_training);
    const auto pd = dnnl_compat::pooling_backward_pd(engine_, user_scratchpad(), pool_algorithm(kind), hint.src_desc(),
                                                     hint.dst_desc(), {w.stride}, {w.size}, {w.pad_before},
                                                     {w.pad_after}, hint);
    Tensor dx(x.shape(), DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, wrap(engine_, pd.diff_dst_desc(), dy)},
                                         {DNNL_ARG_DIFF_SRC, wrap(engine_, pd.diff_src_desc(), dx)}};
    if (ws) args.emplace(DNNL_ARG_WORKSPACE, *ws);
    run(dnnl::pooling_backward(pd), std::move(args));
    return dx;
}

}  // namespace keras::backend
