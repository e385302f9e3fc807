// Data-parallel training over several processes (Keras's tf.distribute.MultiWorkerMirroredStrategy),
// on MPI: start the program with `mpirun -np N`, and models compiled inside strategy.scope() train
// with every process (worker) holding a copy of the weights. docs/distributed.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "keras/export.hpp"

namespace keras::distribute {

class Communicator;   // the collectives (MPI, or one process); internal

// MultiWorkerMirroredStrategy's options.
struct KERAS_API StrategyOptions {
    // How long one collective (an all-reduce of the gradients, of the metrics, ...) may wait for the
    // other workers. Past it the worker prints which collective timed out and aborts the whole job
    // (MPI_Abort): a dead or hung worker never leaves the others waiting forever. <= 0: the
    // KERASCPP_COLLECTIVE_TIMEOUT environment variable (seconds), else 600 s.
    double timeout_seconds = 0;
    // The gradients are all-reduced in buckets of about this many bytes, each started as soon as the
    // backward pass has finished its weights' layers, so communication overlaps the rest of the
    // backward pass (PyTorch DDP's bucket_cap_mb). Above the size of all the gradients: one all-reduce,
    // after the backward pass.
    size_t bucket_bytes = size_t{4} << 20;
    // How an Embedding layer's gradient (large, and zero outside the rows the batch touched) travels.
    // Dense: all-reduced with the other weights. TouchedRows: every worker's touched rows (row index
    // and row gradient) all-gathered and summed, which moves touched × (dim + 1) × workers floats
    // instead of vocab × dim. Auto: per layer and per step, the smaller of the two (the workers first
    // agree on their largest count of touched rows).
    enum class EmbeddingGradients { Auto, Dense, TouchedRows };
    EmbeddingGradients embedding_gradients = EmbeddingGradients::Auto;
};

// What the gradients' exchange cost, summed over the training steps since the strategy was made (or
// reset_stats()). Wait time is the time a step spends after its backward pass until every gradient
// has arrived: the part of the communication the backward pass did not hide. Bytes are this worker's
// buffers: an all-reduce counts its buffer, an all-gather everything it gathers. One worker
// exchanges nothing: its stats stay zero.
struct KERAS_API CommunicationStats {
    int64_t steps = 0;
    double wait_seconds = 0;
    int64_t bytes = 0;
    int64_t dense_embedding_exchanges = 0;    // Embedding gradients that went dense (layer × step)
    int64_t touched_rows_exchanges = 0;       // ... that went as touched rows
    double wait_seconds_per_step() const { return steps ? wait_seconds / static_cast<double>(steps) : 0.0; }
    double bytes_per_step() const { return steps ? static_cast<double>(bytes) / static_cast<double>(steps) : 0.0; }
};

// Keras's MultiWorkerMirroredStrategy. Constructing it initializes MPI (once per process) and reads
// this process's rank and the number of workers; a program started without mpirun, or a build
// without MPI (-Dmpi=disabled), is one worker of rank 0. Models compiled inside scope() are
// distributed: fit's batch_size is the global batch, split across the workers; each worker trains on
// its share of every batch, the gradients are averaged over all workers before each optimizer step,
// and the logged losses and metrics are those of the whole batch on every worker. Only the chief
// (rank 0) prints the progress bar and writes files (save, save_weights, ModelCheckpoint,
// BackupAndRestore). evaluate and predict split their data over the workers too and return the
// whole result on every worker.
class KERAS_API MultiWorkerMirroredStrategy {
public:
    explicit MultiWorkerMirroredStrategy(const StrategyOptions& options = {});

    int rank() const;                   // this worker's index, 0 .. num_replicas_in_sync() - 1
    int num_replicas_in_sync() const;   // Keras's name for the number of workers
    bool is_chief() const { return rank() == 0; }   // the worker that logs and writes files
    // The worker's index on its machine: the GPU it should train on, one process per GPU
    // (`model.to(keras::Device::cuda(strategy.local_rank()))`). From the launcher
    // (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID), else counted by MPI.
    int local_rank() const;

    // Runs fn with this strategy current: every model compiled in it (model.compile) trains
    // distributed. Keras's `with strategy.scope():`.
    void scope(const std::function<void()>& fn) const;

    // The strategy compile() picks up: the innermost scope() running in this thread, or null.
    static const MultiWorkerMirroredStrategy* current();
    // The collectives the compiled models use (internal).
    std::shared_ptr<Communicator> communicator() const { return communicator_; }

    // The gradients' exchange so far, over every model trained with this strategy.
    CommunicationStats stats() const;
    void reset_stats();

private:
    std::shared_ptr<Communicator> communicator_;
};

// Whether this build of kerascpp has MPI (-Dmpi=auto found it, or -Dmpi=enabled).
KERAS_API bool built_with_mpi();

}  // namespace keras::distribute
