// Measures the rule that picks the small-RNN kernel (framework/backend/onednn/small_rnn.cpp) over
// oneDNN's vanilla_rnn primitive: one SimpleRNN forward + backward through the CPU backend, both
// paths, over a grid of shapes, at each thread count. Prints one JSON line per (shape, threads) with
// both times and their ratio; the rule's thresholds (kSmallRnnAuto* in onednn_backend.hpp) should
// pick the kernel exactly where `kernel_speedup` > 1.
//
//   bench_small_rnn [--units 8,16,32,64] [--features 16,100,256,512,1024] [--batch 32,100,256]
//                   [--steps 130] [--threads 1,2] [--repeats 20]
//
// Run it on a quiet machine: each time is the median of `repeats` calls after a warm-up call. The
// CPU times (all threads of the process) show what spinning at barriers costs a busy machine.
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/onednn/onednn_backend.hpp"   // internal: the bench links the internal archive
#include "bench_util.hpp"

namespace be = keras::backend;
using keras::Tensor;

namespace {

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "error: " << error << "\n"
              << "usage: bench_small_rnn [--units 8,16,32,64] [--features 16,100,256,512,1024] "
                 "[--batch 32,100,256] [--steps 130] [--threads 1,2] [--repeats 20]\n";
    std::exit(2);
}

std::vector<int64_t> parse_list(const std::string& flag, const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        char* end = nullptr;
        const long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v < 1) usage(flag + " needs positive integers separated by commas");
        out.push_back(v);
    }
    if (out.empty()) usage(flag + " needs a value");
    return out;
}

using bench::random_tensor;

// OpenMP's thread count for the calling thread, in the runtime oneDNN loaded (as threads.cpp does).
void set_threads(int n) {
    auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    if (set) set(n);
}

double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

struct Timing {
    double ms;       // median wall time of one forward + backward
    double cpu_ms;   // mean CPU time of the process (all threads; spinning counts) per call
};

// One forward + backward on the path `mode` picks.
Timing time_path(be::SmallRnnMode mode, const be::RnnSpec& spec, const Tensor& x, const be::RnnWeights& w,
                 const Tensor& dh, int repeats) {
    be::set_small_rnn_mode(mode);
    auto& cpu = dynamic_cast<be::OneDnnBackend&>(be::get(keras::Device::cpu()));
    auto once = [&] {
        be::RnnForward f = cpu.rnn_forward(spec, x, w, Tensor(), Tensor(), true);
        cpu.rnn_backward(spec, w, f, Tensor(), dh, Tensor());
    };
    once();   // primitive creation, first touch
    std::vector<double> ms;
    const double cpu_start = process_cpu_ms();
    for (int i = 0; i < repeats; ++i) {
        const auto start = std::chrono::steady_clock::now();
        once();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    const double cpu_ms = (process_cpu_ms() - cpu_start) / repeats;
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], cpu_ms};
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int64_t> units{8, 16, 32, 64}, features{16, 100, 256, 512, 1024}, batches{32, 100, 256},
        threads{1, 2};
    int64_t steps = 130, repeats = 20;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage(flag + " needs a value");
        const std::string value = argv[++i];
        if (flag == "--units") units = parse_list(flag, value);
        else if (flag == "--features") features = parse_list(flag, value);
        else if (flag == "--batch") batches = parse_list(flag, value);
        else if (flag == "--threads") threads = parse_list(flag, value);
        else if (flag == "--steps") steps = parse_list(flag, value).front();
        else if (flag == "--repeats") repeats = parse_list(flag, value).front();
        else usage("unknown argument '" + flag + "'");
    }
    std::mt19937 gen(42);
    for (int64_t H : units) {
        if (H > be::kSmallRnnMaxUnits) usage("--units: the kernel takes at most " + std::to_string(be::kSmallRnnMaxUnits));
        for (int64_t C : features)
            for (int64_t N : batches) {
                const be::RnnSpec spec{.cell = be::RnnCell::simple_rnn, .units = H, .layer_name = "bench"};
                const Tensor x = random_tensor({N, steps, C}, 1.0f, gen);
                const be::RnnWeights w{random_tensor({C, H}, 0.3f, gen), random_tensor({H, H}, 0.3f, gen),
                                       random_tensor({H}, 0.1f, gen)};
                const Tensor dh = random_tensor({N, H}, 1.0f, gen);
                for (int64_t t : threads) {
                    set_threads(static_cast<int>(t));
                    const Timing kernel = time_path(be::SmallRnnMode::always, spec, x, w, dh, static_cast<int>(repeats));
                    const Timing onednn = time_path(be::SmallRnnMode::never, spec, x, w, dh, static_cast<int>(repeats));
                    be::set_small_rnn_mode(be::SmallRnnMode::automatic);
                    const nlohmann::json line{{"units", H},
                                              {"features", C},
                                              {"batch", N},
                                              {"steps", steps},
                                              {"threads", t},
                                              {"kernel_ms", kernel.ms},
                                              {"onednn_ms", onednn.ms},
                                              {"kernel_speedup", onednn.ms / kernel.ms},
                                              {"kernel_cpu_ms", kernel.cpu_ms},
                                              {"onednn_cpu_ms", onednn.cpu_ms},
                                              {"rule_picks_kernel", be::small_rnn_chosen(spec, C)}};
                    std::cout << line.dump() << std::endl;
                }
            }
    }
    be::set_small_rnn_mode(std::nullopt);
    return 0;
}
