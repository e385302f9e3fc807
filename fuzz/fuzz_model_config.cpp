// JSON configs: kerascpp has no public model_from_json, so the config entry is load_model reading a
// file's model_config (and training_config). The input is text:
//   <keras_version>\n<model_config JSON>[\0<training_config JSON>]
// written as attributes of a fresh .h5 (with an empty model_weights group), so the fuzzer works on the
// JSON itself rather than on HDF5's structure. A model without weights reaches training_config too.
#include <keras/models.hpp>

#include "harness.hpp"
#include "saving/h5_file.hpp"

namespace {

struct Parts {
    std::string version, model_config, training_config;
};

Parts split(std::string_view text) {
    Parts p;
    const size_t eol = text.find('\n');
    p.version = std::string(text.substr(0, eol));
    if (eol == std::string_view::npos) return p;
    std::string_view rest = text.substr(eol + 1);
    const size_t nul = rest.find('\0');
    p.model_config = std::string(rest.substr(0, nul));
    if (nul != std::string_view::npos) p.training_config = std::string(rest.substr(nul + 1));
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const Parts parts = split(fuzz::as_text(data, size));
    const std::string path = (fuzz::work_dir() / "config.h5").string();
    {
        auto file = keras::saving::H5File::create(path);
        file.write_string_attr("keras_version", parts.version);
        file.write_string_attr("backend", "tensorflow");
        file.write_string_attr("model_config", parts.model_config);
        if (!parts.training_config.empty()) file.write_string_attr("training_config", parts.training_config);
        file.create_group("model_weights").write_string_array_attr("layer_names", {});
    }
    fuzz::keras_errors_only([&] { keras::models::load_model(path); });
    return 0;
}
