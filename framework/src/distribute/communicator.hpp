// The collectives data-parallel training needs, behind one interface: MPI between processes
// (mpi_communicator.cpp), a single process (strategy.cpp), or NCCL between GPU processes, bootstrapped
// over MPI (backend/cuda/nccl_communicator.cpp, in the CUDA library; for_device() picks it).
// Every worker must make the same calls in the same order; `what` names the collective in the error
// a timeout gives ("the gradients' all-reduce").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keras/device.hpp"
#include "keras/distribute.hpp"

namespace keras::distribute {

class Communicator {
public:
    virtual ~Communicator() = default;
    // The gradients' all-reduce bucket size (StrategyOptions::bucket_bytes).
    size_t bucket_bytes = size_t{4} << 20;
    StrategyOptions::EmbeddingGradients embedding_gradients = StrategyOptions::EmbeddingGradients::Auto;
    // GradientBuckets adds each step's. Shared: the NCCL communicator for_device makes adds to its
    // host's, which strategy.stats() reads.
    std::shared_ptr<CommunicationStats> stats = std::make_shared<CommunicationStats>();
    // How long one collective may wait for the other workers (collective_timeout()).
    double timeout_seconds = 600;

    virtual int rank() const = 0;
    virtual int size() const = 0;
    // This worker's index among the workers on its machine (the GPU it should use).
    virtual int local_rank() const { return 0; }
    // "local", "mpi" or "nccl".
    virtual const char* engine() const = 0;
    // In place: each element becomes its sum over the workers.
    virtual void all_reduce_sum(float* data, size_t count, const char* what) = 0;
    virtual void all_reduce_sum(double* data, size_t count, const char* what) = 0;
    // The nonblocking form: starts the in-place sum and returns; the data must stay in place until
    // wait_all(). progress() lets the started sums advance (Open MPI moves them only inside MPI
    // calls); wait_all() finishes every started one.
    virtual void start_all_reduce_sum(float* data, size_t count, const char* what) = 0;
    virtual void progress() = 0;
    virtual void wait_all(const char* what) = 0;
    // In place: every worker gets root's bytes.
    virtual void broadcast(void* data, size_t bytes, int root, const char* what) = 0;
    // Every worker's bytes (any length each), concatenated in rank order.
    virtual std::vector<char> all_gather(const std::vector<char>& mine, const char* what) = 0;
    // Prints `message` and ends the whole job (MPI_Abort): what a collective past its timeout does.
    [[noreturn]] virtual void abort_job(const std::string& message) = 0;
};

// MPI's communicator (initializing MPI once per process), or a single-process one when this build
// has no MPI. timeout_seconds > 0.
std::shared_ptr<Communicator> make_communicator(double timeout_seconds);

// The communicator a model on `device` trains with: NCCL's (made once per process, bootstrapped over
// `host`) when the model is on a CUDA GPU, `host` is MPI's and this build has NCCL; else `host`.
std::shared_ptr<Communicator> for_device(const std::shared_ptr<Communicator>& host, const Device& device);

// Which engine for_device picks (the choice alone, testable without a GPU).
enum class Engine { host, nccl };
Engine choose_engine(const char* host_engine, bool on_cuda, bool nccl_built);

// A local rank from a launcher's variable (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID,
// SLURM_LOCALID): -1 when unset, a ValueError naming the variable when it is not a number >= 0.
int local_rank_from_environment();

// NCCL's bootstrap over the host communicator: rank 0 fills `bytes` of `id` (make_on_root; NCCL's
// ncclGetUniqueId), every worker then holds rank 0's bytes. Inline: the CUDA library calls it, and
// libkerascpp does not export its internals.
inline void broadcast_unique_id(Communicator& host, void* id, size_t bytes,
                                const std::function<void(void*)>& make_on_root) {
    if (host.rank() == 0) make_on_root(id);
    host.broadcast(id, bytes, 0, "the broadcast of NCCL's unique id");
}

// The collective timeout: options' value when > 0, else KERASCPP_COLLECTIVE_TIMEOUT, else 600 s.
double collective_timeout(double from_options);

// Rows [begin, end) of a batch of `rows` that worker `rank` of `size` takes: contiguous, sizes
// differing by at most one, in rank order, so the shares put together are the batch.
struct Share {
    int64_t begin, end;
};
Share share_of(int64_t rows, int rank, int size);

}  // namespace keras::distribute
