#include "keras/layer.hpp"

#include <cctype>
#include <map>
#include <mutex>
#include <regex>

#include "keras/backend.hpp"
#include "keras/errors.hpp"
#include "keras/initializers.hpp"

namespace keras {

namespace {
// Layer names are numbered process-wide (Keras's "dense", "dense_1", ...); models built in two
// threads at once take their numbers under this lock.
std::mutex name_mutex;
std::map<std::string, int>& name_counters() {
    static std::map<std::string, int> counters;
    return counters;
}

}  // namespace

namespace utils {
std::string to_snake_case(const std::string& class_name) {
    // Keras's two passes: "_" before a capitalised word that follows any character, then between a
    // lower-case and an upper-case letter ("SimpleRNN" -> "simple_rnn", "GRU" -> "gru",
    // "GlobalAveragePooling1D" -> "global_average_pooling1d").
    static const std::regex capitalised_word("(.)([A-Z][a-z]+)"), lower_upper("([a-z])([A-Z])");
    std::string out = std::regex_replace(class_name, capitalised_word, "$1_$2");
    out = std::regex_replace(out, lower_upper, "$1_$2");
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string unique_name(const std::string& base) {
    std::lock_guard lock(name_mutex);
    int& n = name_counters()[base];
    return n++ == 0 ? base : base + "_" + std::to_string(n - 1);
}

void clear_session() {
    std::lock_guard lock(name_mutex);
    name_counters().clear();
}
}  // namespace utils

Layer::Layer(std::string class_name, const std::string& name, bool trainable)
    : trainable(trainable), class_name_(std::move(class_name)),
      name_(name.empty() ? utils::unique_name(utils::to_snake_case(class_name_)) : name) {}

Shape Layer::build_for(const Shape& input_shape) {
    check_input_shape(input_shape);
    if (!built_) {
        build(input_shape);
        input_shape_ = input_shape;
        built_ = true;
    } else {
        check_built_shape(input_shape);
    }
    return compute_output_shape(input_shape);
}

void Layer::mark_built(const Shape& first_input_shape) {
    if (built_) return;
    input_shape_ = first_input_shape;
    built_ = true;
}

void Layer::track_weights_of(const Layer& inner) {
    for (const auto& w : inner.weights()) weights_.push_back(w);
}

static void check_one_input(const std::string& name, size_t received) {
    if (received != 1)
        value_error("Layer \"{}\" expects 1 input(s), but it received {} input tensors.", name, received);
}

// A list of one runs the one-input entry points; longer lists the several-input ones (layer_call.cpp).
Shape Layer::build_for_multi(const std::vector<Shape>& input_shapes) {
    if (input_shapes.empty()) check_one_input(name_, 0);
    if (input_shapes.size() == 1) return build_for(input_shapes[0]);
    if (built_) return compute_output_shape_multi(input_shapes);
    build(input_shapes);
    // The shape comes from a trial run, which also refuses a layer of one input.
    const Shape out = compute_output_shape_multi(input_shapes);
    mark_built(input_shapes[0]);
    return out;
}

void Layer::check_initial_state(const Shape&, const std::vector<Shape>& states) const {
    if (!states.empty())
        value_error("Layer \"{}\" ({}) does not take an `initial_state`: only recurrent layers do", name_, class_name_);
}

std::vector<Tensor> Layer::call_outputs(const Tensor& x, const std::vector<Tensor>& initial_state, CallContext& ctx) {
    check_initial_state(x.shape(), shapes_of(initial_state));
    return {call(x, ctx)};
}

std::vector<Tensor> Layer::backward_outputs(const std::vector<Tensor>& dys, CallContext& ctx) {
    return {backward(dys.at(0), ctx)};
}

std::vector<Tensor> Layer::call_multi_outputs(const std::vector<Tensor>&, CallContext&) {
    value_error("Layer \"{}\" ({}) has no call on a list of inputs that gives several outputs", name_, class_name_);
}

std::vector<Tensor> Layer::backward_multi_outputs(const std::vector<Tensor>& dys, CallContext& ctx) {
    return recorded_backward(dys, ctx);
}

void Layer::check_built_shape(const Shape& input_shape) const {
    // Like Keras's InputSpec: a layer with weights pins the last axis it was built for; the rank
    // and the other axes may change (Dense built on (None, 7) accepts (None, 3, 7)).
    if (weights_.empty() || input_shape.empty()) return;
    const int64_t want = input_shape_.back(), got = input_shape.back();
    if (want >= 0 && got >= 0 && want != got)
        input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                want, shape_str(input_shape)), input_shape);
}

Tensor Layer::compute_mask(const Tensor&, const Tensor& mask) const {
    if (!mask.defined() || supports_masking) return mask;
    if (!warned_mask_dropped_) {   // Keras 3 warns (once per call site there; once per layer here)
        warned_mask_dropped_ = true;
        fmt::print(stderr, "UserWarning: Layer '{}' (of type {}) was passed an input with a mask attached to it. "
                   "However, this layer does not support masking and will therefore destroy the mask information. "
                   "Downstream layers will not see the mask.\n", name_, class_name_);
    }
    return {};
}

Tensor Layer::compute_mask_multi(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) const {
    if (xs.size() <= 1) {
        check_one_input(name_, xs.size());
        return compute_mask(xs[0], masks.at(0));
    }
    // Several inputs: a layer with supports_masking passes the first input's mask on (the query's,
    // as Keras's attention layers do); others drop the masks.
    Tensor first_defined;
    for (const auto& m : masks)
        if (m.defined() && !first_defined.defined()) first_defined = m;
    return compute_mask(xs[0], supports_masking ? masks.at(0) : first_defined);
}

Tensor Layer::call(const std::vector<Tensor>& inputs, bool training) {
    (void)training;
    return call(inputs);
}

Tensor Layer::call(const std::vector<Tensor>& inputs) {
    check_one_input(name_, inputs.size());
    return call(inputs[0], false);
}

nlohmann::json Layer::get_config() const {
    // Keras 3 writes the dtype as a DTypePolicy object.
    const nlohmann::json policy = {{"module", "keras"}, {"class_name", "DTypePolicy"},
                                   {"config", {{"name", dtype_policy_.name()}}}, {"registered_name", nullptr}};
    nlohmann::json config = {{"name", name_}, {"trainable", trainable}, {"dtype", policy}};
    if (activity_regularizer) config["activity_regularizer"] = regularizers::serialize(*activity_regularizer);
    return config;
}

std::vector<VariablePtr> Layer::trainable_weights() const {
    std::vector<VariablePtr> out;
    if (!trainable) return out;
    for (const auto& w : weights_)
        if (w->trainable) out.push_back(w);
    return out;
}

std::vector<Tensor> Layer::get_weights() const {
    std::vector<Tensor> out;
    for (const auto& w : weights_) out.push_back(w->value.device().is_cpu() ? w->value.clone() : w->value.to(Device::cpu()));
    return out;
}

void Layer::set_weights(const std::vector<Tensor>& values) {
    if (values.size() != weights_.size())
        value_error("You called `set_weights(weights)` on layer '{}' with a weight list of length {}, but the layer "
                    "was expecting {} weights.", name_, values.size(), weights_.size());
    // Every shape is checked before anything is assigned, so a bad list leaves the layer as it was.
    for (size_t i = 0; i < weights_.size(); ++i)
        if (values[i].shape() != weights_[i]->value.shape())
            value_error("Layer {} weight shape {} is not compatible with provided weight shape {}.", name_,
                        shape_str(weights_[i]->value.shape()), shape_str(values[i].shape()));
    for (size_t i = 0; i < weights_.size(); ++i)
        weights_[i]->value.copy_from(values[i].astype(weights_[i]->value.dtype()));
}

bool Layer::stateful() const {
    for (const auto& [attribute, inner] : nested_layers())
        if (inner->stateful()) return true;
    return false;
}

void Layer::reset_states() {
    if (!stateful()) value_error("Layer \"{}\" is not stateful: reset_states() needs stateful=true", name_);
    for (const auto& [attribute, inner] : nested_layers())
        if (inner->stateful()) inner->reset_states();
}

int64_t Layer::count_params() const {
    int64_t n = 0;
    for (const auto& w : weights_) n += w->value.numel();
    return n;
}

VariablePtr Layer::add_weight(const std::string& name, const Shape& shape, const std::string& initializer,
                              bool trainable) {
    auto v = std::make_shared<Variable>();
    v->name = name;
    v->value = initializers::make(initializer, shape);
    v->trainable = trainable;
    weights_.push_back(v);
    return v;
}

void accumulate_gradient(Variable& v, const Tensor& g) {
    if (g.shape() != v.value.shape())
        runtime_error("Gradient of shape {} does not match weight '{}' of shape {}", shape_str(g.shape()), v.name,
                      shape_str(v.value.shape()));
    if (!v.grad.defined()) v.grad = g.clone();
    else v.grad = backend::for_tensor(v.grad).add(v.grad, g);
}

void accumulate_gradient(Variable& v, Tensor&& g) {
    // Taken as it is only when no one else can see it change: the copy is what guards the others.
    if (v.grad.defined() || !g.defined() || g.storage_shared() || g.shape() != v.value.shape())
        return accumulate_gradient(v, static_cast<const Tensor&>(g));
    v.grad = std::move(g);
    v.grad.set_grad_node(nullptr);   // as a clone, no recorded history
}

void Layer::input_error(const std::string& what, const Shape& received) const {
    value_error("Input 0 of layer \"{}\" is incompatible with the layer: {}. Full shape received: {}", name_, what,
                shape_str(received));
}

void Layer::check_ndim(const Shape& input_shape, int ndim) const {
    if (static_cast<int>(input_shape.size()) != ndim)
        input_error(fmt::format("expected ndim={}, found ndim={}", ndim, input_shape.size()), input_shape);
}

void Layer::check_min_ndim(const Shape& input_shape, int min_ndim) const {
    if (static_cast<int>(input_shape.size()) < min_ndim)
        input_error(fmt::format("expected min_ndim={}, found ndim={}", min_ndim, input_shape.size()), input_shape);
}

}  // namespace keras
