// Layer and batch normalization on oneDNN's layer_normalization and batch_normalization primitives:
// x as rows (R, C), normalized along each row (layer) or down each column (batch). Training keeps the
// means and variances, which the backward primitives read.
#include <utility>

#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::memory;

namespace {

using Statistics = std::pair<Tensor, Tensor>;   // the means and variances: (R) per row, or (C) per column

struct NormGeometry {
    memory::desc data, stats, params;   // params: gamma, beta and their gradients, (C)
    dnnl::normalization_flags flags = dnnl::normalization_flags::none;
    NormGeometry(const Tensor& x, const Tensor& gamma, const Tensor& beta, bool per_row) {
        const int64_t width = x.dim(x.ndim() - 1);
        // Batch normalization's rows as (R, C, 1, 1) channels last, where oneDNN runs its jit kernel:
        // for a 2-D (R, C) it picks a plain C++ one, 12x slower at (25600, 128) (bench_fused_ops).
        const int64_t rows = x.numel() / width;
        data = per_row ? memory::desc({rows, width}, memory::data_type::f32, memory::format_tag::ab)
                       : memory::desc({rows, width, 1, 1}, memory::data_type::f32, memory::format_tag::nhwc);
        stats = memory::desc({per_row ? rows : width}, memory::data_type::f32, memory::format_tag::a);
        params = memory::desc({width}, memory::data_type::f32, memory::format_tag::a);
        if (gamma.defined()) flags = flags | dnnl::normalization_flags::use_scale;
        if (beta.defined()) flags = flags | dnnl::normalization_flags::use_shift;
    }
};

// A backward's arguments: x, dy and the forward's statistics in; dx out, and dgamma / dbeta where
// gamma / beta are defined (C each). With use_shift, oneDNN's backward checks that beta is among its
// inputs (it never reads it), except batch normalization in 3.x, which refuses it as one input too
// many: takes_shift says which.
std::unordered_map<int, memory> backward_args(const dnnl::engine& engine, const NormGeometry& g, const Tensor& x,
                                              const Tensor& dy, const Statistics& stats, const Tensor& gamma,
                                              const Tensor& beta, bool takes_shift, Tensor& dx, Tensor& dgamma,
                                              Tensor& dbeta) {
    dx = Tensor(x.shape(), DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine, g.data, x)},
                                         {DNNL_ARG_DIFF_DST, wrap(engine, g.data, dy)},
                                         {DNNL_ARG_MEAN, wrap(engine, g.stats, stats.first)},
                                         {DNNL_ARG_VARIANCE, wrap(engine, g.stats, stats.second)},
                                         {DNNL_ARG_DIFF_SRC, wrap(engine, g.data, dx)}};
    const int64_t width = x.dim(x.ndim() - 1);
    if (gamma.defined()) {
        dgamma = Tensor({width}, DType::float32);
        args.emplace(DNNL_ARG_SCALE, wrap(engine, g.params, gamma));
        args.emplace(DNNL_ARG_DIFF_SCALE, wrap(engine, g.params, dgamma));
    }
    if (beta.defined()) {
        dbeta = Tensor({width}, DType::float32);
        if (takes_shift) args.emplace(DNNL_ARG_SHIFT, wrap(engine, g.params, beta));
        args.emplace(DNNL_ARG_DIFF_SHIFT, wrap(engine, g.params, dbeta));
    }
    return args;
}

}  // namespace

NormForward OneDnnBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                      bool training) {
    if (!all_f32({&x})) return Backend::layer_norm(x, gamma, beta, epsilon, training);
    const NormGeometry g(x, gamma, beta, true);
    const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const auto pd = dnnl_compat::layer_norm_pd(engine_, user_scratchpad(), prop, g.data, g.stats, epsilon, g.flags);
    NormForward out{Tensor(x.shape(), DType::float32), {}};
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine_, g.data, x)},
                                         {DNNL_ARG_DST, wrap(engine_, g.data, out.y)}};
    if (gamma.defined()) args.emplace(DNNL_ARG_SCALE, wrap(engine_, g.params, gamma));
    if (beta.defined()) args.emplace(DNNL_ARG_SHIFT, wrap(engine_, g.params, beta));
    if (training) {
        const int64_t rows = x.numel() / x.dim(x.ndim() - 1);
        Statistics stats{Tensor({rows}, DType::float32), Tensor({rows}, DType::float32)};
        args.emplace(DNNL_ARG_MEAN, wrap(engine_, g.stats, stats.first));
        args.emplace(DNNL_ARG_VARIANCE, wrap(engine_, g.stats, stats.second));
        out.saved = stats;
    }
    run(dnnl::layer_normalization_forward(pd), std::move(args));
    return out;
}

void OneDnnBackend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                        const NormForward& fwd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                        Tensor& dbeta) {
    const auto* stats = std::any_cast<Statistics>(&fwd.saved);
    if (!all_f32({&x}) || !stats)
        return Backend::layer_norm_backward(x, gamma, beta, epsilon, fwd, dy, dx, dgamma, dbeta);
    const NormGeometry g(x, gamma, beta, true);
    const auto attr = user_scratchpad();
    const auto hint = dnnl_compat::layer_norm_pd(engine_, attr, dnnl::prop_kind::forward_training, g.data, g.stats,
                                                 epsilon, g.flags);
    const auto pd = dnnl_compat::layer_norm_backward_pd(engine_, attr, g.data, g.stats, epsilon, g.flags, hint);
    run(dnnl::layer_normalization_backward(pd),
        backward_args(engine_, g, x, dy, *stats, gamma, beta, true, dx, dgamma, dbeta));
}

NormForward OneDnnBackend::batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                               float epsilon) {
    if (!all_f32({&x})) return Backend::batch_norm_training(x, gamma, beta, epsilon);
    const NormGeometry g(x, gamma, beta, false);
    const auto pd = dnnl_compat::batch_norm_pd(engine_, user_scratchpad(), dnnl::prop_kind::forward_training, g.data,
                                               epsilon, g.flags);
    const int64_t width = x.dim(x.ndim() - 1);
    NormForward out{Tensor(x.shape(), DType::float32), {}};
    out.mean = Tensor({width}, DType::float32);
    out.variance = Tensor({width}, DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine_, g.data, x)},
                                         {DNNL_ARG_DST, wrap(engine_, g.data, out.y)},
                                         {DNNL_ARG_MEAN, wrap(engine_, g.stats, out.mean)},
                                         {DNNL_ARG_VARIANCE, wrap(engine_, g.stats, out.variance)}};
    if (gamma.defined()) args.emplace(DNNL_ARG_SCALE, wrap(engine_, g.params, gamma));
    if (beta.defined()) args.emplace(DNNL_ARG_SHIFT, wrap(engine_, g.params, beta));
    run(dnnl::batch_normalization_forward(pd), std::move(args));
    out.saved = Statistics{out.mean, out.variance};
    return out;
}

void OneDnnBackend::batch_norm_training_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                 float epsilon, const NormForward& fwd, const Tensor& dy, Tensor& dx,
                                                 Tensor& dgamma, Tensor& dbeta) {
    const auto* stats = std::any_cast<Statistics>(&fwd.saved);
    if (!all_f32({&x}) || !stats)
        return Backend::batch_norm_training_backward(x, gamma, beta, epsilon, fwd, dy, dx, dgamma, dbeta);
    const NormGeometry g(x, gamma, beta, false);
    const auto attr = user_scratchpad();
    const auto hint = dnnl_compat::batch_norm_pd(engine_, attr, dnnl::prop_kind::forward_training, g.data, epsilon,
                                                 g.flags);
    const auto pd = dnnl_compat::batch_norm_backward_pd(engine_, attr, g.data, epsilon, g.flags, hint);
    run(dnnl::batch_normalization_backward(pd),
        backward_args(engine_, g, x, dy, *stats, gamma, beta, !dnnl_compat::kOneDnn3, dx, dgamma, dbeta));
}

}  // namespace keras::backend
