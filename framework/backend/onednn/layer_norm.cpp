// Layer normalization on oneDNN's layer_normalization primitive: x as rows (R, C) normalized over C.
// Training keeps the rows' means and variances, which the backward primitive reads.
#include <utility>

#include "onednn_backend.hpp"

namespace keras::backend {

using dnnl::memory;

namespace {

using Statistics = std::pair<Tensor, Tensor>;   // each row's mean and variance, (R)

struct LayerNormGeometry {
    memory::desc data, stats, params;   // params: gamma, beta and their gradients, (C)
    dnnl::normalization_flags flags = dnnl::normalization_flags::none;
    LayerNormGeometry(const Tensor& x, const Tensor& gamma, const Tensor& beta) {
        const int64_t width = x.dim(x.ndim() - 1);
        data = memory::desc({x.numel() / width, width}, memory::data_type::f32, memory::format_tag::ab);
        stats = memory::desc({x.numel() / width}, memory::data_type::f32, memory::format_tag::a);
        params = memory::desc({width}, memory::data_type::f32, memory::format_tag::a);
        if (gamma.defined()) flags = flags | dnnl::normalization_flags::use_scale;
        if (beta.defined()) flags = flags | dnnl::normalization_flags::use_shift;
    }
};

memory wrap(const dnnl::engine& engine, const memory::desc& md, const Tensor& t) {
    return memory(md, engine, const_cast<void*>(t.raw()));
}

bool onednn_can(const Tensor& x) { return x.dtype() == DType::float32 && x.numel() > 0; }

}  // namespace

NormForward OneDnnBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                      bool training) {
    if (!onednn_can(x)) return Backend::layer_norm(x, gamma, beta, epsilon, training);
    const LayerNormGeometry g(x, gamma, beta);
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
    if (!onednn_can(x) || !stats)
        return Backend::layer_norm_backward(x, gamma, beta, epsilon, fwd, dy, dx, dgamma, dbeta);
    const LayerNormGeometry g(x, gamma, beta);
    const auto attr = user_scratchpad();
    const auto hint = dnnl_compat::layer_norm_pd(engine_, attr, dnnl::prop_kind::forward_training, g.data, g.stats,
                                                 epsilon, g.flags);
    const auto pd = dnnl_compat::layer_norm_backward_pd(engine_, attr, g.data, g.stats, epsilon, g.flags, hint);
    dx = Tensor(x.shape(), DType::float32);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(engine_, g.data, x)},
                                         {DNNL_ARG_DIFF_DST, wrap(engine_, g.data, dy)},
                                         {DNNL_ARG_MEAN, wrap(engine_, g.stats, stats->first)},
                                         {DNNL_ARG_VARIANCE, wrap(engine_, g.stats, stats->second)},
                                         {DNNL_ARG_DIFF_SRC, wrap(engine_, g.data, dx)}};
    const int64_t width = x.dim(x.ndim() - 1);
    if (gamma.defined()) {
        dgamma = Tensor({width}, DType::float32);
        args.emplace(DNNL_ARG_SCALE, wrap(engine_, g.params, gamma));
        args.emplace(DNNL_ARG_DIFF_SCALE, wrap(engine_, g.params, dgamma));
    }
    if (beta.defined()) {
        dbeta = Tensor({width}, DType::float32);
        args.emplace(DNNL_ARG_SHIFT, wrap(engine_, g.params, beta));   // unread, but oneDNN asks for it
        args.emplace(DNNL_ARG_DIFF_SHIFT, wrap(engine_, g.params, dbeta));
    }
    run(dnnl::layer_normalization_backward(pd), std::move(args));
}

}  // namespace keras::backend
