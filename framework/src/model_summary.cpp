// Model::summary(): Keras 2's table, with a note under recurrent layers saying how they run.
#include <iostream>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "keras/input_layer.hpp"
#include "keras/model.hpp"

namespace keras {

namespace {
constexpr int kWidth = 65;
constexpr int kColumns[] = {29, 55, 65};   // right edges of: Layer (type), Output Shape, Param #

std::string row(const std::string& a, const std::string& b, const std::string& c) {
    std::string line = " " + a;
    const std::string cells[] = {b, c};
    for (int i = 0; i < 2; ++i) {
        line.resize(std::max<size_t>(line.size() + 1, kColumns[i]), ' ');
        line += cells[i];
    }
    line.resize(std::max<size_t>(line.size(), kWidth), ' ');
    return line;
}

// Keras's readable size: bytes in Byte / KB / MB / GB, two decimals.
std::string readable_size(double bytes) {
    const char* units[] = {"Byte", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        ++u;
    }
    return fmt::format("{:.2f} {}", bytes, units[u]);
}
}  // namespace

void Model::summary(std::ostream* out) const {
    std::ostream& os = out ? *out : std::cout;
    const std::string rule(kWidth, '_'), double_rule(kWidth, '=');
    fmt::print(os, "Model: \"{}\"\n{}\n{}\n{}\n", name_, rule, row("Layer (type)", "Output Shape", "Param #"), double_rule);
    Shape shape = input_shape_;
    int64_t trainable = 0, total = 0;
    bool first = true;
    for (const auto& layer : layers_) {
        if (std::dynamic_pointer_cast<layers::InputLayer>(layer)) continue;   // Keras hides it in Sequential
        if (!first) fmt::print(os, "{}\n", std::string(kWidth, ' '));
        first = false;
        const std::string label = fmt::format("{} ({})", layer->name(), layer->class_name());
        if (layer->built()) {
            shape = layer->compute_output_shape(shape);
            fmt::print(os, "{}\n", row(label, shape_str(shape), std::to_string(layer->count_params())));
        } else {
            fmt::print(os, "{}\n", row(label, "?", "0 (unbuilt)"));
        }
        if (const auto note = layer->implementation_note(); !note.empty()) fmt::print(os, "   runs on: {}\n", note);
        total += layer->count_params();
        for (const auto& w : layer->trainable_weights()) trainable += w->value.numel();
    }
    fmt::print(os, "{}\n", double_rule);
    fmt::print(os, "Total params: {} ({})\n", total, readable_size(4.0 * total));
    fmt::print(os, "Trainable params: {} ({})\n", trainable, readable_size(4.0 * trainable));
    fmt::print(os, "Non-trainable params: {} ({})\n{}\n", total - trainable, readable_size(4.0 * (total - trainable)),
               rule);
}

}  // namespace keras
