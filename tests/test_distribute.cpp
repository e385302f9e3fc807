// Distributed training's single-process parts (the two-process tests are tests/mpi_worker.cpp):
// the strategy as one worker, its scope, the data shares, the collective timeout's setting.
#include <doctest/doctest.h>

#include <cstdlib>
#include <numeric>
#include <set>

#include <keras/keras.hpp>

#include "data_adapter.hpp"
#include "distribute/communicator.hpp"

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
