// Inference latency of a model loaded from an .h5 file, one request at a time (the C++ deployment
// case, issue 13 item 5). Prints one JSON line per path:
//   predict           model.predict(x, {.batch_size = batch, .verbose = 0}): Keras's batching loop
//   predict_on_batch  model.predict_on_batch(x): one batch, no loop, callbacks or progress bar
//   call              model(x): the layers' forward on the model's device
//
//   bench_latency --model PATH.h5 --vocab V --seq-len T --batch B [--requests 500] [--warmup 50] [--seed 1]
//
// Each request is a fresh batch of B random token rows (--seq-len tokens: the model's input length), timed from the
// call to the host-side result. bench/latency.py runs it beside Keras and PyTorch.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <keras/keras.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
    std::string model;
    int64_t vocab = 0, seq_len = 0, batch = 0;
    int requests = 500, warmup = 50;
    uint64_t seed = 1;
};

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "error: " << error << "\n"
              << "usage: bench_latency --model PATH.h5 --vocab V --seq-len T --batch B [--requests 500] [--warmup 50] [--seed 1]\n";
    std::exit(2);
}

int64_t positive(const std::string& flag, const std::string& text) {
    try {
        size_t used = 0;
        const long long value = std::stoll(text, &used);
        if (used == text.size() && value >= 1) return value;
    } catch (const std::exception&) {
    }
    usage(flag + " needs a positive integer, got '" + text + "'");
}

Args parse_args(int argc, char** argv) {
    Args args;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--model") args.model = value();
        else if (flag == "--vocab") args.vocab = positive(flag, value());
        else if (flag == "--seq-len") args.seq_len = positive(flag, value());
        else if (flag == "--batch") args.batch = positive(flag, value());
        else if (flag == "--requests") args.requests = static_cast<int>(positive(flag, value()));
        else if (flag == "--warmup") args.warmup = static_cast<int>(positive(flag, value()));
        else if (flag == "--seed") args.seed = static_cast<uint64_t>(positive(flag, value()));
        else usage("unknown argument '" + flag + "'");
    }
    if (args.model.empty() || args.vocab == 0 || args.seq_len == 0 || args.batch == 0)
        usage("give --model, --vocab, --seq-len and --batch");
    return args;
}

// The q-quantile (0..1) of the samples, nearest rank.
double quantile(std::vector<double> values, double q) {
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(rank, values.size() - 1)];
}

// Times `requests` calls of `serve` on fresh inputs after `warmup` untimed ones; milliseconds.
std::vector<double> time_requests(const Args& args, int64_t seq_len, const std::function<keras::Tensor(const keras::Tensor&)>& serve) {
    std::mt19937_64 gen(args.seed);
    std::uniform_int_distribution<int32_t> token(1, static_cast<int32_t>(args.vocab - 1));
    auto request = [&] {
        std::vector<int32_t> ids(static_cast<size_t>(args.batch * seq_len));
        for (int32_t& t : ids) t = token(gen);
        return keras::Tensor(ids, {args.batch, seq_len});
    };
    float sink = 0.0f;   // reads each result, so no path can skip work
    for (int i = 0; i < args.warmup; ++i) sink += serve(request()).data<float>()[0];
    std::vector<double> ms;
    for (int i = 0; i < args.requests; ++i) {
        const keras::Tensor x = request();
        const auto start = Clock::now();
        const keras::Tensor y = serve(x);
        sink += y.data<float>()[0];
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    if (sink != sink) std::cerr << "bench_latency: a NaN output\n";
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse_args(argc, argv);
    try {
        auto model = keras::models::load_model(args.model);
        const std::vector<std::pair<std::string, std::function<keras::Tensor(const keras::Tensor&)>>> paths = {
            {"predict", [&](const keras::Tensor& x) { return model->predict(x, {.batch_size = args.batch, .verbose = 0}); }},
            {"predict_on_batch", [&](const keras::Tensor& x) { return model->predict_on_batch(x); }},
            {"call", [&](const keras::Tensor& x) { return (*model)(x).to(keras::Device::cpu()); }},
        };
        for (const auto& [name, serve] : paths) {
            const std::vector<double> ms = time_requests(args, args.seq_len, serve);
            const char* threads = std::getenv("OMP_NUM_THREADS");
            std::cout << nlohmann::json{{"framework", "kerascpp"}, {"path", name}, {"model", args.model},
                                        {"batch", args.batch}, {"requests", args.requests},
                                        {"p50_ms", quantile(ms, 0.50)}, {"p99_ms", quantile(ms, 0.99)},
                                        {"threads", threads ? threads : ""}}
                             .dump()
                      << std::endl;
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_latency: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
