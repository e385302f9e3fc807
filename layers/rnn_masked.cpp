// RNNBase with a mask (rnn.hpp): exact Keras semantics on any backend, with no mask support in
// the backend beyond per-sample lengths of right-packed input. masked_steps() turns the mask into
// index tables; the real steps of each sample are gathered to the front in processing order
// (go_backwards folded in, so the backend always runs forwards), the backend runs with their
// count as lengths (its states are then those at each sample's last real step), and the outputs
// are gathered back to Keras's steps: the last real output so far, or zeros. The backward pass is
// the same moves' adjoints (scatter-adds), so steps Keras skips get exactly no gradient.
#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/masked_steps.hpp"
#include "keras/layers/rnn.hpp"

namespace keras::layers {

namespace {

// What a masked call keeps for its backward pass (in CallContext::state).
struct MaskedCall {
    backend::RnnSpec spec;       // the spec the backend ran (forwards, lengths)
    MaskedSteps steps;
    backend::RnnForward fwd;
};

}  // namespace

MaskedSteps RNNBase::masked_steps_of(const Tensor& x, const Tensor& mask) const {
    if (mask.ndim() != 2 || mask.dim(0) != x.dim(0) || mask.dim(1) != x.dim(1))
        value_error("Layer \"{}\": the mask has shape {}, expected {} (batch, timesteps) to match the input of "
                    "shape {}", name(), shape_str(mask.shape()), shape_str({x.dim(0), x.dim(1)}), shape_str(x.shape()));
    return masked_steps(mask, common_.go_backwards, common_.zero_output_for_mask);
}

Tensor RNNBase::call_masked(const Tensor& input, const Tensor& dropout, const backend::RnnDropoutMasks& masks,
                            const Tensor& h0, const Tensor& c0, MaskedSteps steps, CallContext& ctx) {
    auto& be = backend::for_tensor(input);
    const int64_t N = input.dim(0), T = input.dim(1);
    MaskedCall c{.spec = run_spec(), .steps = std::move(steps), .fwd = {}};
    c.spec.go_backwards = false;   // folded into pack_idx
    // The dropout masks are per sample, so packing the steps does not move them.
    const Tensor packed = be.gather_steps(input, c.steps.pack_idx, T);
    c.fwd = be.rnn_forward(c.spec, packed, weights_view(), h0, c0, ctx.training, masks, c.steps.lengths);
    keep_states(c.fwd);
    // Without return_sequences Keras returns the output of the LAST step, which follows the same
    // rules (zeros when zero_output_for_mask and that step is masked).
    const Tensor y = common_.return_sequences ? be.gather_steps(c.fwd.sequences, c.steps.out_idx, T)
                                              : be.gather_steps(c.fwd.sequences, c.steps.last_out_idx(), 1)
                                                    .reshape({N, spec_.units});
    ctx.saved = {dropout};
    ctx.state = std::move(c);
    return y;
}

backend::RnnGradients RNNBase::backward_masked(const Tensor& dy, const Tensor& dh, const Tensor& dc, CallContext& ctx) {
    auto* c = std::any_cast<MaskedCall>(&ctx.state);
    if (!c) runtime_error("Layer \"{}\": backward() called without a forward pass", name());
    const int64_t N = c->steps.batch, T = c->steps.steps, H = spec_.units;
    const Shape expected = common_.return_sequences ? Shape{N, T, H} : Shape{N, H};
    if (dy.defined() && dy.shape() != expected)
        value_error("Layer \"{}\": the output gradient has shape {}, expected {}", name(), shape_str(dy.shape()),
                    shape_str(expected));
    const Tensor& any = dy.defined() ? dy : (dh.defined() ? dh : dc);
    auto& be = backend::for_tensor(any);
    Tensor d_packed;
    if (dy.defined())
        d_packed = common_.return_sequences ? be.scatter_add_steps(dy, c->steps.out_idx, T)
                                            : be.scatter_add_steps(dy.reshape({N, 1, H}), c->steps.last_out_idx(), T);
    backend::RnnGradients g = be.rnn_backward(c->spec, weights_view(), c->fwd, d_packed, dh, dc);
    // Back to the input's steps; masked steps get zeros.
    g.dx = be.scatter_add_steps(g.dx, c->steps.pack_idx, T);
    return g;
}

const backend::RnnForward& RNNBase::forward_of(const CallContext& ctx) const {
    if (const auto* fwd = std::any_cast<backend::RnnForward>(&ctx.state)) return *fwd;
    if (const auto* c = std::any_cast<MaskedCall>(&ctx.state)) return c->fwd;
    runtime_error("Layer \"{}\": no forward pass to read the states of", name());
}

}  // namespace keras::layers
