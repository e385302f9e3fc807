// kerascpp-inspect, run as a user runs it: its output for a model file written by real Keras (the
// expected rows are h5py's listing of that file) and for our own files, and its exit codes and
// messages for bad arguments and bad files.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <keras/keras.hpp>

using namespace keras;
namespace fs = std::filesystem;

namespace {

struct Run {
    int status = -1;
    std::string output;   // stdout and stderr together
};

Run run_tool(const std::string& args) {
    const std::string command = std::string(KERASCPP_INSPECT_TOOL) + " " + args + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    Run run;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
    const int raw = ::pclose(pipe);
    run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return run;
}

const std::string kFixtures = std::string(KERASCPP_TESTS_DIR) + "/fixtures/h5/";

bool has_row(const std::string& output, const std::string& path, const std::string& shape, const std::string& dtype) {
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string p, rest;
        words >> p;
        std::getline(words, rest);
        if (p == path && rest.find(shape) != std::string::npos && rest.ends_with(dtype)) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("kerascpp-inspect on a tf_keras model file: version, backend, summary, every weight") {
    const Run run = run_tool(kFixtures + "tfkeras_model.h5");
    CHECK(run.status == 0);
    const std::string& out = run.output;
    CHECK(out.find("Keras version: 2.21.0\n") != std::string::npos);
    CHECK(out.find("Backend: tensorflow\n") != std::string::npos);
    CHECK(out.find("Written by: kerascpp") == std::string::npos);   // Keras wrote it
    CHECK(out.find("Content: model (architecture, weights, training config, optimizer state)\n") != std::string::npos);
    // The summary: Keras's table with the parameter counts of Embedding(12, 4), LSTM(3), GRU(2), Dense(1).
    CHECK(out.find("Layer (type)") != std::string::npos);
    CHECK(out.find("lstm (LSTM)") != std::string::npos);
    CHECK(out.find("Total params: 189 ") != std::string::npos);
    // h5py's listing of the file (see gen_weights_fixtures.py).
    CHECK(has_row(out, "model_weights/embedding/embedding/embeddings:0", "(12, 4)", "float32"));
    CHECK(has_row(out, "model_weights/lstm/lstm/lstm_cell/kernel:0", "(4, 12)", "float32"));
    CHECK(has_row(out, "model_weights/lstm/lstm/lstm_cell/recurrent_kernel:0", "(3, 12)", "float32"));
    CHECK(has_row(out, "model_weights/lstm/lstm/lstm_cell/bias:0", "(12,)", "float32"));
    CHECK(has_row(out, "model_weights/gru/gru/gru_cell/bias:0", "(2, 6)", "float32"));
    CHECK(has_row(out, "model_weights/dense/dense/kernel:0", "(2, 1)", "float32"));
    CHECK(has_row(out, "optimizer_weights/iteration:0", "()", "int64"));
    CHECK(has_row(out, "optimizer_weights/Adam/v/gru/gru_cell/kernel:0", "(3, 6)", "float32"));
    // Rows in the file's order (layer_names / weight_names), not HDF5's alphabetical one.
    CHECK(out.find("embeddings:0") < out.find("lstm_cell/kernel:0"));
    CHECK(out.find("lstm_cell/kernel:0") < out.find("lstm_cell/bias:0"));
}

TEST_CASE("kerascpp-inspect on our own model and weights files") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("kerascpp_inspect_{}", ::getpid());
    fs::create_directories(dir);
    Sequential model("tiny");
    model.add(layers::Input({4}));
    model.add(layers::Dense(3, {.name = "hidden"}));
    model.add(layers::Dense(1, {.name = "out"}));
    model.compile(optimizers::SGD(0.1f), "mse");
    model.save((dir / "m.h5").string());
    model.save_weights((dir / "w.h5").string());

    const Run m = run_tool((dir / "m.h5").string());
    CHECK(m.status == 0);
    CHECK(m.output.find(fmt::format("Written by: kerascpp {}\n", keras::version())) != std::string::npos);
    CHECK(m.output.find("Model: \"tiny\"") != std::string::npos);
    CHECK(m.output.find("Total params: 19 ") != std::string::npos);   // 4*3+3 + 3*1+1
    CHECK(m.output.find("(4, 3)") != std::string::npos);
    CHECK(m.output.find("(3, 1)") != std::string::npos);

    const Run w = run_tool((dir / "w.h5").string());
    CHECK(w.status == 0);
    CHECK(w.output.find("Content: weights only\n") != std::string::npos);
    CHECK(w.output.find(fmt::format("Written by: kerascpp {}\n", keras::version())) != std::string::npos);
    CHECK(has_row(w.output, "hidden/hidden/kernel:0", "(4, 3)", "float32"));
    CHECK(has_row(w.output, "out/out/bias:0", "(1,)", "float32"));
    fs::remove_all(dir);
}

TEST_CASE("kerascpp-inspect: --help, bad arguments, missing and bad files") {
    const Run help = run_tool("--help");
    CHECK(help.status == 0);
    CHECK(help.output.starts_with("usage: kerascpp-inspect [--help] FILE.h5\n"));

    const Run none = run_tool("");
    CHECK(none.status == 2);
    CHECK(none.output.starts_with("kerascpp-inspect: error: expected one FILE.h5\n"));
    const Run two = run_tool("a.h5 b.h5");
    CHECK(two.status == 2);
    CHECK(two.output.starts_with("kerascpp-inspect: error: expected one FILE.h5, got: a.h5 b.h5\n"));
    CHECK(run_tool("--verbose").status == 2);

    const Run missing = run_tool("/nonexistent/model.h5");
    CHECK(missing.status == 1);
    CHECK(missing.output.starts_with("kerascpp-inspect: error: "));
    CHECK(missing.output.find("/nonexistent/model.h5") != std::string::npos);

    const fs::path text = fs::temp_directory_path() / fmt::format("kerascpp_inspect_{}.h5", ::getpid());
    std::ofstream(text) << "this is not HDF5\n";
    const Run bad = run_tool(text.string());
    CHECK(bad.status == 1);
    CHECK(bad.output.find("is not an HDF5 file") != std::string::npos);
    fs::remove(text);

    const Run k3 = run_tool(kFixtures + "keras3.weights.h5");
    CHECK(k3.status == 1);
    CHECK(k3.output.find("Keras 3's weights layout") != std::string::npos);
}
