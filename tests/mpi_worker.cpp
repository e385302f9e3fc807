// One worker of the distributed-training tests (tests/run_mpi_test.sh starts two with mpirun).
//   equal     two workers with global batch B end with the weights one process gets with batch B
//             (within 1e-6, same seed) although worker 1 built its model from another seed; the
//             logged losses and metrics are the same on both; only worker 0 writes the checkpoint;
//             evaluate / predict give one process's results. The gradients go in several buckets,
//             started during the backward pass. Exit 0 on success.
//   embedding an Embedding model trained with its gradient exchanged dense, as touched rows, and as
//             the size rule picks (StrategyOptions::embedding_gradients): each ends with one process's
//             weights (within 1e-6); the strategy's stats count the exchanges, their bytes and wait.
//   mismatch  worker 1 builds another model: fit refuses it on both workers, naming the difference.
//   hang      worker 1 stops answering at batch 2: worker 0 aborts the job after the collective timeout.
//   kill      worker 1 is killed (SIGKILL) at batch 2: the job ends.
//   bootstrap NCCL's bootstrap without a GPU: an id made on rank 0 only reaches both workers over
//             MPI; the local ranks (one machine) are 0 and 1.
#define OMPI_SKIP_MPICXX 1   // the C interface only
#include <mpi.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <keras/keras.hpp>

#include "distribute/communicator.hpp"
#include "worker_common.hpp"

using namespace keras;
using namespace worker;

namespace {

std::shared_ptr<Sequential> make_model(int units) {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({4}));
    model->add(layers::Dense(units, "relu"));
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.01), "binary_crossentropy", {"accuracy"});
    return model;
}

double max_difference(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return INFINITY;
    const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
    double worst = 0;
    for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::fabs(double(va[i]) - double(vb[i])));
    return worst;
}

// Every worker's values, compared with worker 0's: the same on all (exactly).
bool same_on_all_workers(const std::vector<double>& mine) {
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::vector<double> all(mine.size() * static_cast<size_t>(size));
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(), static_cast<int>(mine.size()),
                  MPI_DOUBLE, MPI_COMM_WORLD);
    for (size_t i = 0; i < all.size(); ++i)
        if (all[i] != mine[i % mine.size()]) return false;
    return true;
}

int run_equal(const distribute::MultiWorkerMirroredStrategy& strategy, const std::string& dir) {
    const Data data = make_data();
    // Worker 1 starts from other weights: fit must begin from worker 0's.
    utils::set_random_seed(strategy.rank() == 0 ? 7 : 99);
    std::shared_ptr<Sequential> model;
    strategy.scope([&] { model = make_model(8); });
    utils::set_random_seed(7);
    std::vector<double> logged;   // every batch's logs, in order
    auto record = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_batch_end = [&](int64_t, Logs& logs) {
            for (const auto& [k, v] : logs.items()) logged.push_back(v);
        }});
    const std::string checkpoint = dir + "/worker" + std::to_string(strategy.rank()) + "/ckpt.weights.h5";
    auto ckpt = std::make_shared<callbacks::ModelCheckpoint>(checkpoint, callbacks::ModelCheckpointOptions{.save_weights_only = true});
    const auto history = model->fit(data.x, data.y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0,
                                                     .callbacks = {record, ckpt}});

    // One process, the same seed and global batch.
    utils::set_random_seed(7);
    auto reference = make_model(8);
    utils::set_random_seed(7);
    const auto expected = reference->fit(data.x, data.y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0});

    const auto got_w = model->get_weights(), want_w = reference->get_weights();
    for (size_t i = 0; i < want_w.size(); ++i) {
        const double d = max_difference(got_w[i], want_w[i]);
        check(d <= 1e-6, "weight " + std::to_string(i) + " differs from one process's by " + std::to_string(d));
    }
    const auto& got_h = history.history, & want_h = expected.history;
    check(got_h.size() == want_h.size(), "History has other keys");
    for (size_t k = 0; k < std::min(got_h.size(), want_h.size()); ++k)
        for (size_t e = 0; e < want_h[k].second.size(); ++e)
            check(std::fabs(got_h[k].second.at(e) - want_h[k].second[e]) <= 1e-6,
                  got_h[k].first + " of epoch " + std::to_string(e) + ": " + std::to_string(got_h[k].second.at(e)) +
                      " against one process's " + std::to_string(want_h[k].second[e]));
    check(!logged.empty() && same_on_all_workers(logged), "the logged losses and metrics differ between the workers");
    check(std::filesystem::exists(checkpoint) == (strategy.rank() == 0),
          "ModelCheckpoint: worker " + std::to_string(strategy.rank()) + (strategy.rank() == 0 ? " wrote no" : " wrote a") +
              " checkpoint");

    // evaluate / predict: each worker computes its share; all get the whole result.
    const auto [loss, acc] = model->evaluate(data.x, data.y, {.batch_size = 8, .verbose = 0});
    const auto [ref_loss, ref_acc] = reference->evaluate(data.x, data.y, {.batch_size = 8, .verbose = 0});
    check(std::fabs(loss - ref_loss) <= 1e-6 && std::fabs(acc - ref_acc) <= 1e-9,
          "evaluate: " + std::to_string(loss) + ", " + std::to_string(acc) + " against " + std::to_string(ref_loss) + ", " +
              std::to_string(ref_acc));
    check(same_on_all_workers({loss, acc}), "evaluate's results differ between the workers");
    const Tensor pred = model->predict(data.x, {.batch_size = 8, .verbose = 0});
    const double d = max_difference(pred, reference->predict(data.x, {.batch_size = 8, .verbose = 0}));
    check(d <= 1e-6, "predict differs from one process's by " + std::to_string(d));
    return failures == 0 ? 0 : 1;
}

// Token ids in [0, kVocab), label: whether the first token is in the lower half. 49 samples: the
// last batch has one row, and worker 1 an empty share (no gradient) in it.
constexpr int64_t kVocab = 1000, kTokens = 6, kTokenSamples = 49;
Data make_tokens() {
    std::mt19937 gen(4321);
    std::uniform_int_distribution<int32_t> token(0, kVocab - 1);
    std::vector<int32_t> x(kTokenSamples * kTokens);
    std::vector<float> y(kTokenSamples);
    for (int64_t i = 0; i < kTokenSamples; ++i) {
        for (int64_t j = 0; j < kTokens; ++j) x[static_cast<size_t>(i * kTokens + j)] = token(gen);
        y[static_cast<size_t>(i)] = x[static_cast<size_t>(i * kTokens)] < kVocab / 2 ? 1.0f : 0.0f;
    }
    return {Tensor(x, {kTokenSamples, kTokens}), Tensor(y, {kTokenSamples, 1})};
}

std::shared_ptr<Sequential> make_embedding_model() {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({kTokens}, {.dtype = DType::int32}));
    model->add(layers::Embedding(kVocab, 4));
    model->add(layers::GlobalAveragePooling1D());
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.01), "binary_crossentropy", {"accuracy"});
    return model;
}

// One strategy per way of sending the embedding's gradient, each trained as one process would.
int run_embedding() {
    using Mode = distribute::StrategyOptions::EmbeddingGradients;
    const Data data = make_tokens();
    utils::set_random_seed(7);
    auto reference = make_embedding_model();
    utils::set_random_seed(7);
    reference->fit(data.x, data.y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0});
    const auto want = reference->get_weights();
    std::vector<Tensor> dense_weights;   // the Dense run's, for the others
    for (Mode mode : {Mode::Dense, Mode::TouchedRows, Mode::Auto}) {
        const std::string name = mode == Mode::Dense ? "dense" : mode == Mode::TouchedRows ? "touched rows" : "auto";
        distribute::MultiWorkerMirroredStrategy strategy({.embedding_gradients = mode});
        utils::set_random_seed(7);
        std::shared_ptr<Sequential> model;
        strategy.scope([&] { model = make_embedding_model(); });
        utils::set_random_seed(7);
        model->fit(data.x, data.y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0});
        const auto got = model->get_weights();
        for (size_t i = 0; i < want.size(); ++i) {
            const double d = max_difference(got[i], want[i]);
            check(d <= 1e-6, name + ": weight " + std::to_string(i) + " differs from one process's by " + std::to_string(d));
            if (dense_weights.empty()) continue;
            const double e = max_difference(got[i], dense_weights[i]);
            check(e <= 1e-6, name + ": weight " + std::to_string(i) + " differs from the dense path's by " + std::to_string(e));
        }
        if (mode == Mode::Dense) dense_weights = got;
        // 4 steps an epoch; at most 8 x 6 tokens a worker: 48 x 5 x 2 < 1000 x 4, so auto sends rows.
        const auto stats = strategy.stats();
        const int64_t steps = 4 * kEpochs;
        check(stats.steps == steps, name + ": " + std::to_string(stats.steps) + " steps counted");
        check(stats.dense_embedding_exchanges == (mode == Mode::Dense ? steps : 0) &&
                  stats.touched_rows_exchanges == (mode == Mode::Dense ? 0 : steps),
              name + ": " + std::to_string(stats.dense_embedding_exchanges) + " dense and " +
                  std::to_string(stats.touched_rows_exchanges) + " touched-rows exchanges");
        const double table = kVocab * 4 * sizeof(float);
        check(mode == Mode::Dense ? stats.bytes_per_step() > table : stats.bytes_per_step() < table / 2,
              name + ": " + std::to_string(stats.bytes_per_step()) + " bytes a step");
        check(stats.wait_seconds > 0, name + ": no wait time recorded");
        std::cerr << "worker " << rank << ", " << name << ": " << stats.bytes_per_step() << " bytes and "
                  << stats.wait_seconds_per_step() * 1e6 << " us of wait a step\n";
    }
    return failures == 0 ? 0 : 1;
}

int run_mismatch(const distribute::MultiWorkerMirroredStrategy& strategy) {
    const Data data = make_data();
    std::shared_ptr<Sequential> model;
    strategy.scope([&] { model = make_model(strategy.rank() == 1 ? 6 : 8); });
    try {
        model->fit(data.x, data.y, {.batch_size = kBatch, .epochs = 1, .verbose = 0});
        check(false, "fit accepted different models");
    } catch (const ValueError& e) {
        const std::string message = e.what();
        std::cerr << "worker " << strategy.rank() << ": " << message << "\n";
        check(message.find("worker 1 has \"layer 1: Dense (4, 6) (6,)\" where worker 0 has \"layer 1: Dense (4, 8) (8,)\"") !=
                  std::string::npos,
              "the message does not name the first difference: " + message);
    }
    return failures == 0 ? 0 : 1;
}

int run_bootstrap(const distribute::MultiWorkerMirroredStrategy& strategy) {
    std::vector<unsigned char> id(128, 0);
    int made = 0;
    distribute::broadcast_unique_id(*strategy.communicator(), id.data(), id.size(), [&](void* out) {
        ++made;
        auto* bytes = static_cast<unsigned char*>(out);
        for (size_t i = 0; i < 128; ++i) bytes[i] = static_cast<unsigned char>(i * 7 + static_cast<size_t>(getpid()));
    });
    check(made == (strategy.rank() == 0 ? 1 : 0), "the id was made on worker " + std::to_string(strategy.rank()));
    check(same_on_all_workers(std::vector<double>(id.begin(), id.end())), "the workers hold different ids");
    check(strategy.local_rank() == strategy.rank(),
          "local rank " + std::to_string(strategy.local_rank()) + " on worker " + std::to_string(strategy.rank()));
    return failures == 0 ? 0 : 1;
}

// Worker 1 stops at batch 2 (hangs, or dies); worker 0 must not wait forever.
int run_failure(const distribute::MultiWorkerMirroredStrategy& strategy, bool kill) {
    const Data data = make_data();
    std::shared_ptr<Sequential> model;
    strategy.scope([&] { model = make_model(8); });
    auto stop = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_batch_begin = [&](int64_t batch, Logs&) {
            if (strategy.rank() != 1 || batch != 2) return;
            if (kill) std::raise(SIGKILL);
            std::this_thread::sleep_for(std::chrono::seconds(600));
        }});
    model->fit(data.x, data.y, {.batch_size = kBatch, .epochs = 1, .verbose = 0, .callbacks = {stop}});
    std::cerr << "worker " << strategy.rank() << ": fit returned although worker 1 stopped\n";
    return 1;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: mpi_worker equal|embedding|mismatch|hang|kill|bootstrap [dir]\n";
        return 2;
    }
    const std::string mode = argv[1];
    // The failure tests time out after 3 s; the others keep the default. equal's buckets of 64 bytes
    // put each weight in a bucket of its own, started during the backward pass (the others: one bucket).
    distribute::MultiWorkerMirroredStrategy strategy({.timeout_seconds = mode == "hang" || mode == "kill" ? 3.0 : 0.0,
                                                      .bucket_bytes = mode == "equal" ? 64 : size_t{4} << 20});
    rank = strategy.rank();
    if (strategy.num_replicas_in_sync() != 2) {
        std::cerr << "mpi_worker: expected 2 workers, got " << strategy.num_replicas_in_sync() << "\n";
        return 1;
    }
    try {
        if (mode == "equal") return run_equal(strategy, argc > 2 ? argv[2] : ".");
        if (mode == "embedding") return run_embedding();
        if (mode == "mismatch") return run_mismatch(strategy);
        if (mode == "bootstrap") return run_bootstrap(strategy);
        if (mode == "hang" || mode == "kill") return run_failure(strategy, mode == "kill");
    } catch (const std::exception& e) {
        std::cerr << "worker " << rank << ": " << e.what() << "\n";
        return 1;
    }
    std::cerr << "mpi_worker: unknown mode " << mode << "\n";
    return 2;
}
