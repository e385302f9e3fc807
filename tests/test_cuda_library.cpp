// The CUDA backend as a library of its own (libkerascpp-cuda.so), seen from a program linking the
// shared libkerascpp only: CPU work loads no CUDA library; the first question about a CUDA device
// opens libkerascpp-cuda (found beside libkerascpp); a CUDA library that cannot be loaded
// (KERASCPP_CUDA_LIBRARY naming a missing file, a library that is not kerascpp's, or one of another
// version) makes CUDA unavailable with a message naming the file and why, and using cuda:0 raises it.
// meson runs each case in its own process (tests/meson.build), the last two with KERASCPP_CUDA_LIBRARY set.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <keras/keras.hpp>

#include "test_helpers.hpp"

using namespace keras;
using test_helpers::message_of;

namespace {

// Whether a file whose name contains `name` is mapped into this process (/proc/self/maps).
bool mapped(const std::string& name) {
    std::ifstream maps("/proc/self/maps");
    REQUIRE(maps.good());
    for (std::string line; std::getline(maps, line);)
        if (line.find(name) != std::string::npos) return true;
    return false;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A tiny model trained and run on `device`; returns its predictions on the host.
Tensor train_tiny_model(Device device) {
    utils::set_random_seed(3);
    Sequential model;
    model.add(layers::Input({3}));
    model.add(layers::Dense(4, "relu"));
    model.add(layers::Dense(1, "sigmoid"));
    model.to(device);
    model.compile(optimizers::Adam(0.01), "binary_crossentropy");
    const Tensor x(std::vector<float>{0.1f, 0.2f, 0.3f, -1.f, 0.f, 1.f, 0.5f, 0.5f, -0.5f, 1.f, 1.f, 1.f}, {4, 3});
    const Tensor y(std::vector<float>{0.f, 1.f, 0.f, 1.f}, {4, 1});
    model.fit(x, y, {.batch_size = 2, .epochs = 2, .verbose = 0});
    return model.predict(x, {.verbose = 0});
}

}  // namespace

TEST_CASE("a CPU program loads no CUDA library") {
    const Tensor y = train_tiny_model(Device::cpu());
    CHECK(y.shape() == Shape{4, 1});
    (void)cuda::is_built();   // answered at compile time: opens nothing
    for (const char* name : {"libkerascpp-cuda", "libcudart", "libcublas", "libcudnn"}) {
        INFO(name);
        CHECK_FALSE(mapped(name));
    }
}

TEST_CASE("the CUDA library is opened on the first use of a CUDA device") {
    if (std::getenv("KERASCPP_CUDA_LIBRARY") != nullptr) return;   // the next case's runs
    const std::string why = cuda::unavailable_reason(0);
    INFO("unavailable_reason: " << why);
    if (!cuda::is_built()) {
        CHECK(contains(why, "this build of kerascpp has no CUDA backend"));
        CHECK_FALSE(mapped("libkerascpp-cuda"));
        return;
    }
    // Found beside libkerascpp (the build tree here, the libdir when installed) and loaded, with the
    // CUDA runtime it links.
    CHECK(mapped("libkerascpp-cuda.so"));
    CHECK(mapped("libcudart"));
    if (!cuda::is_available()) {
        CHECK(contains(why, "this machine has no usable CUDA GPU"));
        return;
    }
    // A GPU: tensors made by libkerascpp, computed on by the library's backend, and back.
    CHECK(why.empty());
    const Tensor x = Tensor(std::vector<float>{1.f, -2.f, 3.f}, {3}).to(Device::cuda(0));
    CHECK(cuda::memory_stats(0).bytes_in_use > 0);
    CHECK(ops::multiply(x, x).to(Device::cpu()).to_vector<float>() == std::vector<float>{1.f, 4.f, 9.f});
    const Tensor cpu = train_tiny_model(Device::cpu());
    const Tensor gpu = train_tiny_model(Device::cuda(0));
    for (int64_t i = 0; i < cpu.numel(); ++i) CHECK(gpu.item(i) == doctest::Approx(cpu.item(i)).epsilon(1e-4));
}

TEST_CASE("a CUDA library that cannot be loaded makes CUDA unavailable, saying why") {
    const char* forced = std::getenv("KERASCPP_CUDA_LIBRARY");
    if (forced == nullptr) return;   // run by meson with KERASCPP_CUDA_LIBRARY set
    const std::string why = cuda::unavailable_reason(0);
    INFO("unavailable_reason: " << why);
    CHECK_FALSE(cuda::is_available());
    CHECK(cuda::device_count() == 0);
    if (!cuda::is_built()) {
        CHECK(contains(why, "this build of kerascpp has no CUDA backend"));
        return;
    }
    CHECK(contains(why, "device cuda:0 requested, but "));
    CHECK(contains(why, forced));
    // Set by meson: a part of the message this library must give (dlopen's or dlsym's own words, or
    // the two versions).
    const char* expected = std::getenv("EXPECTED_CUDA_ERROR");
    REQUIRE(expected != nullptr);
    CHECK(contains(why, expected));
    // Using the device raises the same message as a RuntimeError, never a crash.
    CHECK(message_of<RuntimeError>([] { (void)Tensor::zeros({2}, DType::float32, Device::cuda(0)); }) == why);
    CHECK(message_of<RuntimeError>([] { (void)train_tiny_model(Device::cuda(0)); }) == why);
    CHECK_THROWS_AS((void)cuda::memory_stats(0), RuntimeError);
    // The CPU goes on working, and no CUDA runtime was loaded.
    CHECK(train_tiny_model(Device::cpu()).shape() == Shape{4, 1});
    CHECK_FALSE(mapped("libcudart"));
}
