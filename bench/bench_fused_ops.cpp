// The CPU backend's fused ops on oneDNN's primitives (1-D convolution, pooling, layer and batch
// normalization) against Backend's composed defaults (built from the generic ops: what the layers ran
// before the primitives, and what a device without its own kernels runs). One forward + backward per
// call, on a few shapes: the Conv1D and MaxPooling1D of examples/imdb_cnn_lstm at its batch size, a
// larger Conv1D, a depthwise one (SeparableConv1D's first half), examples/imdb_transformer's
// LayerNormalization, and a BatchNormalization over a Conv1D's output. Prints one JSON line per shape
// with both medians (ms) and their ratio.
//
//   OMP_NUM_THREADS=2 bench_fused_ops [--repeats 30]
//
// Run it on a quiet machine: each time is the median of `repeats` calls after a warm-up call.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "keras/backend.hpp"

namespace be = keras::backend;
using keras::Tensor;

namespace {

using bench::median_ms;
using bench::random_tensor;

struct ConvShape {
    std::string name;
    int64_t n, steps, channels, filters, size, groups;
    std::string padding;
};

void report(const std::string& name, double onednn, double composed) {
    std::cout << nlohmann::json{{"shape", name}, {"onednn_ms", onednn}, {"composed_ms", composed},
                                {"speedup", composed / onednn}}
                     .dump()
              << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
    int repeats = 30;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--repeats" && i + 1 < argc) {
            repeats = std::max(1, std::atoi(argv[++i]));
        } else {
            std::cerr << "usage: bench_fused_ops [--repeats 30]\n";
            return 2;
        }
    }
    be::Backend& cpu = be::get(keras::Device::cpu());
    std::mt19937 gen(7);
    const std::vector<ConvShape> convs = {
        {"imdb_cnn_lstm Conv1D(64, 5): (30, 100, 128)", 30, 100, 128, 64, 5, 1, "valid"},
        {"Conv1D(128, 5, same): (64, 400, 128)", 64, 400, 128, 128, 5, 1, "same"},
        {"depthwise (5, 1, 128): (64, 400, 128)", 64, 400, 128, 128, 5, 128, "same"},
    };
    for (const ConvShape& s : convs) {
        const auto w = be::Window1D::for_padding(s.size, 1, 1, s.padding, s.steps);
        const Tensor x = random_tensor({s.n, s.steps, s.channels}, 1.0f, gen);
        const Tensor k = random_tensor({s.size, s.channels / s.groups, s.filters}, 1.0f, gen);
        const Tensor dy = random_tensor({s.n, w.out_steps(s.steps), s.filters}, 1.0f, gen);
        Tensor dx, dk;
        const double onednn = median_ms(repeats, [&] {
            cpu.conv1d(w, s.groups, x, k);
            cpu.conv1d_backward(w, s.groups, x, k, dy, dx, dk);
        });
        const double composed = median_ms(repeats, [&] {
            cpu.Backend::conv1d(w, s.groups, x, k);
            cpu.Backend::conv1d_backward(w, s.groups, x, k, dy, dx, dk);
        });
        report(s.name + " forward + backward", onednn, composed);
    }
    // imdb_cnn_lstm's MaxPooling1D(4) over the Conv1D's output.
    const auto w = be::Window1D::for_padding(4, 4, 1, "valid", 96);
    const Tensor x = random_tensor({30, 96, 64}, 1.0f, gen);
    const Tensor dy = random_tensor({30, w.out_steps(96), 64}, 1.0f, gen);
    const double onednn = median_ms(repeats, [&] {
        const auto fwd = cpu.pool1d(be::PoolKind::max, w, x, true);
        cpu.pool1d_backward(be::PoolKind::max, w, x, fwd, dy);
    });
    const double composed = median_ms(repeats, [&] {
        const auto fwd = cpu.Backend::pool1d(be::PoolKind::max, w, x, true);
        cpu.Backend::pool1d_backward(be::PoolKind::max, w, x, fwd, dy);
    });
    report("imdb_cnn_lstm MaxPooling1D(4): (30, 96, 64) forward + backward", onednn, composed);

    // imdb_transformer's LayerNormalization (batch 32, 200 steps, embed_dim 32), and a
    // BatchNormalization over a Conv1D's output (batch 64, 400 steps, 128 channels).
    const Tensor gamma32 = random_tensor({32}, 1.0f, gen), beta32 = random_tensor({32}, 1.0f, gen);
    const Tensor xl = random_tensor({32, 200, 32}, 1.0f, gen), dyl = random_tensor({32, 200, 32}, 1.0f, gen);
    Tensor dx, dgamma, dbeta;
    report("imdb_transformer LayerNormalization: (32, 200, 32) forward + backward",
           median_ms(repeats, [&] {
               const auto fwd = cpu.layer_norm(xl, gamma32, beta32, 1e-6f, true);
               cpu.layer_norm_backward(xl, gamma32, beta32, 1e-6f, fwd, dyl, dx, dgamma, dbeta);
           }),
           median_ms(repeats, [&] {
               const auto fwd = cpu.Backend::layer_norm(xl, gamma32, beta32, 1e-6f, true);
               cpu.Backend::layer_norm_backward(xl, gamma32, beta32, 1e-6f, fwd, dyl, dx, dgamma, dbeta);
           }));
    const Tensor gamma128 = random_tensor({128}, 1.0f, gen), beta128 = random_tensor({128}, 1.0f, gen);
    const Tensor xb = random_tensor({64, 400, 128}, 1.0f, gen), dyb = random_tensor({64, 400, 128}, 1.0f, gen);
    report("BatchNormalization in training: (64, 400, 128) forward + backward",
           median_ms(repeats, [&] {
               const auto fwd = cpu.batch_norm_training(xb, gamma128, beta128, 1e-3f);
               cpu.batch_norm_training_backward(xb, gamma128, beta128, 1e-3f, fwd, dyb, dx, dgamma, dbeta);
           }),
           median_ms(repeats, [&] {
               const auto fwd = cpu.Backend::batch_norm_training(xb, gamma128, beta128, 1e-3f);
               cpu.Backend::batch_norm_training_backward(xb, gamma128, beta128, 1e-3f, fwd, dyb, dx, dgamma, dbeta);
           }));
}
