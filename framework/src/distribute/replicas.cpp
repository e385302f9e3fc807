#include "distribute/replicas.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "keras/errors.hpp"

#include "functional_graph.hpp"

namespace keras::distribute {

namespace {
// One line per layer (class, weight shapes) and one for the optimizer. Names are left out: two
// workers may number their layers differently ("dense_3") and still train the same model.
std::vector<std::string> describe(const Model& model) {
    std::vector<std::string> lines;
    const auto& layers = model.all_layers();
    for (size_t i = 0; i < layers.size(); ++i) {
        std::string line = fmt::format("layer {}: {}", i, layers[i]->class_name());
        for (const auto& w : layers[i]->weights()) line += " " + shape_str(w->value.shape());
        lines.push_back(line);
    }
    lines.push_back("optimizer: " + (model.compiled() ? model.optimizer().name() : std::string("none")));
    return lines;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The first line where mine differs from rank 0's, as a sentence; empty when they are the same.
std::string first_difference(const std::vector<std::string>& mine, const std::vector<std::string>& chief, int rank) {
    for (size_t i = 0; i < std::max(mine.size(), chief.size()); ++i) {
        const std::string a = i < mine.size() ? mine[i] : "(nothing: fewer layers)";
        const std::string b = i < chief.size() ? chief[i] : "(nothing: fewer layers)";
        if (a != b) return fmt::format("worker {} has \"{}\" where worker 0 has \"{}\"", rank, a, b);
    }
    return {};
}

std::string broadcast_string(Communicator& comm, std::string text, int root, const char* what) {
    int64_t size = static_cast<int64_t>(text.size());
    comm.broadcast(&size, sizeof size, root, what);
    text.resize(static_cast<size_t>(size));
    comm.broadcast(text.data(), text.size(), root, what);
    return text;
}
}  // namespace

void check_same_model(Communicator& comm, const Model& model) {
    if (comm.size() == 1) return;
    const auto mine = describe(model);
    const auto chief = split_lines(broadcast_string(comm, joined(mine), 0, "the model structure check's broadcast"));
    const std::string difference = first_difference(mine, chief, comm.rank());
    // The lowest rank with a difference tells every worker what it is.
    double first_bad = difference.empty() ? comm.size() : comm.rank();
    std::vector<double> ranks(static_cast<size_t>(comm.size()), 0.0);
    ranks[static_cast<size_t>(comm.rank())] = first_bad;
    comm.all_reduce_sum(ranks.data(), ranks.size(), "the model structure check");
    int bad = comm.size();
    for (double r : ranks) bad = std::min(bad, static_cast<int>(r));
    if (bad == comm.size()) return;
    const std::string message = broadcast_string(comm, difference, bad, "the model structure check's message");
    value_error("MultiWorkerMirroredStrategy: the workers do not build the same model \"{}\": {}. Every worker "
                "must run the same program with the same model", model.name(), message);
}

void broadcast_weights(Communicator& comm, Model& model) {
    if (comm.size() == 1) return;
    std::vector<Tensor> weights = model.get_weights();
    for (Tensor& w : weights) comm.broadcast(w.raw(), w.nbytes(), 0, "the broadcast of rank 0's weights");
    model.set_weights(weights);
}

int broadcast_int(Communicator& comm, int value, const char* what) {
    comm.broadcast(&value, sizeof value, 0, what);
    return value;
}

GradientBuckets::GradientBuckets(Communicator& comm, const FunctionalGraph& graph,
                                 const std::vector<VariablePtr>& variables, int64_t rows)
    : comm_(comm), variables_(variables), rows_(rows) {
    if (comm.size() == 1) return;
    // A weight's gradient is final once the walk (last node first) is past the first node of every
    // layer that holds it. A weight no layer lists waits for finish().
    std::vector<int64_t> ready(variables.size(), -1);
    std::vector<bool> embedding(variables.size(), false);
    const bool by_rows = comm.embedding_gradients != StrategyOptions::EmbeddingGradients::Dense;
    for (size_t n = graph.nodes.size(); n-- > 0;) {
        const auto& layer = graph.nodes[n]->layer;
        if (!layer) continue;
        for (const auto& w : layer->trainable_weights())
            for (size_t i = 0; i < variables.size(); ++i) {
                if (variables[i] != w) continue;
                ready[i] = static_cast<int64_t>(n);
                if (layer->class_name() == "Embedding" && w->value.ndim() == 2) embedding[i] = true;
            }
    }
    std::vector<size_t> order;
    for (size_t i = 0; i < variables.size(); ++i) {
        if (embedding[i] && by_rows) embeddings_.push_back(i);
        else order.push_back(i);
        if (embedding[i] && !by_rows) ++bucketed_embeddings_;
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ready[a] > ready[b]; });
    const size_t per_bucket = std::max<size_t>(1, comm.bucket_bytes / sizeof(float));
    size_t filled = 0;
    for (size_t i : order) {
        if (buckets_.empty() || filled >= per_bucket) {
            buckets_.push_back({});
            filled = 0;
        }
        buckets_.back().variables.push_back(i);
        buckets_.back().ready_after = ready[i];   // the smallest so far: order is by ready, descending
        filled += static_cast<size_t>(variables[i]->value.numel());
    }
}

void GradientBuckets::node_done(size_t node) {
    if (comm_.size() == 1) return;
    while (next_ < buckets_.size() && buckets_[next_].ready_after >= static_cast<int64_t>(node)) start(buckets_[next_++]);
    comm_.progress();
}

void GradientBuckets::start(Bucket& bucket) {
    size_t total = 0;
    for (size_t i : bucket.variables) total += static_cast<size_t>(variables_[i]->value.numel());
    bucket.buffer.assign(total + bucket.variables.size() + 1, 0.0f);
    size_t offset = 0;
    for (size_t k = 0; k < bucket.variables.size(); ++k) {
        const Variable& v = *variables_[bucket.variables[k]];
        const auto n = static_cast<size_t>(v.value.numel());
        bucket.sent.push_back(v.grad.defined() ? v.grad.raw() : nullptr);
        if (v.grad.defined()) {
            const Tensor g = v.grad.to(Device::cpu());
            const float* p = g.data<float>();
            for (size_t j = 0; j < n; ++j) bucket.buffer[offset + j] = p[j] * static_cast<float>(rows_);
            bucket.buffer[total + k] = 1.0f;
        }
        offset += n;
    }
    bucket.buffer.back() = static_cast<float>(rows_);
    bytes_ += static_cast<int64_t>(bucket.buffer.size() * sizeof(float));
    comm_.start_all_reduce_sum(bucket.buffer.data(), bucket.buffer.size(), "the gradients' all-reduce");
    bucket.started = true;
}

void GradientBuckets::finish() {
    if (comm_.size() == 1) return;
    const auto begin = std::chrono::steady_clock::now();
    while (next_ < buckets_.size()) start(buckets_[next_++]);
    // While the buckets travel (the collectives keep their order on every worker).
    for (size_t i : embeddings_) exchange_embedding(*variables_[i]);
    comm_.wait_all("the gradients' all-reduce");
    write_averages();
    CommunicationStats& stats = *comm_.stats;
    stats.steps += 1;
    stats.bytes += bytes_;
    stats.dense_embedding_exchanges += bucketed_embeddings_;
    stats.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
}

bool touched_rows_cheaper(int64_t max_touched, int64_t dim, int64_t vocab, int workers) {
    return max_touched * (dim + 1) * workers < vocab * dim;
}

namespace {
// The rows of a [vocab, dim] gradient with a nonzero value: the rows the batch touched (a touched
// row whose gradient is exactly zero adds nothing to the sum either).
std::vector<int64_t> nonzero_rows(const float* g, int64_t vocab, int64_t dim) {
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < vocab; ++r) {
        const float* row = g + r * dim;
        if (std::any_of(row, row + dim, [](float x) { return x != 0.0f; })) rows.push_back(r);
    }
    return rows;
}

// What every worker holds of one embedding gradient this step, summed over the workers: the same
// choice of exchange and the same divisor everywhere.
struct EmbeddingCounts {
    int64_t max_touched = 0;   // the most touched rows on one worker
    bool any_gradient = false;
    double all_rows = 0;       // the batch's rows
};

EmbeddingCounts agree_on_counts(Communicator& comm, size_t touched, bool has_gradient, int64_t rows) {
    std::vector<double> counts(static_cast<size_t>(3 * comm.size()), 0.0);
    const auto me = static_cast<size_t>(3 * comm.rank());
    counts[me] = static_cast<double>(touched);
    counts[me + 1] = has_gradient ? 1.0 : 0.0;
    counts[me + 2] = static_cast<double>(rows);
    comm.all_reduce_sum(counts.data(), counts.size(), "the embedding gradients' row counts");
    EmbeddingCounts all;
    for (size_t w = 0; w < counts.size(); w += 3) {
        all.max_touched = std::max(all.max_touched, static_cast<int64_t>(counts[w]));
        all.any_gradient = all.any_gradient || counts[w + 1] > 0;
        all.all_rows += counts[w + 2];
    }
    return all;
}

// One record per touched row: its index (int64), then its gradient × scale (dim floats).
std::vector<char> touched_rows_message(const float* g, const std::vector<int64_t>& touched, int64_t dim, float scale) {
    const size_t record = sizeof(int64_t) + static_cast<size_t>(dim) * sizeof(float);
    std::vector<char> message(touched.size() * record);
    std::vector<float> row(static_cast<size_t>(dim));
    for (size_t k = 0; k < touched.size(); ++k) {
        for (int64_t j = 0; j < dim; ++j) row[static_cast<size_t>(j)] = g[touched[k] * dim + j] * scale;
        std::memcpy(message.data() + k * record, &touched[k], sizeof(int64_t));
        std::memcpy(message.data() + k * record + sizeof(int64_t), row.data(), row.size() * sizeof(float));
    }
    return message;
}

// Adds every gathered record's row into out ([vocab, dim], zeroed), in the order gathered (rank order).
void add_touched_rows(const std::vector<char>& all, int64_t dim, float* out) {
    const size_t record = sizeof(int64_t) + static_cast<size_t>(dim) * sizeof(float);
    std::vector<float> row(static_cast<size_t>(dim));
    for (size_t at = 0; at + record <= all.size(); at += record) {
        int64_t r = 0;
        std::memcpy(&r, all.data() + at, sizeof r);
        std::memcpy(row.data(), all.data() + at + sizeof r, row.size() * sizeof(float));
        for (int64_t j = 0; j < dim; ++j) out[r * dim + j] += row[static_cast<size_t>(j)];
    }
}
}  // namespace

void GradientBuckets::exchange_embedding(Variable& v) {
    const int64_t vocab = v.value.dim(0), dim = v.value.dim(1);
    const Tensor mine = v.grad.defined() ? v.grad.to(Device::cpu()) : Tensor();
    const std::vector<int64_t> touched = mine.defined() ? nonzero_rows(mine.data<float>(), vocab, dim) : std::vector<int64_t>{};
    const EmbeddingCounts counts = agree_on_counts(comm_, touched.size(), mine.defined(), rows_);
    bytes_ += static_cast<int64_t>(3 * comm_.size() * sizeof(double));
    if (!counts.any_gradient || counts.all_rows == 0) return;   // as a bucket: no gradient anywhere, none after

    const bool by_rows = comm_.embedding_gradients == StrategyOptions::EmbeddingGradients::TouchedRows ||
                         touched_rows_cheaper(counts.max_touched, dim, vocab, comm_.size());
    // Each worker's gradient (the mean over its rows) × its rows, summed, over the batch's rows.
    const auto scale = static_cast<float>(rows_);
    const auto n = static_cast<size_t>(vocab * dim);
    Tensor sum = Tensor::zeros({vocab, dim});
    float* out = sum.data<float>();
    if (by_rows) {
        const float* g = mine.defined() ? mine.data<float>() : nullptr;   // none: no rows to send
        const std::vector<char> all = comm_.all_gather(touched_rows_message(g, touched, dim, scale),
                                                       "the embedding gradients' all-gather of touched rows");
        bytes_ += static_cast<int64_t>(all.size());
        add_touched_rows(all, dim, out);
        comm_.stats->touched_rows_exchanges += 1;
    } else {
        if (mine.defined())
            for (size_t j = 0; j < n; ++j) out[j] = mine.data<float>()[j] * scale;
        comm_.all_reduce_sum(out, n, "the embedding gradients' all-reduce");
        bytes_ += static_cast<int64_t>(n * sizeof(float));
        comm_.stats->dense_embedding_exchanges += 1;
    }
    const auto divisor = static_cast<float>(counts.all_rows);
    for (size_t j = 0; j < n; ++j) out[j] /= divisor;
    v.grad = sum.to(v.value.device());
}

void GradientBuckets::write_averages() {
    for (const Bucket& bucket : buckets_) {
        const size_t total = bucket.buffer.size() - bucket.variables.size() - 1;
        const float all_rows = bucket.buffer.back();
        size_t offset = 0;
        for (size_t k = 0; k < bucket.variables.size(); ++k) {
            Variable& v = *variables_[bucket.variables[k]];
            const auto n = static_cast<size_t>(v.value.numel());
            // A weight that a layer other than its own reads gains gradient later than its layer's
            // backward: its bucket went out too early.
            if (bucket.sent[k] != (v.grad.defined() ? v.grad.raw() : nullptr))
                runtime_error("distributed training: weight '{}' received gradient after its layer's backward pass "
                              "(is it read by another layer?); its all-reduce had started. Pass it through its own "
                              "layer", v.name);
            if (bucket.buffer[total + k] > 0.0f && all_rows > 0.0f) {
                Tensor g(v.value.shape(), DType::float32);
                float* p = g.data<float>();
                for (size_t j = 0; j < n; ++j) p[j] = bucket.buffer[offset + j] / all_rows;
                v.grad = g.to(v.value.device());
            }
            offset += n;
        }
    }
}

void sum_metrics(Communicator& comm, LossAndMetrics& metrics, const std::vector<double>& before) {
    if (comm.size() == 1) return;
    std::vector<double> part = metrics.state();
    if (part.size() != before.size())
        runtime_error("distributed training: the compiled metrics changed during a batch ({} values, then {})",
                      before.size(), part.size());
    for (size_t i = 0; i < part.size(); ++i) part[i] -= before[i];
    comm.all_reduce_sum(part.data(), part.size(), "the losses' and metrics' all-reduce");
    for (size_t i = 0; i < part.size(); ++i) part[i] += before[i];
    metrics.set_state(part);
}

std::vector<Tensor> gather_rows(Communicator& comm, const std::vector<Tensor>& mine) {
    std::vector<Tensor> out;
    for (const Tensor& local : mine) {
        // Each worker sends its rank (ndim, then the shape) and its rows' bytes.
        const Tensor t = local.to(Device::cpu());
        std::vector<char> message(sizeof(int64_t) * (1 + t.shape().size()) + t.nbytes());
        const auto ndim = static_cast<int64_t>(t.shape().size());
        std::memcpy(message.data(), &ndim, sizeof ndim);
        std::memcpy(message.data() + sizeof ndim, t.shape().data(), sizeof(int64_t) * t.shape().size());
        std::memcpy(message.data() + sizeof(int64_t) * (1 + t.shape().size()), t.raw(), t.nbytes());
        const std::vector<char> all = comm.all_gather(message, "predict's gather of the outputs");
        // Two passes: the shapes (rows add up; the rest must agree where there are rows), then the bytes.
        Shape shape = t.shape();
        shape[0] = 0;
        std::vector<std::pair<size_t, size_t>> parts;   // (offset, bytes) of each worker's rows
        for (size_t at = 0; at < all.size();) {
            int64_t n = 0;
            std::memcpy(&n, all.data() + at, sizeof n);
            Shape s(static_cast<size_t>(n));
            std::memcpy(s.data(), all.data() + at + sizeof n, sizeof(int64_t) * s.size());
            const size_t header = sizeof(int64_t) * (1 + s.size());
            const size_t bytes = static_cast<size_t>(num_elements(s)) * dtype_size(t.dtype());
            if (s[0] > 0 && t.dim(0) > 0 && !std::equal(s.begin() + 1, s.end(), t.shape().begin() + 1, t.shape().end()))
                runtime_error("predict(): the workers' outputs have rows of shapes {} and {}", shape_str(s),
                              shape_str(t.shape()));
            if (s[0] > 0 && t.dim(0) == 0) std::copy(s.begin() + 1, s.end(), shape.begin() + 1);
            shape[0] += s[0];
            parts.emplace_back(at + header, bytes);
            at += header + bytes;
        }
        Tensor whole(shape, t.dtype());
        size_t written = 0;
        for (const auto& [at, bytes] : parts) {
            std::memcpy(static_cast<char*>(whole.raw()) + written, all.data() + at, bytes);
            written += bytes;
        }
        out.push_back(whole);
    }
    return out;
}

}  // namespace keras::distribute
