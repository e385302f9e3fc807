#pragma once
// The one place where oneDNN 2.x and 3.x differ for this backend. oneDNN 3 removed the operation
// descriptors (`xxx::desc`, then `primitive_desc(desc, attr, engine)`): a primitive descriptor is
// built directly from the engine, the operation's arguments and the attributes. The helpers below
// take the arguments in oneDNN 3's order and build them the way the installed major wants, so the
// backend's functions are written once.

#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#ifndef DNNL_VERSION_MAJOR
#error "oneDNN did not define DNNL_VERSION_MAJOR (dnnl_version.h)"
#endif

namespace keras::backend::dnnl_compat {

inline constexpr bool kOneDnn3 = DNNL_VERSION_MAJOR >= 3;

// Primitives whose 2.x descriptor takes the same arguments as 3.x's primitive descriptor after the
// engine: matmul, binary, reduction and the RNN forwards.
template <class Prim, class... Args>
typename Prim::primitive_desc make_pd(const dnnl::engine& engine, const dnnl::primitive_attr& attr, Args&&... args) {
#if DNNL_VERSION_MAJOR >= 3
    return typename Prim::primitive_desc(engine, std::forward<Args>(args)..., attr);
#else
    return typename Prim::primitive_desc(typename Prim::desc(std::forward<Args>(args)...), attr, engine);
#endif
}

// The same for a backward primitive, which also takes its forward's primitive descriptor as a hint.
template <class Prim, class Hint, class... Args>
typename Prim::primitive_desc make_backward_pd(const dnnl::engine& engine, const dnnl::primitive_attr& attr,
                                               const Hint& hint, Args&&... args) {
#if DNNL_VERSION_MAJOR >= 3
    return typename Prim::primitive_desc(engine, std::forward<Args>(args)..., hint, attr);
#else
    return typename Prim::primitive_desc(typename Prim::desc(std::forward<Args>(args)...), attr, engine, hint);
#endif
}

// Elementwise, in place: 3.x takes a destination descriptor as well.
inline dnnl::eltwise_forward eltwise(const dnnl::engine& engine, const dnnl::primitive_attr& attr,
                                     dnnl::algorithm alg, const dnnl::memory::desc& md, float alpha, float beta) {
    const auto prop = dnnl::prop_kind::forward_inference;
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(engine, prop, alg, md, md, alpha, beta, attr));
#else
    return dnnl::eltwise_forward(
        dnnl::eltwise_forward::primitive_desc(dnnl::eltwise_forward::desc(prop, alg, md, alpha, beta), attr, engine));
#endif
}

// softmax or log-softmax along `axis`: 2.x has a separate logsoftmax primitive, 3.x an algorithm.
inline dnnl::primitive softmax(const dnnl::engine& engine, const dnnl::primitive_attr& attr,
                               const dnnl::memory::desc& md, int axis, bool log) {
    const auto prop = dnnl::prop_kind::forward_inference;
#if DNNL_VERSION_MAJOR >= 3
    const auto alg = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
    return dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(engine, prop, alg, md, md, axis, attr));
#else
    if (log)
        return dnnl::logsoftmax_forward(
            dnnl::logsoftmax_forward::primitive_desc(dnnl::logsoftmax_forward::desc(prop, md, axis), attr, engine));
    return dnnl::softmax_forward(
        dnnl::softmax_forward::primitive_desc(dnnl::softmax_forward::desc(prop, md, axis), attr, engine));
#endif
}

// Concatenation: only the argument order changed (the engine first in 3.x).
inline dnnl::concat concat(const dnnl::engine& engine, const dnnl::primitive_attr& attr, const dnnl::memory::desc& dst,
                           int axis, const std::vector<dnnl::memory::desc>& srcs) {
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::concat(dnnl::concat::primitive_desc(engine, dst, axis, srcs, attr));
#else
    return dnnl::concat(dnnl::concat::primitive_desc(dst, axis, srcs, engine, attr));
#endif
}

// Pooling: 3.x takes a dilation (none here: Keras's poolings have none) and the engine first.
inline dnnl::pooling_forward::primitive_desc pooling_pd(const dnnl::engine& engine, const dnnl::primitive_attr& attr,
                                                        dnnl::prop_kind prop, dnnl::algorithm alg,
                                                        const dnnl::memory::desc& src, const dnnl::memory::desc& dst,
                                                        const dnnl::memory::dims& strides, const dnnl::memory::dims& kernel,
                                                        const dnnl::memory::dims& pad_l, const dnnl::memory::dims& pad_r) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::memory::dims no_dilation(kernel.size(), 0);
    return dnnl::pooling_forward::primitive_desc(engine, prop, alg, src, dst, strides, kernel, no_dilation, pad_l, pad_r,
                                                 attr);
#else
    return dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(prop, alg, src, dst, strides, kernel, pad_l, pad_r), attr, engine);
#endif
}

inline dnnl::pooling_backward::primitive_desc pooling_backward_pd(
    const dnnl::engine& engine, const dnnl::primitive_attr& attr, dnnl::algorithm alg, const dnnl::memory::desc& diff_src,
    const dnnl::memory::desc& diff_dst, const dnnl::memory::dims& strides, const dnnl::memory::dims& kernel,
    const dnnl::memory::dims& pad_l, const dnnl::memory::dims& pad_r, const dnnl::pooling_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::memory::dims no_dilation(kernel.size(), 0);
    return dnnl::pooling_backward::primitive_desc(engine, alg, diff_src, diff_dst, strides, kernel, no_dilation, pad_l,
                                                  pad_r, hint, attr);
#else
    return dnnl::pooling_backward::primitive_desc(
        dnnl::pooling_backward::desc(alg, diff_src, diff_dst, strides, kernel, pad_l, pad_r), attr, engine, hint);
#endif
}

// Layer normalization: 2.x has one descriptor for source and destination, 3.x one each.
inline dnnl::layer_normalization_forward::primitive_desc layer_norm_pd(
    const dnnl::engine& engine, const dnnl::primitive_attr& attr, dnnl::prop_kind prop, const dnnl::memory::desc& data,
    const dnnl::memory::desc& stats, float epsilon, dnnl::normalization_flags flags) {
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::layer_normalization_forward::primitive_desc(engine, prop, data, data, stats, epsilon, flags, attr);
#else
    return dnnl::layer_normalization_forward::primitive_desc(
        dnnl::layer_normalization_forward::desc(prop, data, stats, epsilon, flags), attr, engine);
#endif
}

inline dnnl::layer_normalization_backward::primitive_desc layer_norm_backward_pd(
    const dnnl::engine& engine, const dnnl::primitive_attr& attr, const dnnl::memory::desc& data,
    const dnnl::memory::desc& stats, float epsilon, dnnl::normalization_flags flags,
    const dnnl::layer_normalization_forward::primitive_desc& hint) {
    const auto prop = dnnl::prop_kind::backward;
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::layer_normalization_backward::primitive_desc(engine, prop, data, data, data, stats, epsilon, flags,
                                                              hint, attr);
#else
    return dnnl::layer_normalization_backward::primitive_desc(
        dnnl::layer_normalization_backward::desc(prop, data, data, stats, epsilon, flags), attr, engine, hint);
#endif
}

// Batch normalization: the same difference.
inline dnnl::batch_normalization_forward::primitive_desc batch_norm_pd(
    const dnnl::engine& engine, const dnnl::primitive_attr& attr, dnnl::prop_kind prop, const dnnl::memory::desc& data,
    float epsilon, dnnl::normalization_flags flags) {
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::batch_normalization_forward::primitive_desc(engine, prop, data, data, epsilon, flags, attr);
#else
    return dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(prop, data, epsilon, flags), attr, engine);
#endif
}

inline dnnl::batch_normalization_backward::primitive_desc batch_norm_backward_pd(
    const dnnl::engine& engine, const dnnl::primitive_attr& attr, const dnnl::memory::desc& data, float epsilon,
    dnnl::normalization_flags flags, const dnnl::batch_normalization_forward::primitive_desc& hint) {
    const auto prop = dnnl::prop_kind::backward;
#if DNNL_VERSION_MAJOR >= 3
    return dnnl::batch_normalization_backward::primitive_desc(engine, prop, data, data, data, epsilon, flags, hint,
                                                              attr);
#else
    return dnnl::batch_normalization_backward::primitive_desc(
        dnnl::batch_normalization_backward::desc(prop, data, data, epsilon, flags), attr, engine, hint);
#endif
}

// The scratchpad a primitive asks for (a zero descriptor when none): 3.x's memory descriptors are
// opaque handles, 2.x's plain structs.
inline dnnl::memory::desc scratchpad_desc(const dnnl::primitive& p) {
    const auto md = dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
    if (!md) return {};
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_t copy = nullptr;
    if (dnnl_memory_desc_clone(&copy, md) != dnnl_success) return {};
    return dnnl::memory::desc(copy);   // owns the clone
#else
    return dnnl::memory::desc(*md);
#endif
}

}  // namespace keras::backend::dnnl_compat
