// The collectives over MPI (built with -Dmpi). Each is a nonblocking MPI call polled against the
// collective timeout: a worker that died or hangs cannot leave the others waiting forever. A pending
// MPI collective cannot be cancelled, so a timeout ends the whole job (MPI_Abort) after saying which
// collective timed out on which worker.
// The C interface only: Open MPI and MPICH would pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "keras/errors.hpp"

#include "distribute/communicator.hpp"

namespace keras::distribute {

namespace {
void finalize_mpi() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

// MPI_Init once per process (unless the program initialized MPI itself), MPI_Finalize at exit.
void initialize_mpi() {
    static std::once_flag once;
    std::call_once(once, [] {
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (initialized) return;
        int provided = 0;
        // SERIALIZED: the program may train in a thread other than the one that made the strategy.
        if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            runtime_error("MultiWorkerMirroredStrategy: MPI_Init_thread failed");
        std::atexit(finalize_mpi);
    });
}

class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(double timeout) {
        timeout_seconds = timeout;
        initialize_mpi();
        // A communicator of our own, so the program's own MPI messages never meet ours.
        MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
        local_rank_ = local_rank_from_environment();
        if (local_rank_ < 0) local_rank_ = rank_on_this_machine();
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    const char* engine() const override { return "mpi"; }

    void all_reduce_sum(float* data, size_t count, const char* what) override {
        all_reduce_chunks(data, count, MPI_FLOAT, what);
    }
    void all_reduce_sum(double* data, size_t count, const char* what) override {
        all_reduce_chunks(data, count, MPI_DOUBLE, what);
    }

    void start_all_reduce_sum(float* data, size_t count, const char*) override {
        for (size_t done = 0; done < count;) {
            const int n = static_cast<int>(std::min(count - done, kMaxCount));
            pending_.emplace_back();
            MPI_Iallreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, comm_, &pending_.back());
            done += static_cast<size_t>(n);
        }
    }
    void progress() override {
        if (pending_.empty()) return;
        int done = 0;
        MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE);
        if (done) pending_.clear();
    }
    void wait_all(const char* what) override {
        for (MPI_Request& request : pending_) wait(request, what);
        pending_.clear();
    }

    void broadcast(void* data, size_t bytes, int root, const char* what) override {
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < bytes;) {
            const int n = static_cast<int>(std::min<size_t>(bytes - done, kMaxCount));
            MPI_Request request;
            MPI_Ibcast(p + done, n, MPI_BYTE, root, comm_, &request);
            wait(request, what);
            done += static_cast<size_t>(n);
        }
    }

    [[noreturn]] void abort_job(const std::string& message) override {
        std::fprintf(stderr, "%s\n", message.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
        std::abort();   // MPI_Abort does not return; in case an implementation does
    }

    std::vector<char> all_gather(const std::vector<char>& mine, const char* what) override {
        const auto my_size = static_cast<int64_t>(mine.size());
        std::vector<int64_t> sizes(static_cast<size_t>(size_));
        MPI_Request request;
        MPI_Iallgather(&my_size, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, comm_, &request);
        wait(request, what);
        std::vector<int> counts, offsets;
        int64_t total = 0;
        for (int64_t s : sizes) {
            offsets.push_back(static_cast<int>(total));
            counts.push_back(static_cast<int>(s));
            total += s;
        }
        if (total > INT_MAX)
            runtime_error("{}: {} bytes gathered from the workers; MPI's gather takes at most {} (use a smaller "
                          "predict batch or split the data)", what, total, INT_MAX);
        std::vector<char> all(static_cast<size_t>(total));
        MPI_Iallgatherv(mine.data(), static_cast<int>(my_size), MPI_BYTE, all.data(), counts.data(), offsets.data(),
                        MPI_BYTE, comm_, &request);
        wait(request, what);
        return all;
    }

private:
    static constexpr size_t kMaxCount = size_t{1} << 30;   // below MPI's int counts

    void all_reduce_chunks(void* data, size_t count, MPI_Datatype type, const char* what) {
        int element = 0;
        MPI_Type_size(type, &element);
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < count;) {
            const int n = static_cast<int>(std::min(count - done, kMaxCount));
            MPI_Request request;
            MPI_Iallreduce(MPI_IN_PLACE, p + done * static_cast<size_t>(element), n, type, MPI_SUM, comm_, &request);
            wait(request, what);
            done += static_cast<size_t>(n);
        }
    }

    // Polls until the collective completes; past the timeout, aborts the job. Spins briefly (a step's
    // collective usually completes within microseconds), then sleeps between polls so a worker
    // waiting for a slow one leaves the CPU to it.
    void wait(MPI_Request& request, const char* what) {
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        const auto deadline =
            start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_seconds));
        for (int polls = 0;; ++polls) {
            int done = 0;
            MPI_Test(&request, &done, MPI_STATUS_IGNORE);
            if (done) return;
            if (clock::now() > deadline)
                abort_job(fmt::format("kerascpp: worker {} of {}: {} did not complete within the collective timeout ({} "
                                      "s): another worker has died or hangs. Aborting the job (MPI_Abort). The timeout "
                                      "is StrategyOptions::timeout_seconds or KERASCPP_COLLECTIVE_TIMEOUT.",
                                      rank_, size_, what, timeout_seconds));
            if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 1000 : 50));
        }
    }

    // Launched without a local-rank variable: the workers that share this machine's memory, counted.
    int rank_on_this_machine() const {
        MPI_Comm node = MPI_COMM_NULL;
        MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
        int local = 0;
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
        return local;
    }

    std::vector<MPI_Request> pending_;   // started by start_all_reduce_sum, not yet waited for
    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
};
}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator(double timeout_seconds) {
    return std::make_shared<MpiCommunicator>(timeout_seconds);
}

}  // namespace keras::distribute
