// Embedding lookups: a gather with a bounds check, and the scatter-add for its gradient.
#include <cstring>

#include "keras/errors.hpp"
#include "onednn_backend.hpp"

namespace keras::backend {

namespace {
template <typename Id>
Tensor gather(const Tensor& ids, const Tensor& table, const std::string& layer_name) {
    const int64_t vocab = table.dim(0), width = table.dim(1);
    Shape out_shape = ids.shape();
    out_shape.push_back(width);
    Tensor out(out_shape, DType::float32);
    const Id* id = ids.data<Id>();
    const float* src = table.data<float>();
    float* dst = out.data<float>();
    const int64_t n = ids.numel();   // numel() recomputes the product of the shape: not per id
    for (int64_t i = 0; i < n; ++i)   // checked first: a team member must not throw
        if (id[i] < 0 || id[i] >= vocab)
            value_error("Embedding layer \"{}\": input id {} at position {} is outside [0, {}) (input_dim={})",
                        layer_name, static_cast<int64_t>(id[i]), index_str(ids.shape(), i), vocab, vocab);
    run_ranges(threads_for_bytes(n * width * 4), n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            std::memcpy(dst + i * width, src + static_cast<int64_t>(id[i]) * width, width * sizeof(float));
    });
    return out;
}

// The table's gradient: zeros, plus each id's row of dy. Threads split the table's rows, and each
// adds the ids of its rows in their order: the same bits for any thread count.
template <typename Id>
Tensor scatter_add(const Tensor& ids, const Tensor& dy, int64_t vocab) {
    const int64_t width = dy.dim(-1);
    Tensor dtable({vocab, width}, DType::float32);
    const Id* id = ids.data<Id>();
    const float* g = dy.data<float>();
    float* dst = dtable.data<float>();
    const int64_t n = ids.numel();
    run_ranges(threads_for_bytes(vocab * width * 4), vocab, 1, [&](int64_t first, int64_t last) {
        std::memset(dst + first * width, 0, sizeof(float) * (last - first) * width);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t v = id[i];
            if (v < first || v >= last) continue;
            float* row = dst + v * width;
            for (int64_t j = 0; j < width; ++j) row[j] += g[i * width + j];
        }
    });
    return dtable;
}
}  // namespace

Tensor OneDnnBackend::embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) {
    switch (ids.dtype()) {
        case DType::int32: return gather<int32_t>(ids, table, layer_name);
        case DType::int64: return gather<int64_t>(ids, table, layer_name);
        case DType::float32: break;
    }
    value_error("Embedding layer \"{}\" expects integer token ids (int32 or int64), got {}", layer_name,
                to_string(ids.dtype()));
}

Tensor OneDnnBackend::embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) {
    return ids.dtype() == DType::int32 ? scatter_add<int32_t>(ids, dy, vocab) : scatter_add<int64_t>(ids, dy, vocab);
}

}  // namespace keras::backend
