// The collectives between GPU workers over NCCL (built with -Dnccl), one process per GPU, one
// communicator per process. NCCL is bootstrapped over the host communicator (MPI): rank 0 makes the
// ncclUniqueId and broadcasts it. Sums and broadcasts run on a side stream of their own, so the compute
// stream goes on with the backward pass while a bucket of gradients travels; an event per collective
// tells progress() and wait_all() when it is done. The variable-length all_gather (predict's rows) stays
// on the host communicator.
//
// Pointers may be host or device memory: device memory goes to NCCL as it is; host memory (the
// gradient buckets, the metrics' sums, the weights fit broadcasts) is staged through pinned host and
// device buffers on the side stream.
//
// Waiting is bounded as on MPI: the communicator is nonblocking (ncclConfig_t::blocking = 0), and
// every wait polls the event and ncclCommGetAsyncError against the collective timeout; past it, or on
// an NCCL error, the worker says which collective failed, aborts the communicator (ncclCommAbort) and
// ends the job through the host communicator (MPI_Abort).
//
// This file includes only the CUDA runtime's and NCCL's headers (not cuBLAS / cuDNN), so CI compiles it
// against those headers alone (tests/meson.build, nccl_compile).
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "keras/errors.hpp"

#include "distribute/communicator.hpp"

namespace keras::backend {
namespace {

void check_cuda_call(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        runtime_error("NCCL communicator: {} failed: {} ({})", call, cudaGetErrorString(status), cudaGetErrorName(status));
}
#define NCCL_CUDA_CHECK(call) check_cuda_call((call), #call)

bool is_device_pointer(const void* p) {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
        cudaGetLastError();   // an unknown host pointer: clear the sticky-free error it sets
        return false;
    }
    return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}

// A pinned host buffer and a device buffer of the same size, for one staged collective.
struct Staging {
    char* host = nullptr;
    char* device = nullptr;
    size_t capacity = 0;
};

class NcclCommunicator final : public distribute::Communicator {
public:
    NcclCommunicator(std::shared_ptr<distribute::Communicator> host, int device) : host_(std::move(host)), device_(device) {
        timeout_seconds = host_->timeout_seconds;
        bucket_bytes = host_->bucket_bytes;
        NCCL_CUDA_CHECK(cudaSetDevice(device_));
        NCCL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        ncclUniqueId id{};
        distribute::broadcast_unique_id(*host_, &id, sizeof id, [this](void* out) {
            check(ncclGetUniqueId(static_cast<ncclUniqueId*>(out)), "ncclGetUniqueId");
        });
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;   // so that init and every collective can be waited for with a deadline
        check(ncclCommInitRankConfig(&comm_, host_->size(), id, host_->rank(), &config), "ncclCommInitRankConfig");
        settle("ncclCommInitRankConfig (NCCL's start-up)");
    }

    ~NcclCommunicator() override {
        // Unfinished work (an exception unwound a step): abort rather than wait for the others.
        if (comm_) pending_.empty() ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
        for (Staging& s : staging_) {
            cudaFreeHost(s.host);
            cudaFree(s.device);
        }
        for (Pending& p : pending_) cudaEventDestroy(p.done);
        if (stream_) cudaStreamDestroy(stream_);
    }

    int rank() const override { return host_->rank(); }
    int size() const override { return host_->size(); }
    int local_rank() const override { return host_->local_rank(); }
    const char* engine() const override { return "nccl"; }

    void all_reduce_sum(float* data, size_t count, const char* what) override {
        enqueue_all_reduce(data, count, ncclFloat32, sizeof(float), what);
        wait_all(what);
    }
    void all_reduce_sum(double* data, size_t count, const char* what) override {
        enqueue_all_reduce(data, count, ncclFloat64, sizeof(double), what);
        wait_all(what);
    }
    void start_all_reduce_sum(float* data, size_t count, const char* what) override {
        enqueue_all_reduce(data, count, ncclFloat32, sizeof(float), what);
    }

    void progress() override {
        // The side stream advances by itself; finished collectives just wait to be collected.
        check_async("a pending collective");
    }

    void wait_all(const char* what) override {
        for (Pending& p : pending_) {
            wait_event(p.done, what);
            if (p.staging >= 0) std::memcpy(p.out, staging_[static_cast<size_t>(p.staging)].host, p.bytes);
            cudaEventDestroy(p.done);
        }
        pending_.clear();
        busy_ = 0;
    }

    void broadcast(void* data, size_t bytes, int root, const char* what) override {
        if (bytes == 0) return;
        enqueue(data, bytes, what, [&](void* buffer) {
            return ncclBroadcast(buffer, buffer, bytes, ncclChar, root, comm_, stream_);
        });
        wait_all(what);
    }

    std::vector<char> all_gather(const std::vector<char>& mine, const char* what) override {
        return host_->all_gather(mine, what);
    }

    [[noreturn]] void abort_job(const std::string& message) override {
        if (comm_) ncclCommAbort(comm_);
        comm_ = nullptr;
        host_->abort_job(message);
        std::abort();   // the host's abort_job does not return
    }

private:
    struct Pending {
        void* out;          // where a staged result goes back to (host memory)
        size_t bytes;
        int staging;        // index into staging_, or -1 for device memory
        cudaEvent_t done;
    };

    void enqueue_all_reduce(void* data, size_t count, ncclDataType_t type, size_t element, const char* what) {
        if (count == 0) return;
        enqueue(data, count * element, what, [&](void* buffer) {
            return ncclAllReduce(buffer, buffer, count, type, ncclSum, comm_, stream_);
        });
    }

    // Runs `collective` in place on data's bytes on the side stream (through staging buffers when data
    // is host memory) and records the event wait_all() waits for.
    template <typename Collective>
    void enqueue(void* data, size_t bytes, const char* what, Collective collective) {
        NCCL_CUDA_CHECK(cudaSetDevice(device_));
        Pending p{data, bytes, -1, nullptr};
        void* buffer = data;
        if (!is_device_pointer(data)) {
            p.staging = static_cast<int>(acquire(bytes));
            Staging& s = staging_[static_cast<size_t>(p.staging)];
            std::memcpy(s.host, data, bytes);
            NCCL_CUDA_CHECK(cudaMemcpyAsync(s.device, s.host, bytes, cudaMemcpyHostToDevice, stream_));
            buffer = s.device;
        } else {
            // Device memory written on the compute stream: let it finish first (fit's broadcasts
            // only; the gradient buckets are host memory).
            NCCL_CUDA_CHECK(cudaDeviceSynchronize());
        }
        const ncclResult_t result = collective(buffer);
        if (result != ncclInProgress) check(result, what);
        settle(what);
        if (p.staging >= 0) {
            Staging& s = staging_[static_cast<size_t>(p.staging)];
            NCCL_CUDA_CHECK(cudaMemcpyAsync(s.host, s.device, bytes, cudaMemcpyDeviceToHost, stream_));
        }
        NCCL_CUDA_CHECK(cudaEventCreateWithFlags(&p.done, cudaEventDisableTiming));
        NCCL_CUDA_CHECK(cudaEventRecord(p.done, stream_));
        pending_.push_back(p);
    }

    // A staging pair of at least `bytes` not used by a pending collective (busy_ of them are).
    size_t acquire(size_t bytes) {
        if (busy_ == staging_.size()) staging_.push_back({});
        Staging& s = staging_[busy_];
        if (s.capacity < bytes) {
            cudaFreeHost(s.host);
            cudaFree(s.device);
            s = {};
            NCCL_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&s.host), bytes));
            NCCL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s.device), bytes));
            s.capacity = bytes;
        }
        return busy_++;
    }

    void check(ncclResult_t result, const char* call) {
        if (result == ncclSuccess) return;
        const char* last = comm_ ? ncclGetLastError(comm_) : ncclGetLastError(nullptr);
        runtime_error("NCCL communicator (worker {} of {}, GPU {}): {} failed: {}{}{}", rank(), size(), device_, call,
                      ncclGetErrorString(result), last && *last ? ": " : "", last ? last : "");
    }

    // An asynchronous NCCL error (a peer lost, a network failure) ends the job with its words.
    void check_async(const char* what) {
        ncclResult_t state = ncclSuccess;
        check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
        if (state != ncclSuccess && state != ncclInProgress)
            abort_job(fmt::format("kerascpp: worker {} of {}: NCCL failed during {}: {}. Aborting the job "
                                  "(ncclCommAbort, MPI_Abort).",
                                  rank(), size(), what, ncclGetErrorString(state)));
    }

    // A nonblocking communicator's call may return before NCCL has taken it: polls until it has.
    void settle(const char* what) {
        const auto deadline = deadline_from_now();
        for (int polls = 0;; ++polls) {
            ncclResult_t state = ncclSuccess;
            check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
            if (state == ncclSuccess) return;
            if (state != ncclInProgress) check_async(what);
            if (std::chrono::steady_clock::now() > deadline) timed_out(what);
            pause(polls);
        }
    }

    void wait_event(cudaEvent_t event, const char* what) {
        const auto deadline = deadline_from_now();
        for (int polls = 0;; ++polls) {
            const cudaError_t status = cudaEventQuery(event);
            if (status == cudaSuccess) return;
            if (status != cudaErrorNotReady) check_cuda_call(status, "cudaEventQuery");
            check_async(what);
            if (std::chrono::steady_clock::now() > deadline) timed_out(what);
            pause(polls);
        }
    }

    std::chrono::steady_clock::time_point deadline_from_now() const {
        using clock = std::chrono::steady_clock;
        return clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_seconds));
    }

    // Spins briefly (a step's collective usually completes quickly), then sleeps between polls.
    static void pause(int polls) {
        if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 1000 : 50));
    }

    [[noreturn]] void timed_out(const char* what) {
        abort_job(fmt::format("kerascpp: worker {} of {}: {} did not complete within the collective timeout ({} s): "
                              "another worker has died or hangs. Aborting the job (ncclCommAbort, MPI_Abort). The "
                              "timeout is StrategyOptions::timeout_seconds or KERASCPP_COLLECTIVE_TIMEOUT.",
                              rank(), size(), what, timeout_seconds));
    }

    std::shared_ptr<distribute::Communicator> host_;
    int device_;
    cudaStream_t stream_ = nullptr;
    ncclComm_t comm_ = nullptr;
    std::vector<Staging> staging_;
    size_t busy_ = 0;                // staging_[0, busy_) belong to pending collectives
    std::vector<Pending> pending_;
};
}  // namespace

std::shared_ptr<distribute::Communicator> create_nccl_communicator(std::shared_ptr<distribute::Communicator> host,
                                                                   int device) {
    return std::make_shared<NcclCommunicator>(std::move(host), device);
}

}  // namespace keras::backend
