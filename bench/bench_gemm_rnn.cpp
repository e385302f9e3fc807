// Measures the rule that picks our GEMM-step LSTM / GRU (framework/backend/onednn/gemm_rnn.cpp)
// over oneDNN's lstm / lbr_gru primitives: one forward + backward (or one inference forward) through
// the CPU backend, both paths, in float32 and bfloat16. Prints one JSON line per (cell, precision,
// training) with both times and `gemm_speedup` (primitive time / GEMM-step time).
//
//   bench_gemm_rnn [--cell lstm|gru] [--batch 64] [--steps 200] [--features 128] [--units 128] [--repeats 10]
//
// Defaults are W2 / W3's shapes. Run it on a quiet machine: each time is the median of `repeats`
// calls after a warm-up call; threads are $OMP_NUM_THREADS.
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/onednn/onednn_backend.hpp"   // internal: the bench links the internal archive
#include "bench_util.hpp"

namespace be = keras::backend;
using bench::median_ms;
using bench::random_tensor;
using keras::Tensor;

namespace {

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "error: " << error << "\n"
              << "usage: bench_gemm_rnn [--cell lstm|gru] [--batch 64] [--steps 200] [--features 128] [--units 128] "
                 "[--repeats 10]\n";
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    int64_t N = 64, T = 200, C = 128, H = 128;
    int repeats = 10;
    std::vector<be::RnnCell> cells{be::RnnCell::lstm, be::RnnCell::gru};
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage(flag + " needs a value");
        if (flag == "--cell") {
            const std::string name = argv[++i];
            if (name == "lstm") cells = {be::RnnCell::lstm};
            else if (name == "gru") cells = {be::RnnCell::gru};
            else usage("--cell takes lstm or gru, not '" + name + "'");
            continue;
        }
        const long long v = std::atoll(argv[++i]);
        if (v < 1) usage(flag + " needs a positive integer");
        if (flag == "--batch") N = v;
        else if (flag == "--steps") T = v;
        else if (flag == "--features") C = v;
        else if (flag == "--units") H = v;
        else if (flag == "--repeats") repeats = static_cast<int>(v);
        else usage("unknown option " + flag);
    }
    auto& cpu = be::get(keras::Device::cpu());
    std::mt19937 gen(7);
    const Tensor x = random_tensor({N, T, C}, 1.0f, gen), dseq = random_tensor({N, T, H}, 0.1f, gen);
    for (const be::RnnCell cell : cells) {
        const int64_t G = cell == be::RnnCell::lstm ? 4 : 3;
        const be::RnnWeights w{random_tensor({C, G * H}, 0.1f, gen), random_tensor({H, G * H}, 0.1f, gen),
                               cell == be::RnnCell::lstm ? random_tensor({G * H}, 0.1f, gen)
                                                         : random_tensor({2, G * H}, 0.1f, gen)};
        for (const be::Precision precision : {be::Precision::float32, be::Precision::bfloat16})
            for (const bool training : {true, false}) {
                const be::RnnSpec spec{.cell = cell, .units = H, .layer_name = "bench", .precision = precision};
                auto time_path = [&](be::GemmRnnMode mode) {
                    be::set_gemm_rnn_mode(mode);
                    return median_ms(repeats, [&] {
                        be::RnnForward f = cpu.rnn_forward(spec, x, w, Tensor(), Tensor(), training);
                        if (training) cpu.rnn_backward(spec, w, f, dseq, Tensor(), Tensor());
                    });
                };
                const double primitive = time_path(be::GemmRnnMode::never), gemm = time_path(be::GemmRnnMode::always);
                be::set_gemm_rnn_mode(std::nullopt);
                std::cout << nlohmann::json{{"cell", cell == be::RnnCell::lstm ? "lstm" : "gru"},
                                            {"precision", precision == be::Precision::bfloat16 ? "bfloat16" : "float32"},
                                            {"training", training}, {"batch", N}, {"steps", T}, {"features", C},
                                            {"units", H}, {"threads", be::OneDnnBackend::current_threads()},
                                            {"primitive_ms", primitive}, {"gemm_ms", gemm},
                                            {"gemm_speedup", primitive / gemm}}
                                 .dump()
                          << std::endl;
            }
    }
}
