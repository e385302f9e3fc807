// The oneDNN the backend was built against, 2.x (Debian 12's, the default) or 3.x
// (-Donednn_dir=..., scripts/build_onednn3.sh): the suite runs whole against either, and these
// checks catch what a mismatch between the two would do silently.
#include <doctest/doctest.h>

#include <cmath>

#include "keras/keras.hpp"
#include "onednn/onednn_backend.hpp"

namespace be = keras::backend;
using keras::Tensor;

TEST_CASE("the oneDNN loaded at run time is the major the backend was compiled for") {
    // 3.x headers with 2.x's libdnnl.so.2 found at run time (or the reverse) is undefined
    // behaviour; the versioned SONAME and the rpath of -Donednn_dir keep them together.
    const dnnl_version_t* v = dnnl_version();
    MESSAGE("oneDNN ", v->major, ".", v->minor, ".", v->patch, ", CPU runtime ", v->cpu_runtime);
    CHECK(v->major == DNNL_VERSION_MAJOR);
    CHECK(v->minor == DNNL_VERSION_MINOR);
}

TEST_CASE("every primitive kind the compatibility layer builds runs and gives the right numbers") {
    auto& cpu = be::get(keras::Device::cpu());
    const Tensor a(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor b(std::vector<float>{1, 0, 0, 1, 1, 1}, {3, 2});
    const Tensor ab = cpu.matmul(a, b);   // matmul
    CHECK(ab.data<float>()[0] == doctest::Approx(4.0f));
    CHECK(ab.data<float>()[3] == doctest::Approx(11.0f));
    const Tensor s = cpu.reduce(be::ReduceOp::sum, a, {1});   // reduction
    CHECK(s.data<float>()[1] == doctest::Approx(15.0f));
    const Tensor d = cpu.binary(be::BinaryOp::subtract, a, a);   // binary
    CHECK(d.data<float>()[5] == 0.0f);
    const Tensor c = cpu.clip(a, 2.0f, 5.0f);   // eltwise
    CHECK(c.data<float>()[0] == 2.0f);
    CHECK(c.data<float>()[5] == 5.0f);
    const Tensor sm = cpu.softmax(a, 1, false), lsm = cpu.softmax(a, 1, true);   // softmax, log-softmax
    CHECK(sm.data<float>()[0] + sm.data<float>()[1] + sm.data<float>()[2] == doctest::Approx(1.0f));
    CHECK(lsm.data<float>()[2] == doctest::Approx(std::log(sm.data<float>()[2])));
    const Tensor cat = cpu.concatenate({a, a}, 0);   // concat
    CHECK(cat.shape() == keras::Shape{4, 3});
    CHECK(cat.data<float>()[11] == 6.0f);
}

TEST_CASE("threads: OpenMP's count is managed where oneDNN runs on OpenMP, left alone elsewhere") {
    auto& cpu = be::get(keras::Device::cpu());
    keras::config::set_intra_op_parallelism_threads(1);
    cpu.begin_step(be::StepKind::train);
    if (dnnl_version()->cpu_runtime == DNNL_RUNTIME_OMP) {
        CHECK(be::OneDnnBackend::current_threads() == 1);
    } else {
        // TBB, sequential or threadpool: omp_set_num_threads would change nothing oneDNN does.
        CHECK(be::OneDnnBackend::current_threads() == 0);
    }
    cpu.end_step(be::StepKind::train, 32);
    keras::config::set_intra_op_parallelism_threads(0);
}
