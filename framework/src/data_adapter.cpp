#include "data_adapter.hpp"
#include "distribute/communicator.hpp"

#include <algorithm>
#include <cmath>

#include "keras/errors.hpp"
#include "keras/random.hpp"

namespace keras::data_adapter {

namespace {
Arrays slice_of(const Arrays& arrays, int64_t begin, int64_t end) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.slice_rows(begin, end));
    return out;
}
Arrays rows_of(const Arrays& arrays, const std::vector<int64_t>& rows) {
    Arrays out;
    for (const auto& a : arrays) out.push_back(a.gather_rows(rows));
    return out;
}
}  // namespace

void check_batch_size(int64_t batch_size) {
    if (batch_size <= 0) value_error("Invalid `batch_size`: {}. It must be a positive integer.", batch_size);
}

TrainValidation train_validation_split(const Arrays& x, const Arrays& y, double validation_split) {
    const int64_t n = x[0].dim(0);
    const auto split_at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - validation_split)));
    if (split_at == 0 || split_at == n)
        value_error("Training data contains {} samples, which is not sufficient to split it into a validation and "
                    "training set as specified by `validation_split={}`. Either provide more data, or a different "
                    "value for the `validation_split` argument.", n, validation_split);
    return {slice_of(x, 0, split_at), slice_of(y, 0, split_at), slice_of(x, split_at, n), slice_of(y, split_at, n)};
}

EpochIterator::EpochIterator(Arrays x, Arrays y, int64_t batch_size, bool shuffle)
    : x_(std::move(x)), y_(std::move(y)), batch_size_(batch_size), num_samples_(x_.at(0).dim(0)), shuffle_(shuffle) {
    check_batch_size(batch_size);
    start_epoch_in_order();
}

void EpochIterator::start_epoch_in_order() {
    std::vector<int64_t> order(static_cast<size_t>(num_samples_));
    for (int64_t i = 0; i < num_samples_; ++i) order[static_cast<size_t>(i)] = i;
    cut(order);
}

void EpochIterator::start_epoch() {
    if (shuffle_) cut(random::permutation(num_samples_));
    else start_epoch_in_order();
}

void EpochIterator::shard(int rank, int size) {
    for (auto& rows : batches_) {
        const auto share = distribute::share_of(static_cast<int64_t>(rows.size()), rank, size);
        rows = std::vector<int64_t>(rows.begin() + share.begin, rows.begin() + share.end);
    }
}

void EpochIterator::cut(const std::vector<int64_t>& order) {
    batches_.clear();
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size_)) {
        const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size_));
        batches_.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                              order.begin() + static_cast<std::ptrdiff_t>(end));
    }
}

Batch EpochIterator::batch(int64_t step) const {
    const auto& rows = batches_.at(static_cast<size_t>(step));
    return {rows_of(x_, rows), rows_of(y_, rows)};
}

}  // namespace keras::data_adapter
