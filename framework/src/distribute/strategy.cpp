// MultiWorkerMirroredStrategy: which communicator a process gets, the scope compile() reads, and
// the single-process communicator.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "keras/distribute.hpp"
#include "keras/errors.hpp"

#ifdef KERASCPP_HAVE_CUDA
#include "cuda_library.hpp"
#endif
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
    const char* engine() const override { return "local"; }
    void all_reduce_sum(float*, size_t, const char*) override {}
    void all_reduce_sum(double*, size_t, const char*) override {}
    void start_all_reduce_sum(float*, size_t, const char*) override {}
    void progress() override {}
    void wait_all(const char*) override {}
    void broadcast(void*, size_t, int, const char*) override {}
    std::vector<char> all_gather(const std::vector<char>& mine, const char*) override { return mine; }
    [[noreturn]] void abort_job(const std::string& message) override {
        std::fprintf(stderr, "%s\n", message.c_str());
        std::abort();
    }
};

// The number of processes a launcher started (Open MPI's mpirun, MPICH's hydra, PMIx), or 0 when
// the program was started on its own.
int launched_processes() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
        if (const char* value = std::getenv(name)) return std::atoi(value);
    return std::getenv("PMIX_RANK") ? 1 : 0;
}

thread_local const MultiWorkerMirroredStrategy* current_strategy = nullptr;

std::shared_ptr<Communicator> make_host_communicator(double timeout_seconds);
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
    std::shared_ptr<Communicator> comm = make_host_communicator(timeout_seconds);
    comm->timeout_seconds = timeout_seconds;
    return comm;
}

namespace {
std::shared_ptr<Communicator> make_host_communicator(double timeout_seconds) {
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
}  // namespace

Engine choose_engine(const char* host_engine, bool on_cuda, bool nccl_built) {
    // Only a launched job has the MPI that NCCL bootstraps over; a lone process has nothing to sum.
    return on_cuda && nccl_built && std::string(host_engine) == "mpi" ? Engine::nccl : Engine::host;
}

std::shared_ptr<Communicator> for_device(const std::shared_ptr<Communicator>& host, const Device& device) {
    if (std::string(host->engine()) == "nccl") return host;
#ifdef KERASCPP_HAVE_CUDA
    const backend::CudaLibrary* library = nullptr;
    if (device.is_cuda()) {
        std::string why;   // a CUDA model has loaded the library already
        library = backend::load_cuda_library(&why);
    }
    const bool nccl_built = library && library->create_nccl_communicator;
    if (choose_engine(host->engine(), device.is_cuda(), nccl_built) == Engine::host) return host;
    // One NCCL communicator per process (NCCL's rule: one rank per GPU per communicator), made on the
    // first fit of a model on the GPU and shared by every model after it.
    static std::mutex mutex;
    static std::shared_ptr<Communicator> nccl;
    static int nccl_device = -1;
    std::lock_guard<std::mutex> lock(mutex);
    if (!nccl) {
        nccl = library->create_nccl_communicator(host, device.index());
        nccl->bucket_bytes = host->bucket_bytes;
        nccl->embedding_gradients = host->embedding_gradients;
        nccl->stats = host->stats;
        nccl_device = device.index();
    }
    if (device.index() != nccl_device)
        runtime_error("MultiWorkerMirroredStrategy: this worker's NCCL communicator is on cuda:{}, but this model is on "
                      "cuda:{}. One process per GPU: put every model of a worker on its GPU "
                      "(keras::Device::cuda(strategy.local_rank()))",
                      nccl_device, device.index());
    return nccl;
#else
    (void)device;
    return host;
#endif
}

int local_rank_from_environment() {
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
        const char* value = std::getenv(name);
        if (!value) continue;
        char* end = nullptr;
        const long rank = std::strtol(value, &end, 10);
        if (end == value || *end != '\0' || rank < 0 || rank > 1 << 20)
            value_error("{} must be a local rank (a number >= 0). Received: \"{}\"", name, value);
        return static_cast<int>(rank);
    }
    return -1;
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

CommunicationStats MultiWorkerMirroredStrategy::stats() const { return *communicator_->stats; }
void MultiWorkerMirroredStrategy::reset_stats() { *communicator_->stats = {}; }
int MultiWorkerMirroredStrategy::local_rank() const { return communicator_->local_rank(); }

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
