#include "keras/layers/bidirectional.hpp"

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/layers/rnn.hpp"
#include "layer_factory.hpp"

namespace keras::layers {

namespace {

std::string without_prefix(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s;
}

const char* py_bool(bool b) { return b ? "True" : "False"; }

// Keras's way of making the two directions: a fresh layer from `layer`'s config, renamed (and for
// the backward one, go_backwards flipped), so neither shares weights or state with `layer`.
LayerPtr copy_of(const Layer& layer, const std::string& prefix, bool flip_direction) {
    nlohmann::json config = layer.get_config();
    config["name"] = prefix + without_prefix(layer.name(), prefix);
    if (flip_direction) config["go_backwards"] = !config.value("go_backwards", false);
    return layer_from_config(layer.class_name(), config, {.keras_major = 3, .file = "(Bidirectional copy)"});
}

RNNBase& as_rnn(const LayerPtr& layer, const char* what) {
    auto* rnn = dynamic_cast<RNNBase*>(layer.get());
    if (!rnn)
        value_error("`Bidirectional` needs a recurrent layer (SimpleRNN, LSTM or GRU) as `{}`. Received: {} "
                    "(class {})", what, layer ? layer->name() : "None", layer ? layer->class_name() : "None");
    return *rnn;
}

// (N, T, U) with the time axis reversed, on the tensor's device.
Tensor flip_time(const Tensor& y) {
    const Tensor host = y.to(Device::cpu());
    const int64_t n = y.dim(0), t = y.dim(1), u = y.numel() / std::max<int64_t>(1, n * t);
    Tensor out(y.shape(), DType::float32);
    const float* src = host.data<float>();
    float* dst = out.data<float>();
    for (int64_t b = 0; b < n; ++b)
        for (int64_t s = 0; s < t; ++s)
            std::copy_n(src + (b * t + s) * u, u, dst + (b * t + (t - 1 - s)) * u);
    return out.to(y.device());
}

// [a, b] joined along the last axis (same leading shape).
Tensor concat_last(const Tensor& a, const Tensor& b) {
    const Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
    const int64_t ua = a.shape().back(), ub = b.shape().back(), rows = a.numel() / std::max<int64_t>(1, ua);
    Shape shape = a.shape();
    shape.back() = ua + ub;
    Tensor out(shape, DType::float32);
    float* dst = out.data<float>();
    for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(ha.data<float>() + r * ua, ua, dst + r * (ua + ub));
        std::copy_n(hb.data<float>() + r * ub, ub, dst + r * (ua + ub) + ua);
    }
    return out.to(a.device());
}

// The last axis' entries [begin, begin + width).
Tensor slice_last(const Tensor& x, int64_t begin, int64_t width) {
    const Tensor hx = x.to(Device::cpu());
    const int64_t u = x.shape().back(), rows = x.numel() / std::max<int64_t>(1, u);
    Shape shape = x.shape();
    shape.back() = width;
    Tensor out(shape, DType::float32);
    for (int64_t r = 0; r < rows; ++r) std::copy_n(hx.data<float>() + r * u + begin, width, out.data<float>() + r * width);
    return out.to(x.device());
}

// One call's contexts of the two directions (a shared Bidirectional may be called several times).
struct BidirectionalCall {
    std::shared_ptr<CallContext> forward, backward;
    int64_t forward_width = 0;   // concat: where the backward half starts on the last axis
};

}  // namespace

Bidirectional::Bidirectional(const LayerPtr& layer, BidirectionalOptions options)
    : Layer("Bidirectional", options.name, options.trainable), options_(options) {
    const std::vector<std::string> modes = {"sum", "mul", "ave", "concat"};
    if (options_.merge_mode && std::find(modes.begin(), modes.end(), *options_.merge_mode) == modes.end())
        value_error("Invalid merge mode. Received: {}. Merge mode should be one of {{\"sum\", \"mul\", \"ave\", "
                    "\"concat\", None}}", *options_.merge_mode);
    as_rnn(layer, "layer");
    if (options.backward_layer) as_rnn(options.backward_layer, "backward_layer");
    forward_ = copy_of(*layer, "forward_", false);
    backward_ = options.backward_layer ? options.backward_layer : copy_of(*layer, "backward_", true);

    const RecurrentCommon& f = as_rnn(forward_, "layer").common();
    const RecurrentCommon& b = as_rnn(backward_, "backward_layer").common();
    if (f.go_backwards == b.go_backwards)
        value_error("Forward layer and backward layer should have different `go_backwards` value. Received: "
                    "forward_layer.go_backwards {}, backward_layer.go_backwards={}", py_bool(f.go_backwards),
                    py_bool(b.go_backwards));
    auto same = [](const char* attr, bool fv, bool bv) {
        if (fv != bv)
            value_error("Forward layer and backward layer are expected to have the same value for attribute \"{}\", "
                        "got \"{}\" for forward layer and \"{}\" for backward layer", attr, py_bool(fv), py_bool(bv));
    };
    same("stateful", f.stateful, b.stateful);
    same("return_sequences", f.return_sequences, b.return_sequences);
    same("return_state", f.return_state, b.return_state);
    return_sequences_ = f.return_sequences;
    return_state_ = f.return_state;
    // Keras forces this on both directions: with return_sequences, a masked step outputs zeros.
    as_rnn(forward_, "layer").set_zero_output_for_mask(return_sequences_);
    as_rnn(backward_, "backward_layer").set_zero_output_for_mask(return_sequences_);
    supports_masking = true;
}

void Bidirectional::build(const Shape& input_shape) {
    forward_->build_for(input_shape);
    backward_->build_for(input_shape);
    const int64_t fu = forward_->compute_output_shape(input_shape).back();
    const int64_t bu = backward_->compute_output_shape(input_shape).back();
    if (options_.merge_mode && *options_.merge_mode != "concat" && fu != bu)
        value_error("Layer \"{}\": merge_mode \"{}\" needs the forward and backward layers to have the same "
                    "number of units, got {} ({}) and {} ({})", name(), *options_.merge_mode, fu, forward_->name(), bu,
                    backward_->name());
    // Keras's weight paths ("bidirectional/forward_lstm/lstm_cell/kernel"): the saved names of the two
    // directions must differ, and these are the names Keras gives them.
    for (const auto& inner : {forward_, backward_}) {
        const std::string prefix = inner->name() + "/" + utils::to_snake_case(inner->class_name()) + "_cell/";
        for (const auto& w : inner->weights()) w->name = prefix + w->name;
        track_weights_of(*inner);
    }
}

Shape Bidirectional::compute_output_shape(const Shape& input_shape) const {
    return compute_output_shapes(input_shape).at(0);
}

int Bidirectional::states_per_direction() const {
    return return_state_ ? static_cast<const RNNBase&>(*forward_).state_count() : 0;
}

int Bidirectional::output_count() const { return (options_.merge_mode ? 1 : 2) + 2 * states_per_direction(); }

std::vector<Shape> Bidirectional::compute_output_shapes(const Shape& input_shape) const {
    const std::vector<Shape> f = forward_->compute_output_shapes(input_shape);
    const std::vector<Shape> b = backward_->compute_output_shapes(input_shape);
    std::vector<Shape> shapes;
    if (!options_.merge_mode) {
        shapes = {f[0], b[0]};
    } else {
        shapes = {f[0]};
        if (*options_.merge_mode == "concat") shapes[0].back() += b[0].back();
    }
    shapes.insert(shapes.end(), f.begin() + 1, f.end());
    shapes.insert(shapes.end(), b.begin() + 1, b.end());
    return shapes;
}

// Keras splits the list in halves: the forward layer's states, then the backward layer's.
void Bidirectional::check_initial_state(const Shape& input_shape, const std::vector<Shape>& states) const {
    if (states.size() % 2 != 0)
        value_error("Layer \"{}\" (Bidirectional): When passing `initial_state` to a Bidirectional RNN, the state "
                    "should be a list containing the states of the underlying RNNs. Received: {} state(s)", name(),
                    states.size());
    const size_t half = states.size() / 2;
    forward_->check_initial_state(input_shape, {states.begin(), states.begin() + half});
    backward_->check_initial_state(input_shape, {states.begin() + half, states.end()});
}

Tensor Bidirectional::call(const Tensor& x, CallContext& ctx) { return call_outputs(x, {}, ctx).at(0); }

Tensor Bidirectional::backward(const Tensor& dy, CallContext& ctx) { return backward_outputs({dy}, ctx).at(0); }

std::vector<Tensor> Bidirectional::call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state,
                                                CallContext& ctx) {
    if (initial_state.size() % 2 != 0) check_initial_state(x.shape(), shapes_of(initial_state));
    const size_t half = initial_state.size() / 2;
    BidirectionalCall c{std::make_shared<CallContext>(), std::make_shared<CallContext>()};
    c.forward->training = c.backward->training = ctx.training;
    c.forward->mask = c.backward->mask = ctx.mask;   // the backward layer reverses it with the steps
    const std::vector<Tensor> f = forward_->call_outputs(x, {initial_state.begin(), initial_state.begin() + half}, *c.forward);
    const std::vector<Tensor> b = backward_->call_outputs(x, {initial_state.begin() + half, initial_state.end()}, *c.backward);
    const Tensor& yf = f[0];
    c.forward_width = yf.shape().back();
    // Step t of both halves describes input step t.
    const Tensor yb = return_sequences_ ? flip_time(b[0]) : b[0];
    ctx.saved = options_.merge_mode == "mul" ? std::vector<Tensor>{yf, yb} : std::vector<Tensor>{};
    ctx.state = c;
    std::vector<Tensor> outputs;
    auto& be = backend::for_tensor(x);
    if (!options_.merge_mode) {
        outputs = {yf, yb};
    } else if (*options_.merge_mode == "concat") {
        outputs = {concat_last(yf, yb)};
    } else if (*options_.merge_mode == "mul") {
        outputs = {be.multiply(yf, yb)};
    } else {
        Tensor y = be.add(yf, yb);
        if (*options_.merge_mode == "ave") be.scale_(y, 0.5f);
        outputs = {y};
    }
    outputs.insert(outputs.end(), f.begin() + 1, f.end());
    outputs.insert(outputs.end(), b.begin() + 1, b.end());
    return outputs;
}

std::pair<Tensor, Tensor> Bidirectional::split_gradient(const Tensor& dy, const CallContext& ctx) const {
    if (!dy.defined()) return {};
    const auto& c = std::any_cast<const BidirectionalCall&>(ctx.state);
    auto& be = backend::for_tensor(dy);
    if (*options_.merge_mode == "concat")
        return {slice_last(dy, 0, c.forward_width), slice_last(dy, c.forward_width, dy.shape().back() - c.forward_width)};
    if (*options_.merge_mode == "mul") return {be.multiply(dy, ctx.saved.at(1)), be.multiply(dy, ctx.saved.at(0))};
    Tensor d = dy.clone();
    if (*options_.merge_mode == "ave") be.scale_(d, 0.5f);
    return {d, d};
}

namespace {
bool any_defined(const std::vector<Tensor>& ts) {
    return std::any_of(ts.begin(), ts.end(), [](const Tensor& t) { return t.defined(); });
}

// One direction's backward ({dx, d initial states...}); a direction none of whose outputs got a
// gradient is skipped (all undefined).
std::vector<Tensor> direction_backward(Layer& layer, const std::vector<Tensor>& dys, CallContext& ctx,
                                       size_t initial_states) {
    if (!any_defined(dys)) return std::vector<Tensor>(1 + initial_states);
    return layer.backward_outputs(dys, ctx);
}
}  // namespace

std::vector<Tensor> Bidirectional::backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) {
    const auto& c = std::any_cast<const BidirectionalCall&>(ctx.state);
    const size_t merged = options_.merge_mode ? 1 : 2, S = static_cast<size_t>(states_per_direction());
    if (dys.size() != merged + 2 * S)
        runtime_error("Layer \"{}\": backward got {} output gradients, expected {}", name(), dys.size(), merged + 2 * S);
    auto [dyf, dyb] = options_.merge_mode ? split_gradient(dys[0], ctx) : std::pair<Tensor, Tensor>{dys[0], dys[1]};
    if (return_sequences_ && dyb.defined()) dyb = flip_time(dyb);
    std::vector<Tensor> df = {dyf}, db = {dyb};
    df.insert(df.end(), dys.begin() + merged, dys.begin() + merged + S);
    db.insert(db.end(), dys.begin() + merged + S, dys.end());
    const std::vector<Tensor> gf = direction_backward(*forward_, df, *c.forward, c.forward->initial_state.size());
    const std::vector<Tensor> gb = direction_backward(*backward_, db, *c.backward, c.backward->initial_state.size());
    Tensor dx = gf[0];
    if (!dx.defined()) dx = gb[0];
    else if (gb[0].defined()) dx = backend::for_tensor(dx).add(dx, gb[0]);
    std::vector<Tensor> grads = {dx};
    grads.insert(grads.end(), gf.begin() + 1, gf.end());
    grads.insert(grads.end(), gb.begin() + 1, gb.end());
    return grads;
}

Tensor Bidirectional::compute_mask(const Tensor&, const Tensor& mask) const {
    return return_sequences_ ? mask : Tensor();
}

nlohmann::json Bidirectional::get_config() const {
    auto serialize = [](const Layer& l) {
        return nlohmann::json{{"module", "keras.layers"}, {"class_name", l.class_name()}, {"config", l.get_config()},
                              {"registered_name", nullptr}};
    };
    auto config = Layer::get_config();
    write_fields(config, options_);
    config["layer"] = serialize(*forward_);
    config["backward_layer"] = serialize(*backward_);
    return config;
}

}  // namespace keras::layers
