// What a distributed model does with its communicator around fit / evaluate / predict (trainer.cpp):
// the start-up check that every worker has the same model, rank 0's weights for everyone, the
// gradients' average and the metrics' sums after each batch, and predict's rows gathered.
#pragma once

#include <cstdint>
#include <vector>

#include "keras/model.hpp"
#include "keras/variable.hpp"

#include "distribute/communicator.hpp"
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
// `rows` samples) weighted by its rows, summed in one fused all-reduce, divided by the batch's rows.
// A variable no worker has a gradient for keeps none (the optimizer skips it, as in one process).
void average_gradients(Communicator& comm, const std::vector<VariablePtr>& variables, int64_t rows);

// The losses' and metrics' running sums and counts: `before` (the state before this batch, the same
// on every worker) plus every worker's part of this batch.
void sum_metrics(Communicator& comm, LossAndMetrics& metrics, const std::vector<double>& before);

// Each output's rows from every worker, in rank order (predict's shares put back together).
// trailing: each output's shape without the batch axis (the local rows' shape decides when the
// output has open axes).
std::vector<Tensor> gather_rows(Communicator& comm, const std::vector<Tensor>& mine);

}  // namespace keras::distribute
