// Reverse-mode automatic differentiation, TensorFlow-style: while a GradientTape is recording, every
// keras::ops call that reads a recorded tensor or a variable records itself (its inputs and how to
// send a gradient back to them) on the tensor it returns. tape.gradient(target, sources) then walks
// those records from the target back to the sources. No graph compiler: the records are the
// ordinary C++ objects the ops leave behind, freed with the last tensor that refers to them.
//
//     keras::GradientTape tape;
//     Tensor y_pred = model(x, {.training = true});
//     Tensor loss = my_loss(y, y_pred);
//     std::vector<Tensor> grads = tape.gradient(loss, model.trainable_weights());
//     optimizer.apply_gradients(grads, model.trainable_weights());
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keras/export.hpp"
#include "keras/tensor.hpp"
#include "keras/variable.hpp"

namespace keras {

namespace autodiff {

// How an op sends the gradient of its output back: one gradient per input, in the order the inputs
// were recorded (an undefined tensor where an input gets none, e.g. integer ids).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& dy)>;
// The same for an op of several outputs: one gradient per output in (undefined where that output
// got none), one per input out.
using MultiBackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& dys)>;

// One recorded op. Leaves are reads of a Variable or tensors a tape watches.
// An op of several outputs (record_multi) is one node holding backward_multi and the outputs' shapes;
// each output tensor gets a node of its own whose only input is that op's node and whose
// output_index says which output it is: the walk collects their gradients into one list.
struct KERAS_API Node {
    std::string op;                                  // for error messages: "matmul", "layer dense", ...
    std::vector<std::shared_ptr<Node>> inputs;       // null where an input is a constant
    BackwardFn backward;                             // empty for leaves and several-output ops
    const Variable* variable = nullptr;              // set on a variable's leaf
    Shape shape;                                     // the output's shape
    MultiBackwardFn backward_multi = {};             // set on a several-output op
    std::vector<Shape> output_shapes = {};           // a several-output op's outputs
    int output_index = -1;                           // >= 0: output k of inputs[0], a several-output op
};

// Whether ops record now: some GradientTape is recording on this thread and no stop_recording is open.
KERAS_API bool recording();

// Records an op: when recording and some input is recorded, `out` gets a node with these inputs and
// this backward. Returns `out`. This is how every op (and custom_gradient) joins the tape.
KERAS_API Tensor record(const std::string& op, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward);

// Records an op of several outputs (a fused RNN's y, h, c): each output gets a node, and the backward
// receives one gradient per output (undefined where one got none). Returns the outputs.
KERAS_API std::vector<Tensor> record_multi(const std::string& op, std::vector<Tensor> outputs,
                                           const std::vector<Tensor>& inputs, MultiBackwardFn backward);

// Gradients of `targets` (seeded with `seeds`, ones where a seed is undefined) with respect to the
// nodes `sources`, walking no further back than a source. One result per source, undefined where
// the targets do not depend on it. Variable leaves met on the way are summed per Variable into
// *variable_grads when given (for layers whose weights get their gradient this way).
KERAS_API std::vector<Tensor> gradients(const std::vector<Tensor>& targets, const std::vector<Tensor>& seeds,
                              const std::vector<std::shared_ptr<Node>>& sources,
                              std::vector<std::pair<const Variable*, Tensor>>* variable_grads = nullptr);

// Records a computation whose backward is a layer's hand-written one: run_backward(dy) adds the
// weights' gradients into their Variable::grad and returns the input's gradient (undefined: none).
// The recorded backward hands those gradients to the tape and leaves Variable::grad as it was.
KERAS_API Tensor record_accumulating(const std::string& op, Tensor out, const Tensor& input,
                                     const std::vector<VariablePtr>& weights,
                                     std::function<Tensor(const Tensor& dy)> run_backward);
// The same for several inputs and outputs: run_backward(dys) (one per output, undefined = none) adds
// the weights' gradients into Variable::grad and returns one gradient per input.
KERAS_API std::vector<Tensor> record_accumulating(
    const std::string& op, std::vector<Tensor> outputs, const std::vector<Tensor>& inputs,
    const std::vector<VariablePtr>& weights,
    std::function<std::vector<Tensor>(const std::vector<Tensor>& dys)> run_backward);

// A fresh leaf for x (same values, new identity): gradients can then be asked with respect to it.
KERAS_API Tensor watch_leaf(const Tensor& x);

// Records in its scope even without a GradientTape: layers whose backward is automatic record their
// call() this way, so the model's backward pass can run it.
class KERAS_API RecordingScope {
public:
    RecordingScope();
    ~RecordingScope();
    RecordingScope(const RecordingScope&) = delete;
    RecordingScope& operator=(const RecordingScope&) = delete;

private:
    int saved_pause_;
};

// Pauses recording in its scope (TensorFlow's tape.stop_recording()).
class KERAS_API StopRecording {
public:
    StopRecording();
    ~StopRecording();
    StopRecording(const StopRecording&) = delete;
    StopRecording& operator=(const StopRecording&) = delete;

private:
    int saved_;
};

}  // namespace autodiff

// GradientTape's keyword arguments.
struct KERAS_API GradientTapeOptions {
    // A persistent tape may be asked for gradients more than once (TensorFlow's persistent=True).
    bool persistent = false;
};

// TensorFlow's tf.GradientTape: records ops from construction until it is destroyed (or
// stop_recording), then gives gradients. Variables need no watch(): every read of a Variable is recorded.
class KERAS_API GradientTape {
public:
    explicit GradientTape(GradientTapeOptions options = {});   // Starts recording.
    ~GradientTape();
    GradientTape(const GradientTape&) = delete;
    GradientTape& operator=(const GradientTape&) = delete;

    // Makes x a source: gradient(target, {x}) then reaches it. x is changed in place (new identity).
    void watch(Tensor& x);

    // d(sum of target) / d(each source). Undefined tensors for sources the target does not depend on
    // (TensorFlow's None); unconnected_zeros = true gives zeros instead.
    std::vector<Tensor> gradient(const Tensor& target, const std::vector<VariablePtr>& sources,
                                 bool unconnected_zeros = false);
    std::vector<Tensor> gradient(const Tensor& target, const std::vector<Tensor>& sources,
                                 bool unconnected_zeros = false);
    Tensor gradient(const Tensor& target, const Tensor& source, bool unconnected_zeros = false);   // One source.

    // Stops recording until the returned guard ends (or the tape is destroyed).
    autodiff::StopRecording stop_recording() { return {}; }

private:
    void check_usable();
    bool persistent_;
    bool used_ = false;
};

// An op with a gradient the caller writes (TensorFlow's tf.custom_gradient, PyTorch's
// autograd::Function): `fn` computes the output from the inputs with anything (a fused kernel, host
// code; nothing inside is recorded) and returns it with its backward, which maps the output's
// gradient to one gradient per input and may capture what the forward computed:
//
//     Tensor y = custom_gradient("my_square", {x}, [](const std::vector<Tensor>& in) {
//         Tensor x = in[0];
//         return std::pair{ops::multiply(x, x), autodiff::BackwardFn([x](const Tensor& dy) {
//             return std::vector<Tensor>{ops::multiply(dy, ops::multiply(x, 2.0f))};
//         })};
//     });
using ForwardWithGradient = std::function<std::pair<Tensor, autodiff::BackwardFn>(const std::vector<Tensor>&)>;
// One output: `fn` returns it with its backward (see above).
KERAS_API Tensor custom_gradient(const std::string& name, const std::vector<Tensor>& inputs, const ForwardWithGradient& fn);
// Several outputs: the backward receives one gradient per output (undefined where an output got
// none, e.g. a returned state the loss does not use) and returns one per input.
using ForwardWithGradients =
    std::function<std::pair<std::vector<Tensor>, autodiff::MultiBackwardFn>(const std::vector<Tensor>&)>;
// Several outputs: `fn` returns them with a backward taking one gradient per output.
KERAS_API std::vector<Tensor> custom_gradient(const std::string& name, const std::vector<Tensor>& inputs,
                                              const ForwardWithGradients& fn);

}  // namespace keras
