// Distributed training's single-process parts (the two-process tests are tests/mpi_worker.cpp):
// the strategy as one worker, its scope, the data shares, the collective timeout's setting.
#include <doctest/doctest.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>

#include <keras/keras.hpp>

#include "data_adapter.hpp"
#include "distribute/communicator.hpp"
#include "distribute/replicas.hpp"
#include "functional_graph.hpp"

using namespace keras;

namespace {
std::shared_ptr<Sequential> small_model() {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({3}));
    model->add(layers::Dense(4, "relu"));
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.01), "binary_crossentropy", {"accuracy"});
    return model;
}
}  // namespace

TEST_CASE("share_of: the workers' shares put together are the batch, sizes differing by at most one") {
    for (int size : {1, 2, 3, 5})
        for (int64_t rows : {0, 1, 2, 7, 16, 17}) {
            int64_t next = 0, smallest = rows, largest = 0;
            for (int rank = 0; rank < size; ++rank) {
                const auto share = distribute::share_of(rows, rank, size);
                CHECK(share.begin == next);
                next = share.end;
                smallest = std::min(smallest, share.end - share.begin);
                largest = std::max(largest, share.end - share.begin);
            }
            CHECK(next == rows);
            CHECK(largest - smallest <= 1);
        }
}

TEST_CASE("EpochIterator::shard: the union over the workers is the shuffled epoch, batch by batch") {
    const Tensor x = Tensor(std::vector<float>(22), {11, 2});
    std::vector<float> ids(11);
    std::iota(ids.begin(), ids.end(), 0.0f);
    const Tensor y(ids, {11, 1});
    utils::set_random_seed(3);
    random::seed_for_epoch(0);
    data_adapter::EpochIterator whole({x}, {y}, 4, true);
    whole.start_epoch();
    std::vector<std::vector<float>> parts(static_cast<size_t>(whole.num_batches()));
    for (int rank = 0; rank < 3; ++rank) {
        random::seed_for_epoch(0);
        data_adapter::EpochIterator mine({x}, {y}, 4, true);
        mine.start_epoch();
        mine.shard(rank, 3);
        REQUIRE(mine.num_batches() == whole.num_batches());
        for (int64_t step = 0; step < mine.num_batches(); ++step) {
            const auto rows = mine.batch(step).y[0].to_vector<float>();
            parts[static_cast<size_t>(step)].insert(parts[static_cast<size_t>(step)].end(), rows.begin(), rows.end());
        }
    }
    for (int64_t step = 0; step < whole.num_batches(); ++step)
        CHECK(parts[static_cast<size_t>(step)] == whole.batch(step).y[0].to_vector<float>());
}

TEST_CASE("MultiWorkerMirroredStrategy started on its own is one worker, and its model trains as without it") {
    distribute::MultiWorkerMirroredStrategy strategy;
    CHECK(strategy.rank() == 0);
    CHECK(strategy.num_replicas_in_sync() == 1);
    CHECK(strategy.is_chief());
    const Tensor x = Tensor::from_rows(std::vector<std::vector<float>>{{1, 0, 2}, {0, 1, 1}, {2, 2, 0}, {1, 1, 1}, {0, 0, 1}});
    const Tensor y = Tensor::from_rows(std::vector<std::vector<float>>{{1}, {0}, {1}, {1}, {0}});
    utils::set_random_seed(5);
    std::shared_ptr<Sequential> distributed;
    strategy.scope([&] { distributed = small_model(); });
    utils::set_random_seed(5);
    auto plain = small_model();
    CHECK(distributed->num_replicas() == 1);
    CHECK(plain->num_replicas() == 1);
    utils::set_random_seed(5);
    const auto h1 = distributed->fit(x, y, {.batch_size = 2, .epochs = 2, .verbose = 0});
    utils::set_random_seed(5);
    const auto h2 = plain->fit(x, y, {.batch_size = 2, .epochs = 2, .verbose = 0});
    CHECK(h1.history == h2.history);
    const auto w1 = distributed->get_weights(), w2 = plain->get_weights();
    for (size_t i = 0; i < w1.size(); ++i) CHECK(w1[i].to_vector<float>() == w2[i].to_vector<float>());
    CHECK(distributed->predict(x, {.verbose = 0}).to_vector<float>() == plain->predict(x, {.verbose = 0}).to_vector<float>());
}

TEST_CASE("scope() makes the strategy current for compile() only while it runs, even when it throws") {
    distribute::MultiWorkerMirroredStrategy strategy;
    CHECK(distribute::MultiWorkerMirroredStrategy::current() == nullptr);
    strategy.scope([&] { CHECK(distribute::MultiWorkerMirroredStrategy::current() == &strategy); });
    CHECK_THROWS_AS(strategy.scope([] { throw ValueError("inside"); }), ValueError);
    CHECK(distribute::MultiWorkerMirroredStrategy::current() == nullptr);
}

TEST_CASE("the collective timeout: options first, then KERASCPP_COLLECTIVE_TIMEOUT, else 600 s; a bad value is named") {
    ::unsetenv("KERASCPP_COLLECTIVE_TIMEOUT");
    CHECK(distribute::collective_timeout(0) == 600.0);
    CHECK(distribute::collective_timeout(2.5) == 2.5);
    ::setenv("KERASCPP_COLLECTIVE_TIMEOUT", "30", 1);
    CHECK(distribute::collective_timeout(0) == 30.0);
    CHECK(distribute::collective_timeout(4) == 4.0);
    ::setenv("KERASCPP_COLLECTIVE_TIMEOUT", "soon", 1);
    CHECK_THROWS_WITH_AS(distribute::collective_timeout(0),
                         doctest::Contains("KERASCPP_COLLECTIVE_TIMEOUT must be a number of seconds > 0. Received: \"soon\""),
                         ValueError);
    ::unsetenv("KERASCPP_COLLECTIVE_TIMEOUT");
}

namespace {
// Two workers holding the same gradients and rows: each sum doubles the values. Records when each
// bucket starts (the last node_done before it) and its size.
class TwinCommunicator final : public distribute::Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 2; }
    const char* engine() const override { return "twin"; }
    [[noreturn]] void abort_job(const std::string& message) override { throw RuntimeError(message); }
    void all_reduce_sum(float* data, size_t count, const char*) override { double_it(data, count); }
    void all_reduce_sum(double* data, size_t count, const char*) override {
        for (size_t i = 0; i < count; ++i) data[i] *= 2;
    }
    void start_all_reduce_sum(float* data, size_t count, const char*) override {
        started.push_back({current_node, count});
        pending.push_back({data, count});
    }
    void progress() override {}
    void wait_all(const char*) override {
        for (auto [data, count] : pending) double_it(data, count);
        pending.clear();
    }
    void broadcast(void*, size_t, int, const char*) override {}
    std::vector<char> all_gather(const std::vector<char>& mine, const char*) override {
        std::vector<char> both = mine;   // the twin's bytes after ours
        both.insert(both.end(), mine.begin(), mine.end());
        return both;
    }

    int64_t current_node = -1;   // set by the test before each node_done; -1: finish()
    std::vector<std::pair<int64_t, size_t>> started;

private:
    static void double_it(float* data, size_t count) {
        for (size_t i = 0; i < count; ++i) data[i] *= 2;
    }
    std::vector<std::pair<float*, size_t>> pending;
};
}  // namespace

TEST_CASE("GradientBuckets: each bucket starts once the backward walk is past its layers; averages come back") {
    auto model = small_model();   // Input, Dense(4) (kernel 12, bias 4), Dense(1) (kernel 4, bias 1)
    const auto variables = model->trainable_weights();
    REQUIRE(variables.size() == 4);
    std::vector<std::vector<float>> expected;
    for (const auto& v : variables) {
        std::vector<float> g(static_cast<size_t>(v->value.numel()));
        std::iota(g.begin(), g.end(), 1.0f);
        v->grad = Tensor(g, v->value.shape());
        expected.push_back(g);
    }
    TwinCommunicator comm;
    comm.bucket_bytes = 5 * sizeof(float);   // Dense(1)'s kernel and bias; then each of Dense(4)'s weights
    const FunctionalGraph& graph = *model->functional_graph();
    distribute::GradientBuckets buckets(comm, graph, variables, 3);
    for (size_t n = graph.nodes.size(); n-- > 0;) {
        comm.current_node = static_cast<int64_t>(n);
        buckets.node_done(n);
    }
    comm.current_node = -1;
    buckets.finish();
    // The last Dense's bucket goes out when the walk is past its node, before the first Dense's
    // backward; every bucket holds its gradients, a flag per weight and the rows.
    REQUIRE(comm.started.size() == 3);
    const auto last_dense = static_cast<int64_t>(graph.nodes.size() - 1);
    CHECK(comm.started[0] == std::pair<int64_t, size_t>{last_dense, 4 + 1 + 2 + 1});
    CHECK(comm.started[1] == std::pair<int64_t, size_t>{last_dense - 1, 12 + 1 + 1});
    CHECK(comm.started[2] == std::pair<int64_t, size_t>{last_dense - 1, 4 + 1 + 1});
    for (size_t i = 0; i < variables.size(); ++i) CHECK(variables[i]->grad.to_vector<float>() == expected[i]);
}

TEST_CASE("GradientBuckets: a gradient that changes after its bucket went out is an error naming the weight") {
    auto model = small_model();
    const auto variables = model->trainable_weights();
    for (const auto& v : variables) v->grad = Tensor::zeros(v->value.shape());
    TwinCommunicator comm;
    const FunctionalGraph& graph = *model->functional_graph();
    distribute::GradientBuckets buckets(comm, graph, variables, 1);
    for (size_t n = graph.nodes.size(); n-- > 0;) buckets.node_done(n);
    variables[0]->grad = Tensor::full(variables[0]->value.shape(), 1.0f);   // as another layer's backward would
    CHECK_THROWS_WITH_AS(buckets.finish(), doctest::Contains("weight 'kernel' received gradient after its layer's backward"),
                         RuntimeError);
}

TEST_CASE("touched_rows_cheaper: touched rows x (dim + 1) x workers against vocab x dim") {
    CHECK(distribute::touched_rows_cheaper(100, 128, 20000, 2));          // W2's 2 x 64 x 200 tokens: far fewer
    CHECK_FALSE(distribute::touched_rows_cheaper(12000, 128, 20000, 2));  // most of the table
    CHECK_FALSE(distribute::touched_rows_cheaper(40, 4, 100, 2));         // 40 x 5 x 2 = 400: equal, dense
    CHECK(distribute::touched_rows_cheaper(39, 4, 100, 2));
}

namespace {
// Input(3 token ids), Embedding(100, 4), Flatten, Dense(1): an embedding gradient touching rows 5
// and 7 only (the Dense weights go in a bucket as before).
std::shared_ptr<Sequential> embedding_model() {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({3}, {.dtype = DType::int32}));
    model->add(layers::Embedding(100, 4));
    model->add(layers::Flatten());
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.01), "binary_crossentropy");
    return model;
}

// The embedding's gradient after an exchange with a twin holding the same gradient and rows.
std::vector<float> exchanged(distribute::StrategyOptions::EmbeddingGradients mode, distribute::CommunicationStats& stats) {
    auto model = embedding_model();
    const auto variables = model->trainable_weights();
    REQUIRE(variables[0]->value.shape() == Shape{100, 4});
    for (const auto& v : variables) v->grad = Tensor::zeros(v->value.shape());
    std::vector<float> g(400, 0.0f);
    for (int j = 0; j < 4; ++j) g[5 * 4 + j] = 0.5f + static_cast<float>(j), g[7 * 4 + j] = -1.0f;
    variables[0]->grad = Tensor(g, {100, 4});
    TwinCommunicator comm;
    comm.embedding_gradients = mode;
    distribute::GradientBuckets buckets(comm, *model->functional_graph(), variables, 3);
    buckets.finish();
    // Dense: the embedding shares the Dense weights' bucket; else it goes on its own.
    CHECK(comm.started.size() == 1);
    stats = *comm.stats;
    CHECK(variables[0]->grad.to_vector<float>() == g);   // the twins' average: the gradient itself
    return variables[0]->grad.to_vector<float>();
}
}  // namespace

TEST_CASE("GradientBuckets: an Embedding's gradient goes as its touched rows or dense, the same average either way") {
    using Mode = distribute::StrategyOptions::EmbeddingGradients;
    distribute::CommunicationStats rows, dense, automatic;
    CHECK(exchanged(Mode::TouchedRows, rows) == exchanged(Mode::Dense, dense));
    exchanged(Mode::Auto, automatic);
    CHECK(rows.touched_rows_exchanges == 1);
    CHECK(dense.dense_embedding_exchanges == 1);
    CHECK(automatic.touched_rows_exchanges == 1);   // 2 rows of 100: the rows are cheaper
    CHECK(rows.steps == 1);
    // One bucket of floats: Dense(1)'s 12 + 1 weights (and the embedding's 400 when dense), a flag per
    // weight, the rows. Touched rows: the counts (2 workers x 3 doubles), both twins' 2 rows (index, 4 floats).
    CHECK(dense.bytes == (13 + 400 + 3 + 1) * 4);
    CHECK(rows.bytes == (13 + 2 + 1) * 4 + 6 * 8 + 2 * 2 * (8 + 4 * 4));
}

TEST_CASE("the engine: NCCL only for a model on a CUDA GPU, in a launched (MPI) job, with NCCL built") {
    using distribute::Engine;
    CHECK(distribute::choose_engine("mpi", true, true) == Engine::nccl);
    CHECK(distribute::choose_engine("mpi", false, true) == Engine::host);    // a model on the CPU
    CHECK(distribute::choose_engine("mpi", true, false) == Engine::host);    // a build without NCCL
    CHECK(distribute::choose_engine("local", true, true) == Engine::host);   // not launched: nothing to sum
    // A model on the CPU keeps the strategy's communicator (no CUDA library is opened for it).
    distribute::MultiWorkerMirroredStrategy strategy;
    CHECK(distribute::for_device(strategy.communicator(), Device::cpu()) == strategy.communicator());
    CHECK(std::string(strategy.communicator()->engine()) == "local");
}

TEST_CASE("the local rank: the launcher's variable, -1 without one, a bad value named") {
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) ::unsetenv(name);
    CHECK(distribute::local_rank_from_environment() == -1);
    ::setenv("SLURM_LOCALID", "3", 1);
    CHECK(distribute::local_rank_from_environment() == 3);
    ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);   // Open MPI's comes first
    CHECK(distribute::local_rank_from_environment() == 1);
    ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "gpu1", 1);
    CHECK_THROWS_WITH_AS(distribute::local_rank_from_environment(),
                         doctest::Contains("OMPI_COMM_WORLD_LOCAL_RANK must be a local rank (a number >= 0). Received: \"gpu1\""),
                         ValueError);
    ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "-1", 1);
    CHECK_THROWS_AS(distribute::local_rank_from_environment(), ValueError);
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) ::unsetenv(name);
    distribute::MultiWorkerMirroredStrategy strategy;
    CHECK(strategy.local_rank() == 0);
}

TEST_CASE("NCCL's unique id: made on rank 0 only, broadcast over the host communicator") {
    // Worker 1 of two: it must not make an id, and receives rank 0's bytes from the broadcast.
    class Worker1 final : public distribute::Communicator {
    public:
        int rank() const override { return 1; }
        int size() const override { return 2; }
        const char* engine() const override { return "mpi"; }
        [[noreturn]] void abort_job(const std::string& message) override { throw RuntimeError(message); }
        void all_reduce_sum(float*, size_t, const char*) override {}
        void all_reduce_sum(double*, size_t, const char*) override {}
        void start_all_reduce_sum(float*, size_t, const char*) override {}
        void progress() override {}
        void wait_all(const char*) override {}
        void broadcast(void* data, size_t bytes, int root, const char* what) override {
            CHECK(root == 0);
            CHECK(std::string(what) == "the broadcast of NCCL's unique id");
            std::memset(data, 0x5a, bytes);   // rank 0's bytes
        }
        std::vector<char> all_gather(const std::vector<char>& mine, const char*) override { return mine; }
    } worker1;
    std::array<unsigned char, 128> id{};
    bool made = false;
    distribute::broadcast_unique_id(worker1, id.data(), id.size(), [&](void*) { made = true; });
    CHECK_FALSE(made);
    CHECK(id[0] == 0x5a);
    CHECK(id[127] == 0x5a);
}
