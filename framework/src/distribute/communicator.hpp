// The collectives data-parallel training needs, behind one interface: MPI between processes
// (mpi_communicator.cpp), or a single process (local_communicator.cpp). A GPU communicator (NCCL,
// bootstrapped over MPI) would be a third implementation of the same calls.
// Every worker must make the same calls in the same order; `what` names the collective in the error
// a timeout gives ("the gradients' all-reduce").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keras/distribute.hpp"

namespace keras::distribute {

class Communicator {
public:
    virtual ~Communicator() = default;
    // The gradients' all-reduce bucket size (StrategyOptions::bucket_bytes).
    size_t bucket_bytes = size_t{4} << 20;
    StrategyOptions::EmbeddingGradients embedding_gradients = StrategyOptions::EmbeddingGradients::Auto;
    CommunicationStats stats;   // GradientBuckets adds each step's

    virtual int rank() const = 0;
    virtual int size() const = 0;
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
};

// MPI's communicator (initializing MPI once per process), or a single-process one when this build
// has no MPI. timeout_seconds > 0.
std::shared_ptr<Communicator> make_communicator(double timeout_seconds);

// The collective timeout: options' value when > 0, else KERASCPP_COLLECTIVE_TIMEOUT, else 600 s.
double collective_timeout(double from_options);

// Rows [begin, end) of a batch of `rows` that worker `rank` of `size` takes: contiguous, sizes
// differing by at most one, in rank order, so the shares put together are the batch.
struct Share {
    int64_t begin, end;
};
Share share_of(int64_t rows, int rank, int size);

}  // namespace keras::distribute
