// fit / evaluate / predict's data in batches (Keras's ArrayDataAdapter and EpochIterator): host
// arrays sliced into batches of rows, in order or shuffled per epoch, and validation_split.
#pragma once

#include <cstdint>
#include <vector>

#include "keras/model.hpp"
#include "keras/tensor.hpp"

namespace keras::data_adapter {

using Arrays = std::vector<Tensor>;

// Keras's "Invalid `batch_size`" ValueError for batch_size <= 0.
void check_batch_size(int64_t batch_size);

// validation_split: the LAST fraction of every array is the validation data, taken before any
// shuffling (Keras's train_validation_split); the split must leave samples on both sides.
struct TrainValidation {
    Arrays x_train, y_train, x_val, y_val;
};
TrainValidation train_validation_split(const Arrays& x, const Arrays& y, double validation_split);

// The batches of one pass over the data (x: one array per input, y: one per output, or none for
// predict). Each epoch's order is drawn when it starts: shuffled from the current random stream
// (fit seeds it per epoch first, so a resumed run draws the same order), or in order.
class EpochIterator {
public:
    EpochIterator(Arrays x, Arrays y, int64_t batch_size, bool shuffle);
    int64_t num_samples() const { return num_samples_; }
    int64_t num_batches() const { return (num_samples_ + batch_size_ - 1) / batch_size_; }
    // Draws the epoch's order (a permutation when shuffling) and cuts it into batches.
    void start_epoch();
    // Keeps worker `rank`'s share of each batch of the epoch (distribute::share_of): the workers'
    // shares of a batch put together are the batch. Called after start_epoch().
    void shard(int rank, int size);
    // Batch `step` of the current epoch: the arrays' rows, on the host.
    Batch batch(int64_t step) const;
    int64_t batch_rows(int64_t step) const { return static_cast<int64_t>(batches_.at(step).size()); }

private:
    void start_epoch_in_order();
    void cut(const std::vector<int64_t>& order);
    Arrays x_, y_;
    int64_t batch_size_, num_samples_;
    bool shuffle_;
    std::vector<std::vector<int64_t>> batches_;
};

}  // namespace keras::data_adapter
