// Times training epochs of the reference workloads through kerascpp's public API, and measures this
// machine's f32 SGEMM peak with a oneDNN matmul. Prints one JSON line per measurement, in the format
// bench/peers.py prints for the peer frameworks; bench/run_bench.py puts them side by side.
//
//   bench_kerascpp --workload W2 --samples 2560 --epochs 2 [--seed 1234] [--device cpu|cuda[:N]]
//                  [--recurrent-dropout 0.2]   (the RNN layer's recurrent_dropout: the training step loop)
//                  [--seq-len T] [--batch B] [--units H]   (override the workload's shape: bench/cost_growth.py)
//                  [--fixed-threads]   (keras::config::set_intra_op_parallelism_threads($OMP_NUM_THREADS):
//                                       the count kerascpp used before it adapted it per step)
//                  [--own-threads]   ($OMP_NUM_THREADS of the CPU backend's own threads at every step, the
//                                       setting the governor picks on a busy machine: bench/contention.py)
//                  [--policy float32|mixed_bfloat16]   (keras::mixed_precision::set_global_policy before the
//                                       model is made; the output Dense stays float32, as Keras advises)
//                  [--distributed dense|rows|auto]   (train inside a MultiWorkerMirroredStrategy with that
//                                       StrategyOptions::embedding_gradients; start it with mpirun -np N:
//                                       --samples and --batch are global; only rank 0 prints, with the
//                                       gradients' exchange per step: bench/distributed.py)
//   bench_kerascpp --sgemm [--size 2048] [--repeats 10]
//
// Threads: oneDNN's OpenMP runtime reads OMP_NUM_THREADS. One workload per process, so the peak RSS
// (getrusage) is that workload's alone; on a GPU, the peak device memory is the caching allocator's
// peak of bytes in use, keras::cuda::memory_stats (what torch.cuda.max_memory_allocated reports for
// PyTorch).
#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "onednn/onednn_backend.hpp"   // set_thread_setting
#include "onednn/onednn_compat.hpp"   // oneDNN 2.x or 3.x

#include <keras/backend.hpp>   // internal: the bench links the internal archive
#include <keras/keras.hpp>

namespace {

using Clock = std::chrono::steady_clock;

// The workloads of issue "The core on CPU"; peers.py holds the same table.
struct Workload {
    std::string name;
    int64_t vocab, embed;
    std::string cell;   // "SimpleRNN", "LSTM", "GRU"
    int64_t units, seq_len, batch;
};

const std::vector<Workload> kWorkloads = {
    {"W1", 6000, 100, "SimpleRNN", 16, 130, 100},
    {"W2", 20000, 128, "LSTM", 128, 200, 64},
    {"W3", 20000, 128, "GRU", 128, 200, 64},
};

struct Args {
    std::string workload;
    int64_t samples = 0;
    int epochs = 2;          // timed epochs, after one warm-up epoch
    uint64_t seed = 1234;
    std::string device = "cpu";   // "cpu", "cuda" or "cuda:N"
    double recurrent_dropout = 0.0;   // double so the JSON prints 0.2, not 0.2000000029
    int64_t seq_len = 0, batch = 0, units = 0;   // 0: the workload's own
    bool fixed_threads = false;
    bool own_threads = false;
    std::string policy = "float32";   // the global dtype policy the model is made under
    std::string distributed;          // "", or the embedding gradients' exchange: dense, rows, auto
    bool sgemm = false;
    int64_t size = 2048;     // SGEMM M = N = K
    std::string gemm_dtype = "f32";   // f32, or bf16 (bfloat16 A and B, float32 C: the mixed_bfloat16 matmul)
    int repeats = 10;
};

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "error: " << error << "\n"
              << "usage: bench_kerascpp --workload W1|W2|W3 --samples N [--epochs E] [--seed S] "
                 "[--device cpu|cuda[:N]] [--recurrent-dropout R] [--seq-len T] [--batch B] [--units H] "
                 "[--fixed-threads | --own-threads] [--policy float32|mixed_bfloat16] [--distributed dense|rows|auto]\n"
              << "       bench_kerascpp --sgemm [--size 2048] [--repeats 10] [--gemm-dtype f32|bf16]\n";
    std::exit(2);
}

int64_t parse_int(const std::string& flag, const std::string& text) {
    try {
        size_t used = 0;
        const long long value = std::stoll(text, &used);
        if (used != text.size() || value < 1) throw std::invalid_argument(text);
        return value;
    } catch (const std::exception&) {
        usage(flag + " needs a positive integer, got '" + text + "'");
    }
}

Args parse_args(int argc, char** argv) {
    Args args;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--workload") args.workload = value();
        else if (flag == "--samples") args.samples = parse_int(flag, value());
        else if (flag == "--epochs") args.epochs = static_cast<int>(parse_int(flag, value()));
        else if (flag == "--seed") args.seed = static_cast<uint64_t>(parse_int(flag, value()));
        else if (flag == "--device") args.device = value();
        else if (flag == "--recurrent-dropout") args.recurrent_dropout = std::stod(value());
        else if (flag == "--seq-len") args.seq_len = parse_int(flag, value());
        else if (flag == "--batch") args.batch = parse_int(flag, value());
        else if (flag == "--units") args.units = parse_int(flag, value());
        else if (flag == "--fixed-threads") args.fixed_threads = true;
        else if (flag == "--own-threads") args.own_threads = true;
        else if (flag == "--policy") args.policy = value();
        else if (flag == "--distributed") args.distributed = value();
        else if (flag == "--sgemm") args.sgemm = true;
        else if (flag == "--size") args.size = parse_int(flag, value());
        else if (flag == "--repeats") args.repeats = static_cast<int>(parse_int(flag, value()));
        else if (flag == "--gemm-dtype") args.gemm_dtype = value();
        else usage("unknown argument '" + flag + "'");
    }
    if (!args.sgemm && (args.workload.empty() || args.samples == 0))
        usage("give --workload and --samples, or --sgemm");
    if (args.gemm_dtype != "f32" && args.gemm_dtype != "bf16")
        usage("--gemm-dtype must be f32 or bf16, got '" + args.gemm_dtype + "'");
    return args;
}

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;   // Linux: KiB
}

int omp_threads() {
    const char* env = std::getenv("OMP_NUM_THREADS");
    return env ? std::atoi(env) : 0;   // 0: the OpenMP default (all cores)
}

std::string thread_policy(const Args& args) {
    if (args.own_threads) return "own threads";
    return keras::config::get_intra_op_parallelism_threads() > 0 ? "fixed" : "adaptive";
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// This process's rank under mpirun (0 when started alone).
int rank_of_launch() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
        if (const char* value = std::getenv(name)) return std::atoi(value);
    return 0;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const size_t n = values.size();
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// ---- GEMM peak: C = A B with oneDNN's matmul (f32, or bf16 A and B with an f32 C), best of
// `repeats` runs after a warm-up. ----
nlohmann::json measure_sgemm(int64_t n, int repeats, const std::string& dtype) {
    using namespace dnnl;
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const bool bf16 = dtype == "bf16";
    const memory::desc md({n, n}, bf16 ? memory::data_type::bf16 : memory::data_type::f32, memory::format_tag::ab);
    const memory::desc md_c({n, n}, memory::data_type::f32, memory::format_tag::ab);
    memory a(md, eng), b(md, eng), c(md_c, eng);
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (memory* m : {&a, &b}) {
        for (int64_t i = 0; i < n * n; ++i) {
            const float x = dist(gen);
            if (bf16) static_cast<uint16_t*>(m->get_data_handle())[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(x) >> 16);
            else static_cast<float*>(m->get_data_handle())[i] = x;
        }
    }
    const auto pd = keras::backend::dnnl_compat::make_pd<matmul>(eng, primitive_attr(), md, md, md_c);
    matmul mm(pd);
    auto run_once = [&] {
        mm.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
        strm.wait();
    };
    run_once();   // JIT and first-touch page faults
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
        const auto start = Clock::now();
        run_once();
        best = std::min(best, seconds_since(start));
    }
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
    return {{"framework", "onednn"},
            {"measurement", bf16 ? "bf16_gemm_peak" : "sgemm_peak"},
            {"size", n},
            {"repeats", repeats},
            {"best_s", best},
            {"gflops", flops / best / 1e9},
            {"threads", omp_threads()},
            {"impl", pd.impl_info_str()}};
}

// ---- Workloads ----
const Workload& find_workload(const std::string& name) {
    for (const Workload& w : kWorkloads)
        if (w.name == name) return w;
    usage("unknown workload '" + name + "' (W1, W2 or W3)");
}

// Random token ids in [0, vocab) and random 0/1 labels: speed does not depend on the values.
std::pair<keras::Tensor, keras::Tensor> make_data(const Workload& w, int64_t samples, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(w.vocab - 1));
    std::bernoulli_distribution label(0.5);
    std::vector<int32_t> x(static_cast<size_t>(samples * w.seq_len));
    for (int32_t& t : x) t = token(gen);
    std::vector<float> y(static_cast<size_t>(samples));
    for (float& v : y) v = label(gen) ? 1.0f : 0.0f;
    return {keras::Tensor(x, {samples, w.seq_len}), keras::Tensor(y, {samples, 1})};
}

keras::Sequential make_model(const Workload& w, float recurrent_dropout) {
    namespace layers = keras::layers;
    keras::Sequential model;
    model.add(layers::Embedding(w.vocab, w.embed));
    if (w.cell == "SimpleRNN") model.add(layers::SimpleRNN(w.units, {.recurrent_dropout = recurrent_dropout}));
    else if (w.cell == "LSTM") model.add(layers::LSTM(w.units, {.recurrent_dropout = recurrent_dropout}));
    else model.add(layers::GRU(w.units, {.recurrent_dropout = recurrent_dropout}));   // reset_after = true
    model.add(layers::Dense(1, {.activation = "sigmoid", .dtype = "float32"}));   // outputs in float32 (Keras)
    model.compile(keras::optimizers::Adam(1e-3f), "binary_crossentropy", {"accuracy"});
    return model;
}

// Peak device bytes in use on a GPU, in MB; null on the CPU.
nlohmann::json peak_device_mb(keras::Device device) {
    if (device.is_cpu()) return nullptr;
    return static_cast<double>(keras::cuda::memory_stats(device.index()).peak_bytes_in_use) / (1024.0 * 1024.0);
}

std::string device_name(keras::Device device) {
    return device.is_cpu() ? "CPU" : keras::backend::get(device).name();
}

using EmbeddingGradients = keras::distribute::StrategyOptions::EmbeddingGradients;

EmbeddingGradients embedding_gradients(const std::string& name) {
    if (name == "dense") return EmbeddingGradients::Dense;
    if (name == "rows") return EmbeddingGradients::TouchedRows;
    if (name == "auto") return EmbeddingGradients::Auto;
    usage("--distributed takes dense, rows or auto, got '" + name + "'");
}

// The gradients' exchange over the timed epochs, per step (null when not distributed).
nlohmann::json exchange_json(const std::optional<keras::distribute::MultiWorkerMirroredStrategy>& strategy,
                             const keras::distribute::CommunicationStats& s, const std::string& mode) {
    if (!strategy) return nullptr;
    return {{"workers", strategy->num_replicas_in_sync()},
            {"embedding_gradients", mode},
            {"steps", s.steps},
            {"allreduce_wait_s_per_step", s.wait_seconds_per_step()},
            {"allreduce_bytes_per_step", s.bytes_per_step()},
            {"dense_embedding_exchanges", s.dense_embedding_exchanges},
            {"touched_rows_exchanges", s.touched_rows_exchanges}};
}

nlohmann::json run_workload(const Args& args) {
    Workload w = find_workload(args.workload);
    if (args.seq_len) w.seq_len = args.seq_len;
    if (args.batch) w.batch = args.batch;
    if (args.units) w.units = args.units;
    const keras::Device device = keras::Device::parse(args.device);
    keras::set_default_device(device);   // RuntimeError naming a missing CUDA build or GPU
    keras::utils::set_random_seed(args.seed);
    auto [x, y] = make_data(w, args.samples, args.seed);
    keras::mixed_precision::set_global_policy(args.policy);   // ValueError naming a policy it lacks
    std::optional<keras::distribute::MultiWorkerMirroredStrategy> strategy;
    if (!args.distributed.empty()) strategy.emplace(keras::distribute::StrategyOptions{
        .embedding_gradients = embedding_gradients(args.distributed)});
    std::optional<keras::Sequential> made;
    const auto build = [&] { made.emplace(make_model(w, static_cast<float>(args.recurrent_dropout))); };
    if (strategy) strategy->scope(build);
    else build();
    keras::Sequential& model = *made;
    keras::distribute::CommunicationStats exchange;   // summed over the timed epochs

    std::vector<double> epoch_times;
    double last_loss = 0.0;   // a sanity check: ~0.69 (ln 2) on random labels, finite
    Clock::time_point epoch_start;
    auto timer = std::make_shared<keras::callbacks::LambdaCallback>(keras::callbacks::LambdaCallbackOptions{
        .on_epoch_begin =
            [&](int, keras::Logs&) {
                if (strategy) strategy->reset_stats();
                epoch_start = Clock::now();
            },
        .on_epoch_end =
            [&](int epoch, keras::Logs& logs) {
                epoch_times.push_back(seconds_since(epoch_start));
                last_loss = logs.at("loss");
                if (!strategy || epoch == 0) return;   // epoch 0: the warm-up
                const auto s = strategy->stats();
                exchange.steps += s.steps;
                exchange.wait_seconds += s.wait_seconds;
                exchange.bytes += s.bytes;
                exchange.dense_embedding_exchanges += s.dense_embedding_exchanges;
                exchange.touched_rows_exchanges += s.touched_rows_exchanges;
            },
    });
    // validation_data is spelled out only because GCC's -Wmissing-field-initializers asks for it.
    model.fit(x, y, {.batch_size = w.batch, .epochs = 1 + args.epochs, .validation_data = std::nullopt,
                     .shuffle = true, .verbose = 0, .callbacks = {timer}});
    if (epoch_times.size() != static_cast<size_t>(1 + args.epochs))
        throw std::runtime_error("the epoch timer saw " + std::to_string(epoch_times.size()) + " epochs");

    const std::vector<double> timed(epoch_times.begin() + 1, epoch_times.end());   // epoch 1 = warm-up
    const double epoch_s = median(timed);
    int64_t weights = 0, embedding = 0;   // the gradient's floats: all of them, the embedding's
    for (const auto& v : model.trainable_weights()) weights += v->value.numel();
    embedding = model.layers().at(0)->trainable_weights().at(0)->value.numel();
    return {{"framework", "kerascpp"},
            {"workload", w.name},
            {"recurrent_dropout", args.recurrent_dropout},
            {"policy", args.policy},
            {"bfloat16", args.policy == "mixed_bfloat16" && keras::backend::get(device).bfloat16_unsupported_reason().empty()},
            {"samples_per_s", static_cast<double>(args.samples) / epoch_s},
            {"epoch_s", epoch_s},
            {"peak_rss_mb", peak_rss_mb()},
            {"device", keras::to_string(device)},
            {"device_name", device_name(device)},
            {"peak_device_mb", peak_device_mb(device)},
            {"samples", args.samples},
            {"batch_size", w.batch},
            {"seq_len", w.seq_len},
            {"vocab", w.vocab},
            {"embed", w.embed},
            {"units", w.units},
            {"threads", omp_threads()},
            {"thread_policy", thread_policy(args)},
            {"flush_denormal", true},   // the library sets FTZ/DAZ itself
            {"warmup_epoch_s", epoch_times.front()},
            {"epoch_times_s", timed},
            {"final_loss", last_loss},
            {"steps_per_epoch", (args.samples + w.batch - 1) / w.batch},
            {"gradient_bytes", weights * 4},
            {"embedding_gradient_bytes", embedding * 4},
            {"distributed", exchange_json(strategy, exchange, args.distributed)},
            {"implementation", model.layers().at(1)->implementation_note()},
            {"version", "kerascpp / oneDNN " + std::to_string(dnnl_version()->major) + "." +
                            std::to_string(dnnl_version()->minor) + "." + std::to_string(dnnl_version()->patch)}};
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse_args(argc, argv);
    try {
        if (args.fixed_threads || args.own_threads) {
            const int n = omp_threads();
            if (n < 1) usage("--fixed-threads and --own-threads need OMP_NUM_THREADS");
            if (args.fixed_threads && args.own_threads) usage("--fixed-threads or --own-threads, not both");
            if (args.fixed_threads) keras::config::set_intra_op_parallelism_threads(n);
            else keras::backend::set_thread_setting(keras::backend::ThreadSetting{n, true});
        }
        const nlohmann::json result =
            args.sgemm ? measure_sgemm(args.size, args.repeats, args.gemm_dtype) : run_workload(args);
        // Distributed: every worker has the same numbers but its own timings; the chief's are printed.
        if (!result.contains("distributed") || result["distributed"].is_null() || rank_of_launch() == 0)
            std::cout << result.dump() << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "bench_kerascpp: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
