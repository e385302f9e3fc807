// The parts of the backend contract every backend shares (declared in keras/backend.hpp): the RNN
// input checks and the rule of which spec runs fused. One copy, so the oneDNN and CUDA backends
// cannot drift apart again (their two check_rnn_inputs had: the CPU's did not check devices and
// read an undefined x as a 0-d tensor).
#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras::backend {

RnnPath rnn_path_for(const RnnSpec& spec, const RnnLibrary& library) {
    if (!library.unsupported.empty())
        return {.fused = false, .description = library.step_loop + ": " + library.unsupported};
    std::string description = library.fused;
    // No primitive has a hook to mask h_{t-1} before each step's recurrent product.
    if (spec.recurrent_dropout > 0.0f)
        description += fmt::format("; training with recurrent_dropout={}: {}", spec.recurrent_dropout,
                                   library.dropout_step_loop);
    return {.fused = true, .description = description};
}

int64_t rnn_gate_count(RnnCell cell) {
    switch (cell) {
        case RnnCell::simple_rnn: return 1;
        case RnnCell::lstm: return 4;
        case RnnCell::gru: return 3;
    }
    return 1;
}

void check_rnn_inputs(const RnnSpec& spec, const Tensor& x, const RnnWeights& w, const Tensor& h0, const Tensor& c0,
                      Device device) {
    const std::string& layer = spec.layer_name;
    if (!x.defined() || x.ndim() != 3 || x.dtype() != DType::float32)
        value_error("Layer \"{}\": the RNN input must be a float32 tensor (batch, timesteps, features), got {}", layer,
                    x.defined() ? to_string(x.dtype()) + " " + shape_str(x.shape()) : std::string("nothing"));
    const int64_t N = x.dim(0), T = x.dim(1), C = x.dim(2), H = spec.units, GH = rnn_gate_count(spec.cell) * H;
    if (T < 1)
        value_error("Layer \"{}\": the RNN input needs at least one timestep, got shape {}", layer, shape_str(x.shape()));
    auto expect = [&](const Tensor& t, const Shape& shape, const char* what) {
        if (!t.defined() || t.shape() != shape || t.dtype() != DType::float32)
            value_error("Layer \"{}\": {} must be float32 of shape {}, got {}", layer, what, shape_str(shape),
                        t.defined() ? shape_str(t.shape()) : std::string("nothing"));
        // A backend reads its tensors' memory directly: one on another device is not its to read.
        if (t.device() != device)
            value_error("Layer \"{}\": {} is on {}, expected {} (move it with .to())", layer, what,
                        to_string(t.device()), to_string(device));
    };
    expect(x, x.shape(), "the input");
    expect(w.kernel, {C, GH}, "kernel");
    expect(w.recurrent_kernel, {H, GH}, "recurrent_kernel");
    if (spec.use_bias) expect(w.bias, spec.cell == RnnCell::gru && spec.reset_after ? Shape{2, GH} : Shape{GH}, "bias");
    if (h0.defined()) expect(h0, {N, H}, "initial state h");
    if (c0.defined() && spec.cell == RnnCell::lstm) expect(c0, {N, H}, "initial state c");
}

void check_rnn_lengths(const RnnSpec& spec, const std::vector<int32_t>& lengths, int64_t N, int64_t T) {
    if (lengths.empty()) return;
    if (static_cast<int64_t>(lengths.size()) != N)
        value_error("Layer \"{}\": {} sequence lengths given for a batch of {}", spec.layer_name, lengths.size(), N);
    for (size_t n = 0; n < lengths.size(); ++n)
        if (lengths[n] < 0 || lengths[n] > T)
            value_error("Layer \"{}\": sequence length {} of sample {} is outside [0, {}]", spec.layer_name,
                        lengths[n], n, T);
}

}  // namespace keras::backend
