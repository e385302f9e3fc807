#include "distribute/replicas.hpp"

#include <cstring>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "keras/errors.hpp"

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

void average_gradients(Communicator& comm, const std::vector<VariablePtr>& variables, int64_t rows) {
    if (comm.size() == 1) return;
    // One buffer: every gradient times this worker's rows, then per variable whether this worker has
    // a gradient for it, then the rows.
    size_t total = 0;
    for (const auto& v : variables) total += static_cast<size_t>(v->value.numel());
    std::vector<float> buffer(total + variables.size() + 1, 0.0f);
    size_t offset = 0;
    for (size_t i = 0; i < variables.size(); ++i) {
        const Variable& v = *variables[i];
        const auto n = static_cast<size_t>(v.value.numel());
        if (v.grad.defined()) {
            const Tensor g = v.grad.to(Device::cpu());
            const float* p = g.data<float>();
            for (size_t j = 0; j < n; ++j) buffer[offset + j] = p[j] * static_cast<float>(rows);
            buffer[total + i] = 1.0f;
        }
        offset += n;
    }
    buffer.back() = static_cast<float>(rows);
    comm.all_reduce_sum(buffer.data(), buffer.size(), "the gradients' all-reduce");
    const float all_rows = buffer.back();
    offset = 0;
    for (size_t i = 0; i < variables.size(); ++i) {
        Variable& v = *variables[i];
        const auto n = static_cast<size_t>(v.value.numel());
        if (buffer[total + i] > 0.0f && all_rows > 0.0f) {
            Tensor g(v.value.shape(), DType::float32);
            float* p = g.data<float>();
            for (size_t j = 0; j < n; ++j) p[j] = buffer[offset + j] / all_rows;
            v.grad = g.to(v.value.device());
        }
        offset += n;
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
