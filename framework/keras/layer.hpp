// The Layer base class, laid out like Keras's: the constructor takes the public arguments,
// build() creates weights from the input shape, call() computes, get_config() describes.
//
// A layer written with keras::ops overrides build(input_shape) and call(inputs) (or
// call(inputs, training)) and nothing else: its backward pass is automatic (the ops are recorded while
// it runs, keras/autodiff.hpp), and its output shape is found by running it. Built-in layers whose
// kernels are fused override call(x, ctx) and backward(dy, ctx) instead, with a hand-written
// backward. Whatever the backward pass needs from the forward pass lives in a CallContext owned by
// the caller, so one layer can be called several times (shared layers) without the calls
// overwriting each other.
#pragma once

#include "keras/export.hpp"

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keras/keras_tensor.hpp"
#include "keras/mixed_precision.hpp"
#include "keras/tensor.hpp"
#include "keras/variable.hpp"

namespace keras {

// What a layer's call() and backward() share for one call: training or not, masks, saved tensors.
struct KERAS_API CallContext {
    bool training = false;
    std::vector<Tensor> saved{};   // tensors kept for the backward pass
    std::any state{};            // anything else (e.g. a backend's RNN workspace)
    // Keras's mask of the input: (batch, steps) float32 on the host, 1 = a real step, 0 = padding;
    // undefined = no mask. The model sets it before call(); see Layer::compute_mask.
    Tensor mask{};
    // Keras's initial_state argument of a recurrent layer's call ({h0} or {h0, c0}, each (batch, units));
    // empty = zeros (or a stateful layer's kept states). Set by RNNBase::call_outputs.
    std::vector<Tensor> initial_state{};
    // Layers of several inputs (merge layers): one mask per input, undefined where an input has none.
    std::vector<Tensor> input_masks{};
    // The layer's activity_regularizer on this call's outputs (divided by the batch size, as Keras 3):
    // its value, and its gradient per output, which the model's backward pass adds to the outputs'.
    double activity_loss = 0.0;
    std::vector<Tensor> activity_gradients{};
};

class Layer;
// Layers are held in shared_ptrs (models and graph nodes share them).
using LayerPtr = std::shared_ptr<Layer>;

// Layers are shared: a functional graph's nodes hold the layers they call, so a layer used in a
// functional model must be owned by a std::shared_ptr (as Sequential::add already arranges).
class KERAS_API Layer : public std::enable_shared_from_this<Layer> {
public:
    virtual ~Layer() = default;

    const std::string& name() const { return name_; }   // Keras's layer.name ("lstm_1").
    const std::string& class_name() const { return class_name_; }   // Keras's class name ("LSTM").
    bool built() const { return built_; }   // Whether the weights exist.
    // Shape of the input the layer was built for, batch axis as -1.
    const Shape& input_shape() const { return input_shape_; }

    // Checks the input shape against what the layer accepts (ValueError naming the layer and both
    // shapes), creates the weights once, and returns the output shape. Shapes use -1 for None.
    Shape build_for(const Shape& input_shape);
    // The output shape for an input shape (-1 = None). Default: found by running call() on zeros
    // (None axes tried at two sizes, so the output's None axes are found too).
    virtual Shape compute_output_shape(const Shape& input_shape) const;

    // ---- Layers written with ops override one of these two (Keras's call(inputs, training=None)).
    virtual Tensor call(const Tensor& inputs, bool training);   // default: call(inputs)
    virtual Tensor call(const Tensor& inputs);                  // default: NotImplementedError
    // A layer of several inputs written with ops (Keras's call([query, value])) overrides one of these
    // (and build(input_shapes) if it has weights); its backward gives one gradient per input.
    virtual Tensor call(const std::vector<Tensor>& inputs, bool training);   // default: call(inputs)
    virtual Tensor call(const std::vector<Tensor>& inputs);                  // default: ValueError (1 input)

    // Forward pass as the model runs it. Inputs carry a batch axis. ctx.training selects dropout etc.
    // Default: call(inputs, training) recorded for the automatic backward.
    virtual Tensor call(const Tensor& x, CallContext& ctx);
    // Backward pass: gradient with respect to the input, and ADDS weight gradients into
    // each Variable::grad. Integer inputs (token ids) return an undefined tensor.
    // Default: the automatic gradient of what call(x, ctx) recorded.
    virtual Tensor backward(const Tensor& dy, CallContext& ctx);

    // Several inputs (merge layers). A layer of one input takes a list of exactly one; merge layers
    // override these. backward_multi returns one gradient per input (undefined for integer inputs).
    virtual Shape build_for_multi(const std::vector<Shape>& input_shapes);
    virtual Shape compute_output_shape_multi(const std::vector<Shape>& input_shapes) const;
    virtual Tensor call_multi(const std::vector<Tensor>& xs, CallContext& ctx);
    virtual std::vector<Tensor> backward_multi(const Tensor& dy, CallContext& ctx);

    // Functional API: calling a layer on symbolic tensors builds it for their shapes and returns the
    // symbolic output, recording the call as a Node. `auto x = (*dense)(inp);` or `dense->operator()(inp)`.
    // The layer must be owned by a std::shared_ptr (keras::share(layers::Dense(4)) makes one).
    KerasTensor operator()(const KerasTensor& x);
    // Keras's layer(x) on a batch: builds the layer for x on first use and runs it. While a
    // GradientTape records, the call is recorded (a fused layer as one op whose backward is its own),
    // so tape.gradient(loss, layer.trainable_weights()) reaches the weights. The layer must outlive
    // the tape's gradient() call.
    Tensor operator()(const Tensor& x, bool training = false);
    Tensor operator()(const std::vector<Tensor>& xs, bool training = false);   // several inputs
    KerasTensor operator()(const std::vector<KerasTensor>& xs);
    // How many times the layer was called on symbolic tensors (Keras's node index of the next call).
    int node_count() const { return node_count_; }

    // ---- Several outputs and initial states (RNN return_state / initial_state, Bidirectional
    // merge_mode=None), Keras's `y, h, c = lstm(x, initial_state=[h0, c0])`:
    //     std::vector<KerasTensor> out = lstm->call_all(x, {h0, c0});   // {y, h, c}
    // call_all returns every output of the call (one for most layers); operator() refuses a layer of
    // several outputs, so a list is never silently cut to its first entry.
    std::vector<KerasTensor> call_all(const KerasTensor& x, const std::vector<KerasTensor>& initial_state = {});
    // The same on a batch (Keras's eager `y, h, c = lstm(x, initial_state=[h0, c0])`), recorded on a
    // GradientTape as one op of several outputs: gradients reach x, the initial states and the weights.
    std::vector<Tensor> call_all(const Tensor& x, const std::vector<Tensor>& initial_state = {}, bool training = false);
    virtual int output_count() const { return 1; }
    virtual std::vector<Shape> compute_output_shapes(const Shape& input_shape) const {
        return {compute_output_shape(input_shape)};
    }
    // Checks Keras's initial_state against the input (ValueError with Keras's messages); the default
    // refuses any, since only recurrent layers take one.
    virtual void check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const;
    // The graph runs nodes with initial states or several outputs through these. call_outputs returns
    // output_count() tensors; backward_outputs takes one gradient per output (undefined = that output
    // gets none) and returns {dx, one gradient per initial state}. The defaults wrap call / backward.
    virtual std::vector<Tensor> call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state,
                                             CallContext& ctx);
    virtual std::vector<Tensor> backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx);
    // The same for a call on a list of inputs that gives several outputs (Keras's attention layers
    // called with return_attention_scores=True): the graph runs such nodes through these.
    // call_multi_outputs returns every output (the default refuses: most layers have no such call);
    // backward_multi_outputs takes one gradient per output (undefined = none) and returns one per
    // input (default: the automatic gradient of what call_multi_outputs recorded).
    virtual std::vector<Tensor> call_multi_outputs(const std::vector<Tensor>& xs, CallContext& ctx);
    virtual std::vector<Tensor> backward_multi_outputs(const std::vector<Tensor>& dys, CallContext& ctx);

    // Masking, as in Keras: the output mask is compute_mask(x, input mask). A layer with
    // supports_masking passes its input's mask on; other layers drop it (with Keras 3's warning,
    // once). Embedding(mask_zero) and Masking make a mask. Masks are (batch, steps) float32 on the
    // host, 1 = real step, 0 = padding; an undefined tensor means no mask.
    bool supports_masking = false;
    virtual Tensor compute_mask(const Tensor& x, const Tensor& mask) const;
    // Several inputs (merge layers, Keras's compute_mask(inputs, mask) with lists): one mask per input,
    // undefined where an input has none. Default: a list of one is compute_mask; merge layers override.
    virtual Tensor compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const;

    // Checks what only a symbolic input (keras::Input, or a Sequential's InputLayer) must give: a
    // stateful RNN needs a fixed batch size there, as in Keras 3. Built from data instead, a layer
    // takes the data's batch. Default: nothing to check.
    virtual void check_symbolic_input(const Shape& input_shape) const { (void)input_shape; }

    // Checks a whole input array before fit / evaluate / predict splits it into batches, so errors
    // name positions in the user's data (e.g. Embedding's id range). Default: nothing to check.
    virtual void check_data(const Tensor& x) const { (void)x; }

    // Keras's get_config(): name, trainable, dtype and the layer's own arguments.
    virtual nlohmann::json get_config() const;

    // Layers held inside this one (wrappers), each with the attribute name Keras 3 saves it under in
    // .weights.h5 files: Bidirectional's "forward_layer" and "backward_layer", TimeDistributed's "layer".
    // A layer with nested layers has no weights of its own (weights() lists theirs). Default: none.
    virtual std::vector<std::pair<std::string, LayerPtr>> nested_layers() const { return {}; }

    // Keras's layer.weights: the variables, in Keras's order.
    const std::vector<VariablePtr>& weights() const { return weights_; }
    // Keras's layer.get_weights(): copies of weights()' values, on the host, in that order.
    std::vector<Tensor> get_weights() const;
    // Keras's layer.set_weights(): one value per weights() entry, each of its weight's shape; with
    // Keras's messages for a wrong count or shape. Nothing is assigned unless every value fits.
    void set_weights(const std::vector<Tensor>& values);

    // Stateful recurrent layers keep their last states between calls. stateful(): whether this layer
    // (or one it wraps) does. reset_states() zeroes them (Keras 3 also calls it reset_state()); on a
    // layer that is not stateful it is a ValueError. The default resets the wrapped layers.
    virtual bool stateful() const;
    virtual void reset_states();   // Zeroes a stateful layer's kept states (see above).
    void reset_state() { reset_states(); }   // Keras 3's name of reset_states().
    std::vector<VariablePtr> trainable_weights() const;   // The weights training updates (none when trainable is false).
    int64_t count_params() const;   // The number of weight values.
    bool trainable = true;   // Keras's layer.trainable: false freezes the weights.
    // Keras's activity_regularizer: a penalty on the layer's outputs that joins the loss (fit, evaluate)
    // when the layer runs in a model. get_config() writes it when set; load_model reads it for any layer.
    std::optional<regularizers::Regularizer> activity_regularizer{};

    // Keras's layer.dtype_policy: the global policy when the layer was made, unless its options or its
    // saved config gave one. "mixed_bfloat16" makes Dense, Embedding and the recurrent layers compute in
    // bfloat16 where the device can (keras/mixed_precision.hpp); the weights stay float32 either way.
    const mixed_precision::DTypePolicy& dtype_policy() const { return dtype_policy_; }
    void set_dtype_policy(const mixed_precision::DTypePolicy& policy) { dtype_policy_ = policy; }
    const std::string& compute_dtype() const { return dtype_policy_.compute_dtype(); }   // Keras's layer.compute_dtype
    const std::string& variable_dtype() const { return dtype_policy_.variable_dtype(); }   // Keras's layer.variable_dtype

    // How the layer runs when it matters (e.g. "oneDNN lstm" or a fallback loop); empty otherwise.
    virtual std::string implementation_note() const { return {}; }

protected:
    // class_name is Keras's ("LSTM"); name empty means an automatic unique one ("lstm", "lstm_1", ...);
    // trainable is the options' (Keras's trainable=False freezes the layer's weights).
    Layer(std::string class_name, const std::string& name, bool trainable = true);
    // Validates the input shape; throw ValueError via input_error() when it is unacceptable.
    virtual void check_input_shape(const Shape& input_shape) const { (void)input_shape; }
    // Once built, a layer with weights must keep its input's last axis (what Keras's InputSpec pins).
    virtual void check_built_shape(const Shape& input_shape) const;
    virtual void build(const Shape& input_shape) { (void)input_shape; }
    // A layer of several inputs: their shapes (called only with two or more). Default: nothing.
    virtual void build(const std::vector<Shape>& input_shapes) { (void)input_shapes; }
    // The automatic call and backward, for layers that override call(x, ctx) to reach more of the
    // context (masks, initial states, several outputs) but still compute with ops: record_call runs
    // body(input, initial_state) recorded, and recorded_backward sends gradients of its outputs
    // (one per output, undefined = none) back, returning {dx, one per initial state}.
    using RecordedBody = std::function<std::vector<Tensor>(const Tensor&, const std::vector<Tensor>&)>;
    std::vector<Tensor> record_call(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx,
                                    const RecordedBody& body);
    // The same with any list of inputs: body(inputs) is recorded, recorded_backward returns one
    // gradient per input.
    using RecordedInputsBody = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
    std::vector<Tensor> record_inputs(const std::vector<Tensor>& inputs, CallContext& ctx,
                                      const RecordedInputsBody& body);
    std::vector<Tensor> recorded_backward(const std::vector<Tensor>& dys, CallContext& ctx);
    // For layers that build themselves from several shapes (merge layers).
    void mark_built(const Shape& first_input_shape);
    // A symbolic call on a list of inputs with several outputs, which the graph runs through
    // call_multi_outputs: checks that every input has a history, then calls build_outputs (which
    // builds the layer for the inputs and returns the outputs' shapes). One KerasTensor per output.
    std::vector<KerasTensor> record_node_of_outputs(const std::vector<KerasTensor>& xs,
                                                    const std::function<std::vector<Shape>()>& build_outputs);
    // Wrappers (TimeDistributed): the wrapped layer's weights become this layer's too, same Variables,
    // so models, optimizers and saving see them once, under the wrapper.
    void track_weights_of(const Layer& inner);
    VariablePtr add_weight(const std::string& name, const Shape& shape, const std::string& initializer,
                           bool trainable = true);
    // Keras's message: Input 0 of layer "lstm" is incompatible with the layer: `what`. Full shape received: (None, 5)
    [[noreturn]] void input_error(const std::string& what, const Shape& received) const;
    void check_ndim(const Shape& input_shape, int ndim) const;
    void check_min_ndim(const Shape& input_shape, int min_ndim) const;

private:
    std::string class_name_;
    std::string name_;
    bool built_ = false;
    Shape input_shape_;
    std::vector<VariablePtr> weights_;
    int node_count_ = 0;
    mixed_precision::DTypePolicy dtype_policy_ = mixed_precision::global_policy();
    mutable bool warned_mask_dropped_ = false;
    // The default compute_output_shape's trial runs, by input shape: a model rebuilds its layers'
    // shapes on every fit / predict / model(x) call, and a trial run is a forward pass.
    mutable std::map<Shape, Shape> inferred_output_shapes_;
    mutable std::map<std::vector<Shape>, Shape> inferred_multi_output_shapes_;   // the same for several inputs
};

// Moves a layer value into shared ownership, for one-line functional calls:
//
//     auto x = (*keras::share(layers::Dense(4)))(inp);
//     auto y = keras::share(layers::Dense(4))->operator()(inp);
template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
std::shared_ptr<L> share(L layer) { return std::make_shared<L>(std::move(layer)); }

// Adds g into v.grad (allocating it when undefined): layers call this in backward(). v.grad starts as
// a copy of g, or, for a temporary g whose storage nothing else shares, as g itself (an embedding's
// dense gradient is megabytes: the copy was 1.3% of a W3 training step).
KERAS_API void accumulate_gradient(Variable& v, const Tensor& g);
KERAS_API void accumulate_gradient(Variable& v, Tensor&& g);

namespace utils {
// Lower snake case of a Keras class name, as Keras names layers: "SimpleRNN" -> "simple_rnn".
KERAS_API std::string to_snake_case(const std::string& class_name);
// "base" the first time, then "base_1", "base_2", ... (Keras's automatic names for layers and models).
KERAS_API std::string unique_name(const std::string& base);
// Forgets the automatic name counters (Keras's clear_session).
KERAS_API void clear_session();
}  // namespace utils

}  // namespace keras
