// Model::load_weights on a legacy-layout .h5 (Keras 2 / tf-keras save_weights, or a whole model file:
// layer_names / weight_names attributes), into the weights fixtures' architecture.
#include "fixture_model.hpp"
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_file("weights.h5", fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { fuzz::fixture_model().load_weights(path); });
    return 0;
}
