// One worker of the NCCL tests (tests/run_nccl_test.sh starts N with mpirun, one per GPU).
//   probe N   exits 0 when this build has NCCL and the machine at least N GPUs, else 77 (SKIP) saying
//             why; run without mpirun.
//   equal     every worker trains on GPU local_rank: the strategy picks NCCL; N workers with global
//             batch B end with the weights one process gets on the GPU with batch B (within 1e-5,
//             same seed) although worker 1 starts from other weights; the collectives on device and
//             host memory give the sums and rank 0's bytes.
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <keras/keras.hpp>

#include "cuda_library.hpp"
#include "distribute/communicator.hpp"
#include "worker_common.hpp"

using namespace keras;
using namespace worker;

namespace {

int probe(int wanted) {
    std::string why;
    const backend::CudaLibrary* library = backend::load_cuda_library(&why);
    if (!library) {
        std::cout << "SKIP: no CUDA backend: " << why << "\n";
        return 77;
    }
    if (!library->create_nccl_communicator) {
        std::cout << "SKIP: this build has no NCCL (-Dnccl)\n";
        return 77;
    }
    const int gpus = library->device_count(&why);
    if (gpus < wanted) {
        // NCCL allows one rank per GPU in a communicator.
        std::cout << "SKIP: " << wanted << " NCCL workers need " << wanted << " GPUs; this machine has " << gpus
                  << (gpus == 0 ? " (" + why + ")" : "") << "\n";
        return 77;
    }
    return 0;
}

std::shared_ptr<Sequential> make_model(Device device) {
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({4}));
    model->add(layers::Dense(8, "relu"));
    model->add(layers::Dense(1, "sigmoid"));
    model->to(device);
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

// The communicator's calls themselves: in place on device memory and on host memory.
void check_collectives(distribute::Communicator& comm, Device device) {
    const int n = comm.size();
    const float r = static_cast<float>(comm.rank());
    Tensor on_gpu = Tensor(std::vector<float>{r, 1.0f, 2.0f * r}, {3}).to(device);
    comm.all_reduce_sum(static_cast<float*>(on_gpu.raw()), 3, "a test's all-reduce on device memory");
    const auto sums = on_gpu.to(Device::cpu()).to_vector<float>();
    const float ranks = static_cast<float>(n * (n - 1) / 2);
    check(sums == std::vector<float>{ranks, float(n), 2 * ranks}, "the all-reduce on device memory");
    std::vector<double> host{1.0, r};
    comm.all_reduce_sum(host.data(), host.size(), "a test's all-reduce on host memory");
    check(host == std::vector<double>{double(n), double(ranks)}, "the all-reduce on host memory");
    std::vector<float> started{r + 1};
    comm.start_all_reduce_sum(started.data(), 1, "a test's started all-reduce");
    comm.progress();
    comm.wait_all("a test's started all-reduce");
    check(started[0] == ranks + float(n), "the started all-reduce");
    int value = comm.rank() == 0 ? 42 : -1;
    comm.broadcast(&value, sizeof value, 0, "a test's broadcast");
    check(value == 42, "the broadcast from rank 0");
}

int run_equal(const distribute::MultiWorkerMirroredStrategy& strategy) {
    const Device device = Device::cuda(strategy.local_rank());
    const Data data = make_data();
    const Tensor &x = data.x, &y = data.y;

    utils::set_random_seed(strategy.rank() == 0 ? 7 : 99);
    std::shared_ptr<Sequential> model;
    strategy.scope([&] { model = make_model(device); });
    utils::set_random_seed(7);
    model->fit(x, y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0});
    const auto comm = distribute::for_device(strategy.communicator(), device);
    check(std::string(comm->engine()) == "nccl", std::string("the engine is ") + comm->engine() + ", not nccl");

    utils::set_random_seed(7);
    auto reference = make_model(device);
    utils::set_random_seed(7);
    reference->fit(x, y, {.batch_size = kBatch, .epochs = kEpochs, .shuffle = true, .verbose = 0});
    const auto got = model->get_weights(), want = reference->get_weights();
    for (size_t i = 0; i < want.size(); ++i) {
        const double d = max_difference(got[i], want[i]);
        check(d <= 1e-5, "weight " + std::to_string(i) + " differs from one process's by " + std::to_string(d));
    }
    check_collectives(*comm, device);
    return failures == 0 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "probe" && argc > 2) return probe(std::stoi(argv[2]));
    if (mode != "equal") {
        std::cerr << "usage: nccl_worker probe N | equal\n";
        return 2;
    }
    try {
        distribute::MultiWorkerMirroredStrategy strategy({.timeout_seconds = 60});
        rank = strategy.rank();
        return run_equal(strategy);
    } catch (const std::exception& e) {
        std::cerr << "worker " << rank << ": " << e.what() << "\n";
        return 1;
    }
}
