// What a distributed model does with its communicator around fit / evaluate / predict (trainer.cpp):
// the start-up check that every worker has the same model, rank 0's weights for everyone, the
// gradients' average and the metrics' sums after each batch, and predict's rows gathered.
#pragma once

#include <cstdint>
#include <vector>

#include "keras/model.hpp"
#include "keras/variable.hpp"

#include "distribute/communicator.hpp"
#include "functional_graph.hpp"
#include "loss_and_metrics.hpp"

namespace keras::distribute {

// Every worker describes its model (layer classes, weight shapes, optimizer) and compares it with
// rank 0's; a difference anywhere is a ValueError on every worker, naming the first differing line
// on the worker that has it.
void check_same_model(Communicator& comm, const Model& model);

// Rank 0's weights (and rank 0's value of `epoch`, the epoch fit starts at) on every worker.
void broadcast_weights(Communicator& comm, Model& model);
int broadcast_int(Communicator& comm, int value, const char* what);

// The gradients of the whole batch on every worker: each worker's Variable::grad (the mean over its
// `rows` samples) weighted by its rows, summed over the workers, divided by the batch's rows. A
// variable no worker has a gradient for keeps none (the optimizer skips it, as in one process).
// The sums run in buckets of about Communicator::bucket_bytes, started while the backward pass is
// still running (as PyTorch's DDP): node_done(n) after the graph's walk passes node n starts each
// bucket whose weights' layers are all behind it; finish() starts the rest (all of them on a worker
// that had no rows), waits, and writes the averages. The buckets are fixed by the graph alone, so
// every worker starts the same sums in the same order.
// An Embedding layer's gradient (StrategyOptions::embedding_gradients) is not bucketed: finish()
// exchanges it on its own, dense or as its touched rows, after the buckets have started.
// finish() adds the step's wait time and bytes to Communicator::stats.
class GradientBuckets {
public:
    GradientBuckets(Communicator& comm, const FunctionalGraph& graph, const std::vector<VariablePtr>& variables,
                    int64_t rows);
    void node_done(size_t node);
    void finish();

private:
    struct Bucket {
        std::vector<size_t> variables;   // indices into variables_
        int64_t ready_after;             // started once the walk is past this node (-1: at finish)
        std::vector<float> buffer;       // gradients × rows, then one has-gradient flag each, then rows
        std::vector<const void*> sent;   // each gradient's storage when the bucket started
        bool started = false;
    };
    void start(Bucket& bucket);
    void exchange_embedding(Variable& v);
    void write_averages();
    Communicator& comm_;
    std::vector<VariablePtr> variables_;
    int64_t rows_;
    std::vector<Bucket> buckets_;     // in the order they start
    size_t next_ = 0;                 // the first bucket not started
    std::vector<size_t> embeddings_;  // Embedding weights, exchanged by exchange_embedding
    int64_t bucketed_embeddings_ = 0; // Embedding weights in the buckets (EmbeddingGradients::Dense)
    int64_t bytes_ = 0;               // this step's collective buffers
};

// The rule StrategyOptions::EmbeddingGradients::Auto applies to a [vocab, dim] embedding gradient:
// whether gathering every worker's touched rows (index + row: dim + 1 values, from `workers`
// workers, each at most `max_touched` rows) moves fewer bytes than all-reducing the whole table.
bool touched_rows_cheaper(int64_t max_touched, int64_t dim, int64_t vocab, int workers);

// The losses' and metrics' running sums and counts: `before` (the state before this batch, the same
// on every worker) plus every worker's part of this batch.
void sum_metrics(Communicator& comm, LossAndMetrics& metrics, const std::vector<double>& before);

// Each output's rows from every worker, in rank order (predict's shares put back together).
// trailing: each output's shape without the batch axis (the local rows' shape decides when the
// output has open axes).
std::vector<Tensor> gather_rows(Communicator& comm, const std::vector<Tensor>& mine);

}  // namespace keras::distribute
