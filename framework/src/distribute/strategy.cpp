// MultiWorkerMirroredStrategy: which communicator a process gets, the scope compile() reads, and
// the single-process communicator.
#include <cstdlib>
#include <string>

#include "keras/distribute.hpp"
#include "keras/errors.hpp"

#include "distribute/communicator.hpp"

namespace keras::distribute {

#ifdef KERASCPP_HAVE_MPI
std::shared_ptr<Communicator> make_mpi_communicator(double timeout_seconds);   // mpi_communicator.cpp
#endif

namespace {
// One worker: every collective is the identity.
class LocalCommunicator final : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void all_reduce_sum(float*, size_t, const char*) override {}
    void all_reduce_sum(double*, size_t, const char*) override {}
    void start_all_reduce_sum(float*, size_t, const char*) override {}
    void progress() override {}
    void wait_all(const char*) override {}
    void broadcast(void*, size_t, int, const char*) override {}
    std::vector<char> all_gather(const std::vector<char>& mine, const char*) override { return mine; }
};

// The number of processes a launcher started (Open MPI's mpirun, MPICH's hydra, PMIx), or 0 when
// the program was started on its own.
int launched_processes() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
        if (const char* value = std::getenv(name)) return std::atoi(value);
    return std::getenv("PMIX_RANK") ? 1 : 0;
}

thread_local const MultiWorkerMirroredStrategy* current_strategy = nullptr;
}  // namespace

double collective_timeout(double from_options) {
    if (from_options > 0) return from_options;
    if (const char* env = std::getenv("KERASCPP_COLLECTIVE_TIMEOUT")) {
        char* end = nullptr;
        const double seconds = std::strtod(env, &end);
        if (end == env || *end != '\0' || !(seconds > 0))
            value_error("KERASCPP_COLLECTIVE_TIMEOUT must be a number of seconds > 0. Received: \"{}\"", env);
        return seconds;
    }
    return 600.0;
}

std::shared_ptr<Communicator> make_communicator(double timeout_seconds) {
    const int launched = launched_processes();
#ifdef KERASCPP_HAVE_MPI
    // Started by a launcher: MPI, even for one process. On its own: no MPI_Init (Open MPI's singleton
    // start spawns a daemon), one worker.
    if (launched > 0) return make_mpi_communicator(timeout_seconds);
#else
    (void)timeout_seconds;
    if (launched > 1)
        runtime_error("MultiWorkerMirroredStrategy: this program was started as one of {} MPI processes, but this "
                      "kerascpp was built without MPI (meson setup -Dmpi=enabled, with libopenmpi-dev installed): "
                      "each process would train alone",
                      launched);
#endif
    return std::make_shared<LocalCommunicator>();
}

Share share_of(int64_t rows, int rank, int size) {
    return {rows * rank / size, rows * (rank + 1) / size};
}

MultiWorkerMirroredStrategy::MultiWorkerMirroredStrategy(const StrategyOptions& options)
    : communicator_(make_communicator(collective_timeout(options.timeout_seconds))) {
    if (options.bucket_bytes == 0) value_error("StrategyOptions::bucket_bytes must be > 0");
    communicator_->bucket_bytes = options.bucket_bytes;
    communicator_->embedding_gradients = options.embedding_gradients;
}

CommunicationStats MultiWorkerMirroredStrategy::stats() const { return communicator_->stats; }
void MultiWorkerMirroredStrategy::reset_stats() { communicator_->stats = {}; }

int MultiWorkerMirroredStrategy::rank() const { return communicator_->rank(); }
int MultiWorkerMirroredStrategy::num_replicas_in_sync() const { return communicator_->size(); }

void MultiWorkerMirroredStrategy::scope(const std::function<void()>& fn) const {
    // Restored however fn ends, so an exception does not leave the strategy current.
    struct Restore {
        const MultiWorkerMirroredStrategy* previous;
        ~Restore() { current_strategy = previous; }
    } restore{current_strategy};
    current_strategy = this;
    fn();
}

const MultiWorkerMirroredStrategy* MultiWorkerMirroredStrategy::current() { return current_strategy; }

bool built_with_mpi() {
#ifdef KERASCPP_HAVE_MPI
    return true;
#else
    return false;
#endif
}

}  // namespace keras::distribute
