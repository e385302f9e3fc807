// What SimpleRNN, LSTM and GRU share: as in Keras, each is a recurrent layer over its cell (LSTM over
// LSTMCell, ...). The cell validates the cell's options and owns the weights (Keras's layout, created
// by the cell's build); the layer keeps what is about the sequence: return_sequences / return_state,
// go_backwards, stateful states, masks, input and recurrent dropout, and the loop over time, delegated
// to the backend with the cell's spec and weights (a fused library primitive where it can, a step loop
// where it cannot).
#pragma once

#include "keras/export.hpp"

#include <string>
#include <vector>

#include "keras/backend_types.hpp"
#include "keras/layer.hpp"
#include "keras/layers/fields.hpp"
#include "keras/layers/rnn_cells.hpp"

namespace keras::layers {

struct MaskedSteps;   // masked_steps.hpp (internal)

// The Keras config fields about the sequence that SimpleRNN, LSTM and GRU share (Keras's RNN
// arguments and the layers' dropout), for any options struct with these members.
template <typename O>
void recurrent_sequence_fields(FieldTable<O>& t) {
    t.fixed("time_major", "false", false, true)   // Keras 2's; only false loads
        .fixed("activity_regularizer", "null", true, false)   // the Layer's: read by the loader
        .fixed("unroll", "false", true, false)     // written as Keras does; ignored when loading, as before
        .number("dropout", &O::dropout)
        .number("recurrent_dropout", &O::recurrent_dropout)
        .boolean("return_sequences", &O::return_sequences)
        .boolean("return_state", &O::return_state)
        .boolean("go_backwards", &O::go_backwards)
        .boolean("stateful", &O::stateful)
        .boolean("zero_output_for_mask", &O::zero_output_for_mask);
}

// The sequence's arguments every Keras RNN layer takes (the cell's are the cell's), copied from the
// layer's options by key (convert_fields).
struct KERAS_API RecurrentCommon {
    float dropout = 0.0f;             // input dropout: one mask per sequence, shared by all steps (per gate
                                      // for LSTM / GRU with recurrent_dropout, as Keras 3)
    float recurrent_dropout = 0.0f;   // on h_{t-1}: one (N, units) mask per sequence and gate
    bool return_sequences = false;
    bool return_state = false;        // outputs [output, h] or [output, h, c] (LSTM)
    bool go_backwards = false;
    bool stateful = false;
    bool zero_output_for_mask = false;   // masked steps output zeros rather than the previous output
    static const FieldTable<RecurrentCommon>& fields();
};
inline const FieldTable<RecurrentCommon>& RecurrentCommon::fields() {
    static const auto table = FieldTable<RecurrentCommon>().with(recurrent_sequence_fields<RecurrentCommon>);
    return table;
}

// What SimpleRNN, LSTM and GRU share: running a cell over the steps, masks, states, dropout.
class KERAS_API RNNBase : public Layer {
public:
    Shape compute_output_shape(const Shape& input_shape) const override;
    Tensor call(const Tensor& x, CallContext& ctx) override;
    Tensor backward(const Tensor& dy, CallContext& ctx) override;
    // Keras: the output keeps the input's mask with return_sequences, and has none otherwise.
    Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
    // The Layer's keys and units; each layer adds its options' fields.
    nlohmann::json get_config() const override;
    std::string implementation_note() const override;

    // ---- return_state and initial_state (rnn_state.cpp). With return_state the outputs are
    // [output, h] ([output, h, c] for LSTM); initial_state is {h0} ({h0, c0} for LSTM), each (batch, units).
    int output_count() const override;
    std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
    void check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const override;
    std::vector<Tensor> call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) override;
    std::vector<Tensor> backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) override;
    // How many states the cell carries: 2 for LSTM (h, c), 1 otherwise.
    int state_count() const { return spec_.cell == backend::RnnCell::lstm ? 2 : 1; }

    int64_t units() const { return spec_.units; }
    // The fused call's spec: the cell's, with the sequence's go_backwards and recurrent dropout.
    const backend::RnnSpec& spec() const { return spec_; }
    const RecurrentCommon& common() const { return common_; }
    // The cell the layer runs over the sequence; its weights are the layer's.
    const RNNCell& cell() const { return *cell_.ptr; }

    // Stateful layers: zeroes the kept states (Keras's reset_states()); the batch size stays fixed.
    void reset_states() override;
    bool stateful() const override { return common_.stateful; }
    // The kept states ({h} or {h, c}, each (batch, units)); empty before the first call or after
    // reset_states(), meaning zeros. Always empty when the layer is not stateful.
    std::vector<Tensor> states() const;
    // The batch size a stateful layer is fixed to: the input's fixed batch size when it was built for
    // one (keras::Input(..., {.batch_size = 4})), else its first call's; -1 before either.
    int64_t stateful_batch_size() const { return stateful_batch_size_; }
    // Bidirectional sets it on its two layers to return_sequences, as Keras does.
    void set_zero_output_for_mask(bool zero) { common_.zero_output_for_mask = zero; }
    // Keras 3: a stateful RNN called on a symbolic input needs a fixed batch size.
    void check_symbolic_input(const Shape& input_shape) const override;

protected:
    // Then the derived constructor gives the layer its cell (set_cell), named as the layer so that the
    // cell's errors name the layer the user made (and no automatic "lstm_cell" name is used up).
    RNNBase(const std::string& class_name, const std::string& name, RecurrentCommon common);
    void set_cell(std::shared_ptr<RNNCell> cell);
    void check_input_shape(const Shape& input_shape) const override;
    // The cell creates the weights; they become the layer's (same Variables, same names and order).
    void build(const Shape& input_shape) override;
    int gates() const { return cell_.ptr->gates(); }
    backend::RnnWeights weights_view() const;
    // spec_ with the compute dtype of the layer's dtype policy (bfloat16 for mixed_bfloat16).
    backend::RnnSpec run_spec() const;

    backend::RnnSpec spec_;
    RecurrentCommon common_;

private:
    // Keras's input dropout mask for x (N, T, C): one (N, C) draw repeated over time, kept entries
    // scaled by 1 / (1 - rate).
    Tensor dropout_mask(const Tensor& x) const;
    // Whether this call draws a recurrent-dropout mask: training with a rate in (0, 1) (SimpleRNN
    // also at 1, which zeroes h_{t-1}; Keras's LSTM / GRU skip rate 1 altogether).
    bool uses_recurrent_dropout(bool training) const;
    // Keras 3's LSTM / GRU switch to the cell's implementation 1 when recurrent_dropout != 0, which
    // draws the INPUT dropout mask per gate too.
    bool per_gate_input_dropout() const;
    // Keras's per-gate dropout masks (N, gates * width): an independent (N, width) draw per gate
    // block, kept entries scaled by 1 / (1 - rate); the backend applies them at every step.
    Tensor gate_dropout_masks(int64_t batch, int64_t width, float rate, Device device) const;
    // A call's dropout: either the shared input mask, applied to x here (input = x * shared_mask,
    // kept for the backward), or per-gate input masks; plus the recurrent masks. The per-gate ones
    // are returned for the backend's step loop.
    backend::RnnDropoutMasks dropout_for_call(const Tensor& x, bool training, Tensor& input,
                                              Tensor& shared_mask) const;

    // The stateful layer's initial states for a batch: the kept ones (undefined = zeros), after
    // checking the batch size.
    void check_stateful_batch(const Tensor& x);
    // Adds the weight gradients and returns dx (through the input dropout mask).
    Tensor apply_gradients(const backend::RnnGradients& g, const CallContext& ctx);
    // Stateful layers keep the call's final states (copies) for the next batch.
    void keep_states(const backend::RnnForward& fwd);

    // Masked calls (a mask with some step masked): the real steps packed to the front, run with
    // per-sample lengths, the outputs spread back by Keras's rules (masked_steps.hpp).
    // masked_steps_of checks the mask's shape against x (ValueError naming the layer).
    MaskedSteps masked_steps_of(const Tensor& x, const Tensor& mask) const;
    Tensor call_masked(const Tensor& input, const Tensor& dropout, const backend::RnnDropoutMasks& masks,
                       const Tensor& h0, const Tensor& c0, MaskedSteps steps, CallContext& ctx);
    // The masked call's backward: dy is the output's gradient, dh / dc the returned states'
    // (return_state); each may be undefined. dx comes back at the input's steps (zeros at masked ones).
    backend::RnnGradients backward_masked(const Tensor& dy, const Tensor& dh, const Tensor& dc, CallContext& ctx);
    // The backend's forward result of a call, masked or not: its final states are return_state's.
    const backend::RnnForward& forward_of(const CallContext& ctx) const;
    // The backend's gradients of a call, masked or not: dy is the output's gradient, dh / dc the
    // returned states' (return_state); each may be undefined. backward() and backward_outputs() use it.
    backend::RnnGradients call_gradients(const Tensor& dy, const Tensor& dh, const Tensor& dc, CallContext& ctx);

    // A copied layer gets a copy of the cell, so copies built apart have their own weights (as before
    // the layer held a cell); moves keep the same cell.
    struct CellHolder {
        std::shared_ptr<RNNCell> ptr;
        CellHolder() = default;
        CellHolder(const CellHolder& other) : ptr(other.ptr ? other.ptr->clone() : nullptr) {}
        CellHolder(CellHolder&&) = default;
        CellHolder& operator=(const CellHolder& other) {
            ptr = other.ptr ? other.ptr->clone() : nullptr;
            return *this;
        }
        CellHolder& operator=(CellHolder&&) = default;
    };
    CellHolder cell_;
    Tensor state_h_, state_c_;          // stateful: the last batch's final states
    int64_t stateful_batch_size_ = -1;
    bool batch_size_from_input_ = false;   // fixed by build() (the input's batch size), not by a call
};

}  // namespace keras::layers
