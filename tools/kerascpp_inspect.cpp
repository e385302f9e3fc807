// kerascpp-inspect: what a Keras HDF5 file holds. For a model file (model.save, Keras 2.0.x-3.x): the
// Keras version and backend that wrote it, the model summary (the model rebuilt by load_model, not
// compiled), and every weight's path, shape and dtype, optimizer weights included. For a legacy
// weights file (save_weights to ".h5"): the version, backend and weights.
#include <hdf5.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <keras/keras.hpp>

#include "saving/h5_file.hpp"

namespace {

const char* kUsage =
    "usage: kerascpp-inspect [--help] FILE.h5\n"
    "\n"
    "Prints what a Keras HDF5 file holds: the Keras version and backend that wrote it, the model\n"
    "summary (model files), and every weight's path, shape and dtype.\n"
    "\n"
    "  FILE.h5   a model file (model.save / Keras's model.save(\"....h5\")) or a legacy weights file\n"
    "            (save_weights(\"....h5\"))\n"
    "  --help    show this message and exit\n"
    "\n"
    "Exit status: 0 on success, 1 when the file cannot be read as a Keras file, 2 for bad arguments.\n";

// numpy's name for a dataset's element type ("float32", "int64", ...).
std::string numpy_dtype(const keras::saving::H5Group& group, const std::string& path) {
    const keras::saving::H5Handle dataset(H5Dopen2(group.id(), path.c_str(), H5P_DEFAULT));
    if (!dataset.valid()) return "?";
    const keras::saving::H5Handle type(H5Dget_type(dataset.get()));
    const size_t bits = H5Tget_size(type.get()) * 8;
    switch (H5Tget_class(type.get())) {
        case H5T_FLOAT: return fmt::format("float{}", bits);
        case H5T_INTEGER: return fmt::format("{}int{}", H5Tget_sign(type.get()) == H5T_SGN_NONE ? "u" : "", bits);
        default: return "other";
    }
}

struct WeightRow {
    std::string path, shape, dtype;
};

std::string root_attr(const keras::saving::H5Group& group, const char* name) {
    return group.has_attr(name) ? group.string_attr(name) : std::string("(not recorded)");
}

// Every weight listed in `group`'s layer_names / weight_names (the layout of model_weights and of a
// legacy weights file), in that order.
void collect_layer_weights(const keras::saving::H5Group& group, const std::string& prefix, std::vector<WeightRow>& rows) {
    for (const auto& layer : group.string_array_attr("layer_names")) {
        const auto layer_group = group.group(layer);
        for (const auto& weight : layer_group.string_array_attr("weight_names"))
            rows.push_back({prefix + layer + "/" + weight, keras::shape_str(layer_group.dataset_shape(weight)),
                            numpy_dtype(layer_group, weight)});
    }
}

void collect_optimizer_weights(const keras::saving::H5Group& root, std::vector<WeightRow>& rows) {
    if (!root.has_group("optimizer_weights")) return;
    const auto group = root.group("optimizer_weights");
    if (!group.has_string_array_attr("weight_names")) return;
    for (const auto& weight : group.string_array_attr("weight_names"))
        rows.push_back({"optimizer_weights/" + weight, keras::shape_str(group.dataset_shape(weight)),
                        numpy_dtype(group, weight)});
}

void print_rows(const std::vector<WeightRow>& rows) {
    size_t path_width = 4, shape_width = 5;
    for (const auto& r : rows) {
        path_width = std::max(path_width, r.path.size());
        shape_width = std::max(shape_width, r.shape.size());
    }
    std::cout << fmt::format("{:<{}}  {:<{}}  {}\n", "Weight", path_width, "Shape", shape_width, "Dtype");
    for (const auto& r : rows) std::cout << fmt::format("{:<{}}  {:<{}}  {}\n", r.path, path_width, r.shape, shape_width, r.dtype);
}

std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

int inspect(const std::string& filepath) {
    const auto file = keras::saving::H5File::open(filepath);
    const bool model_file = file.has_group("model_weights");
    if (!model_file && file.has_group("layers") && !file.has_string_array_attr("layer_names"))
        keras::value_error("'{}' is in Keras 3's weights layout (.weights.h5), which kerascpp-inspect does not list; "
                           "load it with Model::load_weights", filepath);
    if (!model_file && !file.has_string_array_attr("layer_names"))
        keras::value_error("'{}' is an HDF5 file but not a Keras model or legacy weights file (no 'model_weights' "
                           "group and no 'layer_names' attribute)", filepath);
    std::cout << "File: " << filepath << "\n";
    std::cout << "Keras version: " << root_attr(file, "keras_version") << "\n";
    std::cout << "Backend: " << root_attr(file, "backend") << "\n";
    if (file.has_attr("kerascpp_version"))   // our files say so (saving/writer_stamp.hpp)
        std::cout << "Written by: kerascpp " << file.string_attr("kerascpp_version") << "\n";
    std::cout << "Content: " << (model_file ? "model (architecture, weights" : "weights only") <<
        (model_file && file.has_attr("training_config") ? ", training config" : "") <<
        (model_file && file.has_group("optimizer_weights") ? ", optimizer state" : "") << (model_file ? ")" : "") << "\n\n";

    std::vector<WeightRow> rows;
    if (model_file) {
        auto model = keras::models::load_model(filepath, {.compile = false});
        model->summary();
        std::cout << "\n";
        collect_layer_weights(file.group("model_weights"), "model_weights/", rows);
        collect_optimizer_weights(file, rows);
    } else {
        collect_layer_weights(file, "", rows);
    }
    print_rows(rows);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << kUsage;
        return 0;
    }
    if (args.size() != 1 || args[0].starts_with("-")) {
        std::cerr << "kerascpp-inspect: error: "
                  << (args.empty() ? std::string("expected one FILE.h5") : "expected one FILE.h5, got: " + joined(args))
                  << "\n\n" << kUsage;
        return 2;
    }
    keras::saving::silence_hdf5_errors();
    try {
        return inspect(args[0]);
    } catch (const std::exception& e) {
        std::cerr << "kerascpp-inspect: error: " << e.what() << "\n";
        return 1;
    }
}
