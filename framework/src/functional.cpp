// keras::Model(inputs, outputs): the functional model. The graph (functional_graph.cpp) says how to
// run it; the training loop is Model's, shared with Sequential.
#include <map>
#include <set>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "keras/model.hpp"

#include "functional_graph.hpp"

namespace keras {

Model::Model(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs, const std::string& name)
    : name_(name.empty() ? utils::unique_name("model") : name) {
    set_graph(FunctionalGraph::make(inputs, outputs, name_));
    layers_ = graph_->layers;
    // Single-array views for code that knows one input / output.
    input_shape_ = input_shapes_[0];
    output_shape_ = output_shapes_[0];
    built_ = true;   // every layer was built when it was called on the symbolic tensors
    place_weights();
}

void Model::set_graph(std::shared_ptr<const FunctionalGraph> graph) {
    graph_ = std::move(graph);
    input_shapes_.clear();
    output_shapes_.clear();
    if (!graph_) return;
    for (const auto& in : graph_->inputs) input_shapes_.push_back(in.shape);
    for (const auto& out : graph_->outputs) output_shapes_.push_back(out.shape);
}

Model::Model(const KerasTensor& input, const KerasTensor& output, const std::string& name)
    : Model(std::vector<KerasTensor>{input}, std::vector<KerasTensor>{output}, name) {}

const std::vector<KerasTensor>& Model::inputs() const {
    if (!graph_) value_error("Model \"{}\" has not been built yet: it has no symbolic `inputs`", name_);
    return graph_->inputs;
}

const std::vector<KerasTensor>& Model::outputs() const {
    if (!graph_) value_error("Model \"{}\" has not been built yet: it has no symbolic `outputs`", name_);
    return graph_->outputs;
}

std::vector<std::string> Model::output_names() const {
    if (!graph_) return {layers_.empty() ? name_ : layers_.back()->name()};
    // Keras 2's uniquified names: a layer giving several outputs (return_state) is "lstm", "lstm_1", ...
    std::vector<std::string> names;
    std::set<std::string> taken;
    std::map<std::string, int> next_suffix;
    for (const auto& out : graph_->outputs) {
        const std::string& base = out.node->layer->name();
        std::string name = base;
        while (taken.count(name)) {
            int& n = next_suffix.try_emplace(base, 1).first->second;
            name = fmt::format("{}_{}", base, n++);
        }
        taken.insert(name);
        names.push_back(name);
    }
    return names;
}

}  // namespace keras
