// SimpleRNN / LSTM / GRU on cuDNN 9's v8 RNN API (cudnnRNNForward, cudnnRNNBackwardData_v8,
// cudnnRNNBackwardWeights_v8).
//
// What stays in here (the layers never see it):
// - Keras's weights are copied into cuDNN's weight space by a plan (rnn_weight_layout.hpp: gate
//   blocks per linLayerID, transposed, GRU z/r swap, LSTM single bias in the W slot) in one kernel
//   every forward, and the weight-space gradients copied back the same way.
// - CUDNN_FMA_MATH: strict fp32 (the default may use TF32, ~1e-3 relative error).
// - Padded I/O, BATCH_MAJOR_UNPACKED: Keras's (N, T, C) as is, with per-sample lengths (all T
//   unless the caller gives them: masked layers). cuDNN needs every length >= 1: a sample of length
//   0 runs one step and its states and their gradients are then taken from / given to h0 / c0.
// - go_backwards: each sample's valid steps are reversed and run forward, which leaves the outputs
//   in Keras's processing order; dx is reversed back.
// - cuDNN's weight gradients ADD into dweightSpace (the only mode): it starts zeroed every step.
// - Specs cuDNN cannot express (hard_sigmoid or other activations, GRU reset_after=False) run on the
//   CPU backend through a host round trip, named as such by rnn_path(). So does a forward with
//   dropout masks (cuDNN cannot mask h_{t-1} or x_t per gate and step): the CPU step loop applies them.
// - Descriptors, weight-space offsets and space sizes are cached by shape; the per-call buffers
//   (packed weights, workspace, reserve space) come from the caching allocator.
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "keras/errors.hpp"
#include "lru_cache.hpp"
#include "rnn_kernels.hpp"
#include "rnn_weight_layout.hpp"

namespace keras::backend {

namespace {

const float* f32(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.raw()) : nullptr; }
float* f32(Tensor& t) { return t.defined() ? static_cast<float*>(t.raw()) : nullptr; }

cudnnRNNMode_t cell_mode(const RnnSpec& spec) {
    switch (spec.cell) {
        case RnnCell::simple_rnn: return spec.activation == Activation::relu ? CUDNN_RNN_RELU : CUDNN_RNN_TANH;
        case RnnCell::lstm: return CUDNN_LSTM;
        case RnnCell::gru: return CUDNN_GRU;
    }
    runtime_error("unknown RNN cell");
}

const char* mode_name(cudnnRNNMode_t mode) {
    switch (mode) {
        case CUDNN_RNN_RELU: return "rnn_relu";
        case CUDNN_RNN_TANH: return "rnn_tanh";
        case CUDNN_LSTM: return "lstm";
        case CUDNN_GRU: return "gru";
    }
    return "?";
}

// A float32 device buffer of at least `bytes` bytes (cuDNN's spaces are byte counts).
Tensor device_bytes(size_t bytes, Device device) {
    return Tensor({static_cast<int64_t>((bytes + 3) / 4)}, DType::float32, device);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Descriptors: one RNN descriptor per (mode, bias, N, T, C, H), plus data descriptors per lengths.
// ---------------------------------------------------------------------------------------------
struct CudnnRnnKey {
    cudnnRNNMode_t mode;
    bool use_bias;
    int64_t N, T, C, H;
    auto operator<=>(const CudnnRnnKey&) const = default;
};

// x / y data descriptors for one set of sequence lengths, with the lengths on the device.
struct CudnnSeqDescs {
    cudnnRNNDataDescriptor_t x = nullptr, y = nullptr;
    std::vector<int32_t> lengths;   // host copy (cuDNN reads the descriptor's copy)
    Tensor device_lengths;          // int32 (N) on the GPU, for the calls' devSeqLengths
    CudnnSeqDescs() = default;
    CudnnSeqDescs(const CudnnSeqDescs&) = delete;
    CudnnSeqDescs& operator=(const CudnnSeqDescs&) = delete;
    ~CudnnSeqDescs() {
        if (x) cudnnDestroyRNNDataDescriptor(x);
        if (y) cudnnDestroyRNNDataDescriptor(y);
    }
};

// Everything built once for a shape.
struct CudnnRnn {
    CudnnRnnKey key;
    cudnnRNNDescriptor_t rnn = nullptr;
    cudnnDropoutDescriptor_t dropout = nullptr;
    cudnnTensorDescriptor_t state = nullptr;   // h and c: (layers * directions = 1, N, H)
    size_t weight_bytes = 0, work_bytes_training = 0, work_bytes_inference = 0, reserve_bytes = 0;
    std::vector<cudnn_layout::CudnnOffsets> offsets;   // per linLayerID, in floats
    std::shared_ptr<CudnnSeqDescs> full_lengths;             // every sample T steps long
    Tensor zero_sequences;                               // (N, T, H) zeros: a missing d_sequences

    CudnnRnn() = default;
    CudnnRnn(const CudnnRnn&) = delete;
    CudnnRnn& operator=(const CudnnRnn&) = delete;
    ~CudnnRnn() {
        if (rnn) cudnnDestroyRNNDescriptor(rnn);
        if (dropout) cudnnDestroyDropoutDescriptor(dropout);
        if (state) cudnnDestroyTensorDescriptor(state);
    }
};

// Capacity of the descriptor cache (least recently used shapes go first): predict over many batch
// sizes must not keep one entry per size.
constexpr size_t kRnnCacheCapacity = 32;

struct CudaBackend::RnnCache {
    std::mutex mutex;
    // Forward results hold their own entry (CudnnSaved::rnn), so an evicted one lives until their backward.
    LruCache<CudnnRnnKey, std::shared_ptr<CudnnRnn>> entries{kRnnCacheCapacity};
};

namespace {

std::shared_ptr<CudnnSeqDescs> make_seq_descs(const CudnnRnnKey& k, std::vector<int32_t> lengths, Device device) {
    auto s = std::make_shared<CudnnSeqDescs>();
    s->lengths = std::move(lengths);
    float fill = 0.0f;   // padded output steps read 0
    CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&s->x));
    CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&s->y));
    CUDNN_CHECK(cudnnSetRNNDataDescriptor(s->x, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
                                          static_cast<int>(k.T), static_cast<int>(k.N), static_cast<int>(k.C),
                                          s->lengths.data(), &fill));
    CUDNN_CHECK(cudnnSetRNNDataDescriptor(s->y, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
                                          static_cast<int>(k.T), static_cast<int>(k.N), static_cast<int>(k.H),
                                          s->lengths.data(), &fill));
    s->device_lengths = Tensor(s->lengths, {k.N}).to(device);
    return s;
}

// Where cuDNN keeps each linLayerID's matrix and bias, in floats from the weight space start,
// checking the matrix shapes are the (H, in) the plan assumes.
std::vector<cudnn_layout::CudnnOffsets> weight_offsets(cudnnHandle_t handle, CudnnRnn& r, int G, Device device) {
    Tensor space = device_bytes(r.weight_bytes, device);   // cuDNN computes addresses inside a real space
    const char* base = static_cast<const char*>(space.raw());
    cudnnTensorDescriptor_t m = nullptr, b = nullptr;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&m));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
    std::vector<cudnn_layout::CudnnOffsets> out(2 * G);
    try {
        for (int id = 0; id < 2 * G; ++id) {
            void *m_addr = nullptr, *b_addr = nullptr;
            CUDNN_CHECK(cudnnGetRNNWeightParams(handle, r.rnn, 0, r.weight_bytes, space.raw(), id, m, &m_addr, b,
                                                &b_addr));
            cudnnDataType_t type;
            int nb = 0, dims[4] = {0, 0, 0, 0}, strides[4];
            CUDNN_CHECK(cudnnGetTensorNdDescriptor(m, 4, &type, &nb, dims, strides));
            // The matrix is (rows, cols) in its last two dims (cuDNN 9 reports (1, H, in)).
            const int64_t rows = nb >= 2 ? dims[nb - 2] : 0, cols = nb >= 2 ? dims[nb - 1] : 0;
            const int64_t in = id < G ? r.key.C : r.key.H;
            if (rows != r.key.H || cols != in || !m_addr || !b_addr)
                runtime_error("cuDNN weight matrix {} is ({}, {}), expected ({}, {})", id, rows, cols, r.key.H, in);
            out[id] = {.matrix = (static_cast<const char*>(m_addr) - base) / 4,
                       .bias = (static_cast<const char*>(b_addr) - base) / 4};
        }
    } catch (...) {
        cudnnDestroyTensorDescriptor(m);
        cudnnDestroyTensorDescriptor(b);
        throw;
    }
    cudnnDestroyTensorDescriptor(m);
    cudnnDestroyTensorDescriptor(b);
    return out;
}

std::shared_ptr<CudnnRnn> build_rnn(cudnnHandle_t handle, const CudnnRnnKey& k, int G, Device device) {
    auto r = std::make_shared<CudnnRnn>();
    r->key = k;
    CUDNN_CHECK(cudnnCreateDropoutDescriptor(&r->dropout));
    // p = 0 and no RNG states: one layer has no dropout between layers anyway.
    CUDNN_CHECK(cudnnSetDropoutDescriptor(r->dropout, handle, 0.0f, nullptr, 0, 0));
    CUDNN_CHECK(cudnnCreateRNNDescriptor(&r->rnn));
    CUDNN_CHECK(cudnnSetRNNDescriptor_v8(r->rnn, CUDNN_RNN_ALGO_STANDARD, k.mode, CUDNN_RNN_DOUBLE_BIAS,
                                         CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT,
                                         CUDNN_FMA_MATH, static_cast<int32_t>(k.C), static_cast<int32_t>(k.H),
                                         static_cast<int32_t>(k.H), 1, r->dropout, CUDNN_RNN_PADDED_IO_ENABLED));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&r->state));
    const int dims[3] = {1, static_cast<int>(k.N), static_cast<int>(k.H)};
    const int strides[3] = {static_cast<int>(k.N * k.H), static_cast<int>(k.H), 1};
    CUDNN_CHECK(cudnnSetTensorNdDescriptor(r->state, CUDNN_DATA_FLOAT, 3, dims, strides));
    CUDNN_CHECK(cudnnGetRNNWeightSpaceSize(handle, r->rnn, &r->weight_bytes));
    r->full_lengths = make_seq_descs(k, std::vector<int32_t>(static_cast<size_t>(k.N), static_cast<int32_t>(k.T)),
                                     device);
    CUDNN_CHECK(cudnnGetRNNTempSpaceSizes(handle, r->rnn, CUDNN_FWD_MODE_TRAINING, r->full_lengths->x,
                                          &r->work_bytes_training, &r->reserve_bytes));
    size_t no_reserve = 0;
    CUDNN_CHECK(cudnnGetRNNTempSpaceSizes(handle, r->rnn, CUDNN_FWD_MODE_INFERENCE, r->full_lengths->x,
                                          &r->work_bytes_inference, &no_reserve));
    r->offsets = weight_offsets(handle, *r, G, device);
    return r;
}

cuda_kernels::PackSource pack_source(cudnn_layout::Source s) {
    switch (s) {
        case cudnn_layout::Source::kernel: return cuda_kernels::PackSource::kernel;
        case cudnn_layout::Source::recurrent_kernel: return cuda_kernels::PackSource::recurrent_kernel;
        case cudnn_layout::Source::bias: return cuda_kernels::PackSource::bias;
        case cudnn_layout::Source::zero: return cuda_kernels::PackSource::zero;
    }
    return cuda_kernels::PackSource::zero;
}

// The plan in the kernels' C++17 terms.
std::vector<cuda_kernels::PackBlock> pack_blocks(const std::vector<cudnn_layout::Block>& plan) {
    std::vector<cuda_kernels::PackBlock> out;
    for (const auto& b : plan)
        out.push_back({pack_source(b.source), b.dst_offset, b.rows, b.cols, b.src_col, b.src_ld});
    return out;
}

// What the backward pass needs from its forward (kept in RnnForward::saved).
struct CudnnSaved {
    std::shared_ptr<CudnnRnn> rnn;
    std::vector<int64_t> empty_samples;   // samples of length 0 (run as length 1 for cuDNN)
    std::shared_ptr<CudnnSeqDescs> seq;
    std::vector<cuda_kernels::PackBlock> plan;
    Tensor x;               // the input as cuDNN saw it (valid steps reversed for go_backwards)
    Tensor h0, c0;          // undefined: zeros
    Tensor weight_space;    // the packed weights the forward used
    Tensor reserve;         // consumed by the backward pass
};
using CudnnSavedPtr = std::shared_ptr<CudnnSaved>;

// A spec cuDNN cannot run: the CPU backend's forward on host copies, kept for its backward.
struct HostSaved {
    RnnForward cpu;
    RnnWeights cpu_weights;
};
using HostSavedPtr = std::shared_ptr<HostSaved>;

Tensor to_host(const Tensor& t) { return t.defined() ? t.to(Device::cpu()) : Tensor(); }
Tensor to_device(const Tensor& t, Device d) { return t.defined() ? t.to(d) : Tensor(); }

RnnWeights weights_to(const RnnWeights& w, Device d) {
    return {to_device(w.kernel, d), to_device(w.recurrent_kernel, d), to_device(w.bias, d)};
}

// The CPU backend runs the spec on host copies; the results come back to the device.
RnnForward host_round_trip_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                   const Tensor& c0, bool training, const RnnDropoutMasks& masks,
                                   const std::vector<int32_t>& lengths, Device device) {
    auto saved = std::make_shared<HostSaved>();
    saved->cpu_weights = weights_to(w, Device::cpu());
    saved->cpu = get(Device::cpu()).rnn_forward(spec, x.to(Device::cpu()), saved->cpu_weights, to_host(h0),
                                                spec.cell == RnnCell::lstm ? to_host(c0) : Tensor(), training,
                                                RnnDropoutMasks{to_host(masks.input), to_host(masks.recurrent)}, lengths);
    RnnForward out{.sequences = saved->cpu.sequences.to(device), .h = saved->cpu.h.to(device),
                   .c = to_device(saved->cpu.final_c(), device), .saved = {}};
    if (training) out.saved = saved;
    return out;
}

// Row n of the (N, H) tensor dst := row n of src (undefined src: zeros), for each n in rows.
void set_rows(DeviceMemory& memory, Tensor& dst, const Tensor& src, const std::vector<int64_t>& rows) {
    const size_t row_bytes = sizeof(float) * static_cast<size_t>(dst.dim(-1));
    for (const int64_t n : rows) {
        char* to = static_cast<char*>(dst.raw()) + n * row_bytes;
        if (src.defined()) memory.copy_on_device(to, static_cast<const char*>(src.raw()) + n * row_bytes, row_bytes);
        else memory.set_zero(to, row_bytes);
    }
}

// A copy of t ((N, H) or (N, T, H), undefined stays undefined) with sample n's first row zeroed for
// each n in rows: for length-0 samples, whose one cuDNN step must receive no gradient.
Tensor without_rows(DeviceMemory& memory, const Tensor& t, const std::vector<int64_t>& rows) {
    if (!t.defined() || rows.empty()) return t;
    Tensor out = t.clone();
    const size_t sample_bytes = sizeof(float) * static_cast<size_t>(t.numel() / t.dim(0));
    const size_t row_bytes = sizeof(float) * static_cast<size_t>(t.dim(-1));
    for (const int64_t n : rows) memory.set_zero(static_cast<char*>(out.raw()) + n * sample_bytes, row_bytes);
    return out;
}

}  // namespace

// cuDNN's padded I/O gives exact states at every length; the step loop is the CPU backend's,
// through a host round trip.
RnnPath CudaBackend::rnn_path(const RnnSpec& spec) {
    const std::string reason = cudnn_layout::unsupported_reason(spec);
    return rnn_path_for(spec, {.fused = reason.empty() ? fmt::format("cuDNN {}", mode_name(cell_mode(spec))) : "",
                               .unsupported = reason,
                               .step_loop = "CPU fallback (host round trip)",
                               .dropout_step_loop = "CPU fallback loop (host round trip)"});
}

RnnForward CudaBackend::rnn_forward(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0,
                                    const Tensor& c0, bool training, const RnnDropoutMasks& masks,
                                    const std::vector<int32_t>& lengths) {
    check_rnn_inputs(spec, x, w, h0, c0, device());
    check_rnn_lengths(spec, lengths, x.dim(0), x.dim(1));
    const bool lstm = spec.cell == RnnCell::lstm;
    if (runs_step_loop(rnn_path(spec), masks))
        return host_round_trip_forward(spec, x, w, h0, c0, training, masks, lengths, device());

    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units;
    const int G = cudnn_layout::gate_count(spec.cell);
    std::vector<int32_t> cudnn_lengths = lengths;
    std::vector<int64_t> empty_samples;
    for (size_t n = 0; n < lengths.size(); ++n)
        if (lengths[n] == 0) {
            cudnn_lengths[n] = 1;
            empty_samples.push_back(static_cast<int64_t>(n));
        }
    make_current();
    if (!rnn_cache_) rnn_cache_ = std::make_shared<RnnCache>();
    std::lock_guard lock(rnn_cache_->mutex);
    const CudnnRnnKey key{cell_mode(spec), spec.use_bias, N, T, C, H};
    const std::shared_ptr<CudnnRnn> slot =
        rnn_cache_->entries.get_or_create(key, [&] { return build_rnn(cudnn_, key, G, device()); });
    CudnnRnn& rnn = *slot;

    auto saved = std::make_shared<CudnnSaved>();
    saved->rnn = slot;
    saved->seq = lengths.empty() ? rnn.full_lengths : make_seq_descs(key, cudnn_lengths, device());
    saved->empty_samples = empty_samples;
    saved->plan = pack_blocks(cudnn_layout::pack_plan(spec, C, rnn.offsets));
    saved->h0 = h0;
    saved->c0 = lstm ? c0 : Tensor();
    saved->weight_space = device_bytes(rnn.weight_bytes, device());
    cuda_kernels::pack_rnn_weights(saved->plan, f32(w.kernel), f32(w.recurrent_kernel),
                                   spec.use_bias ? f32(w.bias) : nullptr, f32(saved->weight_space), stream_);
    if (spec.go_backwards) {
        saved->x = Tensor(x.shape(), DType::float32, device());
        cuda_kernels::reverse_valid_steps(f32(x), f32(saved->x),
                                          static_cast<const int32_t*>(saved->seq->device_lengths.raw()), N, T, C,
                                          stream_);
    } else {
        saved->x = x;
    }

    RnnForward out;
    out.sequences = Tensor({N, T, H}, DType::float32, device());
    out.h = Tensor({N, H}, DType::float32, device());
    if (lstm) out.c = Tensor({N, H}, DType::float32, device());
    const size_t work_bytes = training ? rnn.work_bytes_training : rnn.work_bytes_inference;
    Tensor work = device_bytes(work_bytes, device());
    if (training) saved->reserve = device_bytes(rnn.reserve_bytes, device());
    CUDNN_CHECK(cudnnRNNForward(cudnn_, rnn.rnn, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                static_cast<const int32_t*>(saved->seq->device_lengths.raw()), saved->seq->x,
                                f32(saved->x), saved->seq->y, f32(out.sequences), rnn.state, f32(h0), f32(out.h),
                                rnn.state, lstm ? f32(c0) : nullptr, lstm ? f32(out.c) : nullptr, rnn.weight_bytes,
                                f32(saved->weight_space), work_bytes, f32(work),
                                training ? rnn.reserve_bytes : 0, training ? f32(saved->reserve) : nullptr));
    // Length-0 samples: their final states are the initial ones.
    set_rows(*this, out.h, h0, empty_samples);
    if (lstm) set_rows(*this, out.c, c0, empty_samples);
    if (training) out.saved = saved;
    return out;
}

RnnGradients CudaBackend::rnn_backward(const RnnSpec& spec, const RnnWeights& w, RnnForward& fwd,
                                       const Tensor& d_sequences, const Tensor& dh, const Tensor& dc) {
    if (!fwd.saved.has_value())
        runtime_error("Layer \"{}\": rnn_backward needs a forward pass run with training=true", spec.layer_name);
    if (auto* host = std::any_cast<HostSavedPtr>(&fwd.saved)) {
        HostSaved& s = **host;
        RnnGradients g = get(Device::cpu()).rnn_backward(spec, s.cpu_weights, s.cpu, to_host(d_sequences),
                                                         to_host(dh), to_host(dc));
        return RnnGradients{.dx = g.dx.to(device()), .dh0 = to_device(g.dh0, device()),
                            .dc0 = to_device(g.dc0, device()), .dweights = weights_to(g.dweights, device())};
    }
    auto* saved_ptr = std::any_cast<CudnnSavedPtr>(&fwd.saved);
    if (!saved_ptr) runtime_error("Layer \"{}\": this forward pass was not run by the CUDA backend", spec.layer_name);
    CudnnSaved& saved = **saved_ptr;
    if (!saved.reserve.defined())
        runtime_error("Layer \"{}\": this forward pass was already used by a backward pass (a fused RNN forward serves one backward: run the layer again, or ask a persistent GradientTape for its gradients in one call)", spec.layer_name);
    make_current();
    std::lock_guard lock(rnn_cache_->mutex);
    CudnnRnn& rnn = *saved.rnn;
    const CudnnRnnKey& k = rnn.key;
    const bool lstm = k.mode == CUDNN_LSTM;
    if (!d_sequences.defined() && !rnn.zero_sequences.defined())
        rnn.zero_sequences = Tensor::zeros({k.N, k.T, k.H}, DType::float32, device());
    // Length-0 samples ran one step for cuDNN: it gets no gradient; dh / dc go straight to dh0 / dc0.
    const std::vector<int64_t>& empty = saved.empty_samples;
    const Tensor dy = d_sequences.defined() ? without_rows(*this, d_sequences, empty) : rnn.zero_sequences;
    const Tensor dh_run = without_rows(*this, dh, empty), dc_run = without_rows(*this, dc, empty);
    const int32_t* lengths = static_cast<const int32_t*>(saved.seq->device_lengths.raw());

    RnnGradients g;
    // Padding steps get no gradient from cuDNN: zeros there when some sample is shorter than T.
    const bool padded = saved.seq != rnn.full_lengths;
    g.dx = padded ? Tensor::zeros({k.N, k.T, k.C}, DType::float32, device())
                  : Tensor({k.N, k.T, k.C}, DType::float32, device());
    g.dh0 = Tensor({k.N, k.H}, DType::float32, device());
    if (lstm) g.dc0 = Tensor({k.N, k.H}, DType::float32, device());
    Tensor work = device_bytes(rnn.work_bytes_training, device());
    CUDNN_CHECK(cudnnRNNBackwardData_v8(cudnn_, rnn.rnn, lengths, saved.seq->y, f32(fwd.sequences), f32(dy),
                                        saved.seq->x, f32(g.dx), rnn.state, f32(saved.h0), f32(dh_run), f32(g.dh0),
                                        rnn.state, lstm ? f32(saved.c0) : nullptr, lstm ? f32(dc_run) : nullptr,
                                        lstm ? f32(g.dc0) : nullptr, rnn.weight_bytes, f32(saved.weight_space),
                                        rnn.work_bytes_training, f32(work), rnn.reserve_bytes, f32(saved.reserve)));
    // ADD is cuDNN's only mode: the gradient space starts at zero.
    Tensor dweight_space = Tensor::zeros({static_cast<int64_t>((rnn.weight_bytes + 3) / 4)}, DType::float32, device());
    CUDNN_CHECK(cudnnRNNBackwardWeights_v8(cudnn_, rnn.rnn, CUDNN_WGRAD_MODE_ADD, lengths, saved.seq->x, f32(saved.x),
                                           rnn.state, f32(saved.h0), saved.seq->y, f32(fwd.sequences),
                                           rnn.weight_bytes, f32(dweight_space), rnn.work_bytes_training, f32(work),
                                           rnn.reserve_bytes, f32(saved.reserve)));
    saved.reserve = Tensor();   // spent: one backward per forward
    set_rows(*this, g.dh0, dh, empty);
    if (lstm) set_rows(*this, g.dc0, dc, empty);

    g.dweights.kernel = Tensor(w.kernel.shape(), DType::float32, device());
    g.dweights.recurrent_kernel = Tensor(w.recurrent_kernel.shape(), DType::float32, device());
    if (spec.use_bias) g.dweights.bias = Tensor(w.bias.shape(), DType::float32, device());
    cuda_kernels::unpack_rnn_gradients(saved.plan, f32(dweight_space), f32(g.dweights.kernel),
                                       f32(g.dweights.recurrent_kernel), f32(g.dweights.bias), stream_);
    if (spec.go_backwards) {
        Tensor dx(g.dx.shape(), DType::float32, device());
        cuda_kernels::reverse_valid_steps(f32(g.dx), f32(dx), lengths, k.N, k.T, k.C, stream_);
        g.dx = dx;
    }
    return g;
}

}  // namespace keras::backend
