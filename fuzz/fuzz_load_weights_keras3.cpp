// Model::load_weights on a Keras 3 ".weights.h5" (layers/<name>/vars/<i> groups), into the weights
// fixtures' architecture. The name's ending is what selects the Keras 3 layout.
#include "fixture_model.hpp"
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_file("model.weights.h5", fuzz::as_text(data, size));
    fuzz::keras_errors_only([&] { fuzz::fixture_model().load_weights(path); });
    return 0;
}
