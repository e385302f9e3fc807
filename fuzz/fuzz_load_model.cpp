// keras::models::load_model on an arbitrary .h5 file (model_config, training_config, model_weights,
// optimizer_weights: everything the loader reads).
#include <keras/models.hpp>

#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_file("model.h5", fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { keras::models::load_model(path); });
    return 0;
}
