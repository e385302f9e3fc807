// Host-side tests of device selection and device memory bookkeeping: keras::Device parsing and
// printing, KERASCPP_DEVICE, set_default_device, the errors for CUDA requests that cannot be served
// (this build without CUDA, or this machine without a GPU: whichever is true where the test runs),
// CPU tensors' device behaviour, Model::to, and the caching allocator's size classes and reuse
// (driven by a fake raw allocator, so no GPU is needed).
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cuda/caching_allocator.hpp"
#include "keras/backend.hpp"
#include "keras/device.hpp"
#include "keras/errors.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/dense.hpp"
#include "keras/model.hpp"
#include "keras/tensor.hpp"
#include "test_helpers.hpp"

using keras::Device;
using keras::DType;
using keras::Tensor;
using test_helpers::message_of;

namespace {

// The message every CUDA request must give on this machine, built from what the runtime says
// independently of kerascpp's wording: either the build has no CUDA, or the machine has no GPU.
bool cuda_usable() { return keras::cuda::is_available(); }

void check_cuda_refusal(const std::string& message, const std::string& device) {
    INFO("message: " << message);
    CHECK(message.find("device " + device + " requested") != std::string::npos);
    if (!keras::cuda::is_built()) {
        CHECK(message.find("this build of kerascpp has no CUDA backend") != std::string::npos);
        CHECK(message.find("-Dcuda=disabled") != std::string::npos);
    } else if (keras::cuda::device_count() == 0) {
        CHECK(message.find("this machine has no usable CUDA GPU") != std::string::npos);
        // The CUDA runtime's own words follow, e.g. "cudaGetDeviceCount failed: no CUDA-capable device
        // is detected (cudaErrorNoDevice)".
        CHECK(message.find("cudaGetDeviceCount") != std::string::npos);
    } else {
        CHECK(message.find("CUDA GPU(s): cuda:0 to cuda:") != std::string::npos);
    }
}

// Size classes by enumeration: the smallest 512 or 2^k * {1, 1.25, 1.5, 1.75} that holds `bytes`.
size_t naive_size_class(size_t bytes) {
    size_t best = SIZE_MAX;
    for (size_t octave = 1; octave != 0 && octave <= (size_t{1} << 50); octave *= 2)
        for (size_t quarters : {4, 5, 6, 7}) {
            const size_t candidate = octave * quarters / 4;
            if (candidate >= 512 && candidate >= bytes && candidate < best && octave * quarters % 4 == 0) best = candidate;
        }
    return std::max<size_t>(best, 512);
}

// A raw allocator over malloc with a byte budget, counting its calls.
struct FakeDevice {
    size_t budget = SIZE_MAX, used = 0, allocations = 0, releases = 0;
    std::map<void*, size_t> live;
    keras::backend::CachingAllocator::RawMemory raw() {
        return {.allocate = [this](size_t bytes) -> void* {
                    if (used + bytes > budget) return nullptr;
                    void* p = std::malloc(bytes);
                    live[p] = bytes;
                    used += bytes;
                    ++allocations;
                    return p;
                },
                .release = [this](void* p) {
                    used -= live.at(p);
                    live.erase(p);
                    ++releases;
                    std::free(p);
                },
                .device_name = "fake:0"};
    }
};

}  // namespace

// Runs first in this file's order; the meson tests device_env_* start the program with
// KERASCPP_DEVICE set (and select this case alone), the plain `device` test without it.
TEST_CASE("KERASCPP_DEVICE chooses the default device, and a bad value is a clear error every time") {
    const char* env = std::getenv("KERASCPP_DEVICE");
    const std::string value = env ? env : "";
    if (value.empty() || value == "cpu") {
        CHECK(keras::default_device() == Device::cpu());
    } else if (value == "gpu") {
        for (int attempt = 0; attempt < 2; ++attempt)
            CHECK(message_of<keras::ValueError>([] { keras::default_device(); }) ==
                  "KERASCPP_DEVICE='gpu' is not a device: expected cpu, cuda or cuda:N");
    } else if (value == "cuda:1") {
        if (keras::cuda::device_count() > 1) {
            CHECK(keras::default_device() == Device::cuda(1));
        } else {
            const std::string m = message_of<keras::RuntimeError>([] { keras::default_device(); });
            CHECK(m.rfind("KERASCPP_DEVICE=cuda:1: ", 0) == 0);
            check_cuda_refusal(m, "cuda:1");
        }
    } else {
        FAIL("unexpected KERASCPP_DEVICE for this test: " << value);
    }
    // set_default_device overrides the environment.
    keras::set_default_device(Device::cpu());
    CHECK(keras::default_device() == Device::cpu());
}

TEST_CASE("Device: factories, type, index, equality and to_string") {
    constexpr Device cpu = Device::cpu();
    CHECK(cpu.is_cpu());
    CHECK_FALSE(cpu.is_cuda());
    CHECK(cpu.index() == 0);
    CHECK(Device::cuda().is_cuda());
    CHECK(Device::cuda().index() == 0);
    CHECK(Device::cuda(3).index() == 3);
    CHECK(Device::cuda(3).type() == Device::Type::cuda);
    CHECK(Device() == Device::cpu());
    CHECK(Device::cuda(0) == Device::cuda());
    CHECK(Device::cuda(0) != Device::cuda(1));
    CHECK(Device::cuda(0) != Device::cpu());
    CHECK(keras::to_string(Device::cpu()) == "cpu");
    CHECK(keras::to_string(Device::cuda()) == "cuda:0");
    CHECK(keras::to_string(Device::cuda(12)) == "cuda:12");
}

TEST_CASE("Device::parse accepts cpu, cuda and cuda:N, and round-trips to_string") {
    CHECK(Device::parse("cpu") == Device::cpu());
    CHECK(Device::parse("cuda") == Device::cuda(0));
    CHECK(Device::parse("cuda:0") == Device::cuda(0));
    CHECK(Device::parse("cuda:7") == Device::cuda(7));
    CHECK(Device::parse("cuda:123") == Device::cuda(123));
    for (Device d : {Device::cpu(), Device::cuda(0), Device::cuda(5)}) CHECK(Device::parse(keras::to_string(d)) == d);
}

TEST_CASE("Device::parse rejects anything else with a ValueError quoting the text") {
    for (const char* bad : {"", "gpu", "CPU", "CUDA", "cuda:", "cuda:-1", "cuda:+1", "cuda:1x", "cuda: 1", "cpu:0",
                            "cuda:99999999999", " cuda", "cuda0"}) {
        CAPTURE(bad);
        CHECK(message_of<keras::ValueError>([&] { Device::parse(bad); }) ==
              std::string("Invalid device string: '") + bad + "'. Expected 'cpu', 'cuda' or 'cuda:N' with N >= 0");
    }
}

TEST_CASE("CUDA availability is consistent") {
    CHECK(keras::cuda::is_available() == (keras::cuda::device_count() > 0));
    if (!keras::cuda::is_built()) CHECK(keras::cuda::device_count() == 0);
    CHECK(keras::cuda::unavailable_reason(0).empty() == keras::cuda::is_available());
    // An index past the last GPU is never usable.
    check_cuda_refusal(keras::cuda::unavailable_reason(1000), "cuda:1000");
}

TEST_CASE("every way of asking for an unusable CUDA device says whether the build or the machine lacks it") {
    if (cuda_usable()) {
        // On a GPU machine the same paths are exercised with an index that does not exist.
        const int missing = keras::cuda::device_count();
        const std::string name = "cuda:" + std::to_string(missing);
        check_cuda_refusal(message_of<keras::RuntimeError>([&] { keras::set_default_device(Device::cuda(missing)); }),
                           name);
        check_cuda_refusal(message_of<keras::RuntimeError>([&] { Tensor({2}, DType::float32, Device::cuda(missing)); }),
                           name);
        return;
    }
    const std::string set = message_of<keras::RuntimeError>([] { keras::set_default_device(Device::cuda()); });
    CHECK(set.rfind("set_default_device(cuda:0): ", 0) == 0);
    check_cuda_refusal(set, "cuda:0");
    CHECK(keras::default_device() == Device::cpu());   // unchanged by the failed call

    check_cuda_refusal(message_of<keras::RuntimeError>([] { keras::backend::get(Device::cuda()); }), "cuda:0");
    check_cuda_refusal(message_of<keras::RuntimeError>([] { keras::backend::device_memory(Device::cuda(2)); }),
                       "cuda:2");
    check_cuda_refusal(message_of<keras::RuntimeError>([] { Tensor({2, 3}, DType::float32, Device::cuda()); }),
                       "cuda:0");
    check_cuda_refusal(message_of<keras::RuntimeError>([] { Tensor::zeros({4}, DType::int32, Device::cuda()); }),
                       "cuda:0");
    const Tensor host = test_helpers::floats({1, 2, 3}, {3});
    check_cuda_refusal(message_of<keras::RuntimeError>([&] { host.to(Device::cuda()); }), "cuda:0");
    check_cuda_refusal(message_of<keras::RuntimeError>([] { keras::cuda::memory_stats(0); }), "cuda:0");
    CHECK_FALSE(keras::backend::has_device(Device::cuda()));

    keras::Sequential model;
    model.add(keras::layers::Dense(2));
    check_cuda_refusal(message_of<keras::RuntimeError>([&] { model.to(Device::cuda()); }), "cuda:0");
    CHECK(model.device() == Device::cpu());
}

TEST_CASE("device_memory refuses the CPU, whose tensors use host memory") {
    CHECK(message_of<keras::RuntimeError>([] { keras::backend::device_memory(Device::cpu()); }) ==
          "device_memory(cpu): CPU tensors use host memory directly");
    CHECK(keras::backend::has_device(Device::cpu()));
}

TEST_CASE("CPU tensors: device(), to(cpu) shares storage, clone and copy_from copy") {
    Tensor t = test_helpers::floats({1, 2, 3, 4}, {2, 2});
    CHECK(t.device() == Device::cpu());
    Tensor same = t.to(Device::cpu());
    CHECK(same.raw() == t.raw());
    Tensor c = t.clone();
    CHECK(c.raw() != t.raw());
    CHECK(c.to_vector<float>() == t.to_vector<float>());
    Tensor z = Tensor::zeros({2, 2});
    z.copy_from(t);
    CHECK(z.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
    CHECK(Tensor::full({3}, 2.5f).to_vector<float>() == std::vector<float>{2.5f, 2.5f, 2.5f});
    CHECK_FALSE(Tensor().to(Device::cpu()).defined());
    CHECK(message_of<keras::RuntimeError>([&] { t.data<int32_t>(); }) == "Tensor of dtype float32 accessed as int32");
}

TEST_CASE("Model::to(cpu) chains, fixes the device, and get_weights returns host copies") {
    keras::Sequential model;
    model.add(keras::layers::Dense(3));
    CHECK(&model.to(Device::cpu()) == &model);
    CHECK(model.device() == Device::cpu());
    model.build({-1, 4});
    const auto weights = model.get_weights();
    REQUIRE(weights.size() == 2);
    CHECK(weights[0].device() == Device::cpu());
    CHECK(weights[0].raw() != model.weights()[0]->value.raw());
}

TEST_CASE("CachingAllocator::size_class: at least 512 bytes, quarter-octave steps, at most 25% waste") {
    for (size_t bytes : {size_t{0}, size_t{1}, size_t{511}, size_t{512}, size_t{513}, size_t{640}, size_t{641},
                         size_t{1000}, size_t{1024}, size_t{1025}, size_t{1280}, size_t{1281}, size_t{3000},
                         size_t{4095}, size_t{65537}, size_t{1} << 30, (size_t{1} << 30) + 1, size_t{123456789}}) {
        CAPTURE(bytes);
        const size_t cls = keras::backend::CachingAllocator::size_class(bytes);
        CHECK(cls == naive_size_class(bytes));
        CHECK(cls >= bytes);
        if (bytes > 512) CHECK(static_cast<double>(cls) <= 1.25 * static_cast<double>(bytes));
    }
    CHECK(keras::backend::CachingAllocator::size_class(1025) == 1280);
    CHECK(keras::backend::CachingAllocator::size_class(3000) == 3072);
}

TEST_CASE("CachingAllocator reuses freed blocks of a size class instead of allocating again") {
    FakeDevice fake;
    keras::backend::CachingAllocator alloc(fake.raw());
    // A "training loop": the same three sizes allocated and freed 100 times.
    for (int step = 0; step < 100; ++step) {
        void* a = alloc.allocate(1000);
        void* b = alloc.allocate(4096);
        void* c = alloc.allocate(1010);   // same class as 1000 (1024), needs its own block while a lives
        CHECK(a != c);
        alloc.deallocate(b);
        alloc.deallocate(a);
        alloc.deallocate(c);
    }
    CHECK(fake.allocations == 3);
    auto s = alloc.stats();
    CHECK(s.raw_allocations == 3);
    CHECK(s.in_use_bytes == 0);
    CHECK(s.cached_bytes == 1024 + 4096 + 1024);
    CHECK(s.peak_in_use_bytes == 1024 + 4096 + 1024);
    // A smaller request of the same class takes the cached block.
    void* p = alloc.allocate(900);
    CHECK(fake.allocations == 3);
    CHECK(alloc.stats().in_use_bytes == 1024);
    alloc.deallocate(p);
    alloc.release_cached();
    CHECK(fake.releases == 3);
    CHECK(fake.live.empty());
    CHECK(alloc.stats().cached_bytes == 0);
    alloc.deallocate(nullptr);   // ignored
}

TEST_CASE("CachingAllocator frees its cache when the device is full, then reports a clear out-of-memory error") {
    FakeDevice fake;
    fake.budget = 4096;
    {
        keras::backend::CachingAllocator alloc(fake.raw());
        void* a = alloc.allocate(2048);
        alloc.deallocate(a);                 // 2048 cached
        void* b = alloc.allocate(3000);      // class 3072: fits only after the cache is released
        CHECK(fake.releases == 1);
        CHECK(alloc.stats().cached_bytes == 0);
        CHECK(message_of<keras::RuntimeError>([&] { alloc.allocate(2000); }) ==
              "Out of memory on fake:0: could not allocate 2048 bytes (3072 bytes in use by tensors)");
        alloc.deallocate(b);
        CHECK(fake.live.size() == 1);
    }
    // The destructor gave the cached block back.
    CHECK(fake.live.empty());
}
