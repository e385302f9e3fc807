// Embedding on the GPU: gather and scatter-add kernels (embedding.cu), and the deferred check of
// out-of-range ids (see CudaBackend::PendingIdCheck).
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

namespace {
// The "no bad id" value: every byte 0x7F, so cudaMemsetAsync can set it; larger than any position.
constexpr long long kNoBadId = 0x7F7F7F7F7F7F7F7FLL;

// Calls f with the ids' device pointer typed by their dtype (int32 or int64).
template <typename F>
void with_ids(const Tensor& ids, F&& f) {
    if (ids.dtype() == DType::int32) f(static_cast<const int32_t*>(ids.raw()));
    else f(static_cast<const int64_t*>(ids.raw()));
}
}  // namespace

void CudaBackend::finish_id_check() {
    if (!pending_ids_ || !pending_ids_->active) return;
    PendingIdCheck& p = *pending_ids_;
    // The copy was queued at the previous embedding() call, usually long finished: then no wait.
    const cudaError_t state = cudaEventQuery(p.copied);
    if (state == cudaErrorNotReady) {
        ++host_synchronizations_;
        CUDA_CHECK(cudaEventSynchronize(p.copied));
    } else {
        CUDA_CHECK(state);
    }
    p.active = false;
    const long long position = *p.host;
    if (position == kNoBadId) return;
    const Tensor ids = p.ids.reshape({-1}).slice_rows(position, position + 1).to(Device::cpu());
    value_error("Embedding layer \"{}\": input id {} at position {} is outside [0, {}) (input_dim={})", p.layer_name,
                static_cast<int64_t>(ids.item(0)), index_str(p.ids.shape(), position), p.vocab, p.vocab);
}

Tensor CudaBackend::embedding(const Tensor& ids, const Tensor& table, const std::string& layer_name) {
    finish_id_check();
    if (ids.dtype() == DType::float32)
        value_error("Embedding layer \"{}\" expects integer token ids (int32 or int64), got {}", layer_name,
                    to_string(ids.dtype()));
    if (!ids.defined() || ids.device() != device())
        value_error("Embedding layer \"{}\": ids are on {}, expected {}", layer_name,
                    ids.defined() ? to_string(ids.device()) : "nothing", to_string(device()));
    check_on_device(table, "embedding table");
    make_current();
    if (!pending_ids_) {
        pending_ids_ = std::make_unique<PendingIdCheck>();
        CUDA_CHECK(cudaMallocHost(&pending_ids_->host, sizeof(long long)));
        CUDA_CHECK(cudaEventCreateWithFlags(&pending_ids_->copied, cudaEventDisableTiming));
        pending_ids_->first_bad = Tensor({1}, DType::int64, device());
    }
    PendingIdCheck& p = *pending_ids_;
    CUDA_CHECK(cudaMemsetAsync(p.first_bad.raw(), 0x7F, sizeof(long long), stream_));

    const int64_t vocab = table.dim(0), width = table.dim(1);
    Shape out_shape = ids.shape();
    out_shape.push_back(width);
    Tensor out(out_shape, DType::float32, device());
    auto* first_bad = static_cast<long long*>(p.first_bad.raw());
    with_ids(ids, [&](const auto* id) {
        CUDA_CHECK(kernels::embedding_gather(id, static_cast<const float*>(table.raw()), static_cast<float*>(out.raw()),
                                             ids.numel(), vocab, width, first_bad, stream_));
    });
    CUDA_CHECK(cudaMemcpyAsync(p.host, first_bad, sizeof(long long), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaEventRecord(p.copied, stream_));
    p.ids = ids;
    p.layer_name = layer_name;
    p.vocab = vocab;
    p.active = true;
    return out;
}

// Ids outside [0, vocab) are skipped by the kernel (their error is reported by finish_id_check).
Tensor CudaBackend::embedding_backward(const Tensor& ids, const Tensor& dy, int64_t vocab) {
    check_on_device(dy, "embedding gradient");
    if (!ids.defined() || ids.device() != device() || ids.dtype() == DType::float32)
        value_error("{} backend: embedding_backward needs int32 or int64 ids on {}", to_string(device()),
                    to_string(device()));
    make_current();
    const int64_t width = dy.dim(-1);
    Tensor dtable = Tensor::zeros({vocab, width}, DType::float32, device());
    with_ids(ids, [&](const auto* id) {
        CUDA_CHECK(kernels::embedding_scatter_add(id, static_cast<const float*>(dy.raw()), static_cast<float*>(dtable.raw()),
                                                  ids.numel(), vocab, width, stream_));
    });
    return dtable;
}

}  // namespace keras::backend
