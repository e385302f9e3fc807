// How the merge layers treat masks, as Keras 3 (keras/src/layers/merging): the mask each passes on
// (compute_mask), and Multiply's masked product. Add, Average and Concatenate compute the same with or
// without masks. Masks are (batch, steps) float32 on the host, 1 = real step (see Layer::compute_mask).
#include <algorithm>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/merge.hpp"

namespace keras::layers {

namespace {

// A mask covers the first two axes (batch, steps) of its input.
void check_mask_fits(const std::string& layer, size_t i, const Tensor& x, const Tensor& mask) {
    if (x.ndim() < 3 || mask.shape() != Shape{x.dim(0), x.dim(1)})
        value_error("Layer \"{}\": the mask of input {} has shape {}, expected (batch, steps) of an input of rank 3 "
                    "or more, but the input has shape {}", layer, i, shape_str(mask.shape()), shape_str(x.shape()));
}

void check_list(const std::string& layer, const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
    if (masks.size() != xs.size())
        value_error("Layer \"{}\": The lists `inputs` and `mask` should have the same length. Received: {} inputs and "
                    "{} masks", layer, xs.size(), masks.size());
    for (size_t i = 0; i < xs.size(); ++i)
        if (masks[i].defined()) check_mask_fits(layer, i, xs[i], masks[i]);
}

// Element-wise OR of 0/1 masks of the same shape, into `out`.
void or_into(Tensor& out, const Tensor& mask) {
    float* o = out.data<float>();
    const float* m = mask.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = (o[i] != 0.0f || m[i] != 0.0f) ? 1.0f : 0.0f;
}

// A (batch, steps) mask (or 1 - mask) repeated over the features of x, on x's device.
Tensor broadcast_mask(const Tensor& mask, const Tensor& x, bool complement = false) {
    Tensor full(x.shape(), DType::float32);
    const int64_t rows = mask.numel(), per_row = x.numel() / rows;
    float* f = full.data<float>();
    const float* m = mask.data<float>();
    for (int64_t r = 0; r < rows; ++r) std::fill_n(f + r * per_row, per_row, complement ? 1.0f - m[r] : m[r]);
    return full.to(x.device());
}

}  // namespace

Multiply::Factors Multiply::masked_factors(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const {
    Factors out{xs, std::vector<Tensor>(xs.size()), Tensor()};
    if (masks.empty()) return out;
    check_list(name(), xs, masks);
    for (size_t i = 0; i < xs.size(); ++i) {
        if (!masks[i].defined()) continue;
        auto& be = backend::for_tensor(xs[i]);
        out.keeps[i] = broadcast_mask(masks[i], xs[i]);
        out.factors[i] = be.add(be.multiply(xs[i], out.keeps[i]), broadcast_mask(masks[i], xs[i], true));
    }
    if (const Tensor any = compute_mask_multi(xs, masks); any.defined()) out.output_keep = broadcast_mask(any, xs[0]);
    return out;
}

Tensor Merge::compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const {
    check_list(name(), xs, masks);
    if (masks.empty() || std::any_of(masks.begin(), masks.end(), [](const Tensor& m) { return !m.defined(); }))
        return {};
    Tensor out = masks[0].clone();
    for (size_t i = 1; i < masks.size(); ++i) {
        if (masks[i].shape() != out.shape())
            value_error("Layer \"{}\": the masks of its inputs have different shapes: {} and {}", name(),
                        shape_str(out.shape()), shape_str(masks[i].shape()));
        or_into(out, masks[i]);
    }
    return out;
}

Tensor Concatenate::compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const {
    check_list(name(), xs, masks);
    if (std::none_of(masks.begin(), masks.end(), [](const Tensor& m) { return m.defined(); })) return {};
    for (size_t i = 0; i < xs.size(); ++i)
        if (xs[i].ndim() < 3)
            value_error("Layer \"{}\": a masked Concatenate needs inputs of rank 3 or more (batch, steps, ...), "
                        "input {} has shape {}", name(), i, shape_str(xs[i].shape()));
    // Keras's rule: unmasked inputs count as all ones.
    std::vector<Tensor> full;
    for (size_t i = 0; i < xs.size(); ++i)
        full.push_back(masks[i].defined() ? masks[i] : Tensor::full({xs[i].dim(0), xs[i].dim(1)}, 1.0f));
    if (positive_axis(xs[0].ndim()) != 1) {   // along a feature axis: the steps line up, OR them
        Tensor out = full[0].clone();
        for (size_t i = 1; i < full.size(); ++i) or_into(out, full[i]);
        return out;
    }
    // Along the time axis: the masks follow each other, step by step of each sample.
    int64_t steps = 0;
    for (const auto& m : full) steps += m.dim(1);
    const int64_t batch = full[0].dim(0);
    Tensor out({batch, steps}, DType::float32);
    float* o = out.data<float>();
    for (int64_t n = 0; n < batch; ++n)
        for (const auto& m : full) {
            const float* row = m.data<float>() + n * m.dim(1);
            o = std::copy(row, row + m.dim(1), o);
        }
    return out;
}

}  // namespace keras::layers
