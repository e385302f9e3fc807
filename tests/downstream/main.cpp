// A downstream program built against an installed kerascpp (tests/check_installed.sh): a 2-layer
// model, one predict, an error message formatted in the program, the header and library versions,
// which must agree, and last whether CUDA can be used (which opens libkerascpp-cuda in a CUDA build:
// check_installed.sh looks for the library's load error).
#include <keras/keras.hpp>

#include <cstdio>
#include <cstring>

int main() {
    using namespace keras;
    utils::set_random_seed(1);
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(4, "relu"));
    model.add(layers::Dense(1, "sigmoid"));
    const Tensor x(std::vector<float>{0.1f, 0.2f, 0.3f, -1.f, 0.f, 1.f}, {2, 3});
    const Tensor y = model.predict(x, {.verbose = 0});
    std::printf("predict shape (%lld, %lld), first %.4f\n", static_cast<long long>(y.shape()[0]),
                static_cast<long long>(y.shape()[1]), y.item(0));
    // keras/errors.hpp's helpers format with fmt in the program's own code: it must link libfmt.
    try {
        value_error("units must be positive, got {}", -1);
    } catch (const ValueError& e) {
        std::printf("ValueError: %s\n", e.what());
    }
    std::printf("kerascpp headers %s, library %s\n", KERASCPP_VERSION_STRING, keras::version());
    if (std::strcmp(KERASCPP_VERSION_STRING, keras::version()) != 0) {
        std::fprintf(stderr, "header / library version mismatch\n");
        return 1;
    }
    std::printf("cuda: %s\n", cuda::is_available() ? "available" : cuda::unavailable_reason(0).c_str());
    return 0;
}
