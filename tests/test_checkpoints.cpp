// Exact resume, ModelCheckpoint and BackupAndRestore. "Bit for bit" is the standard throughout: with
// one seed, a run that stops and resumes (in this process or from files) ends with exactly the
// weights of a run that never stopped.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <keras/keras.hpp>

#include "callbacks/filepath_template.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::captured;
using test_helpers::message_of;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        static int n = 0;
        path = fs::temp_directory_path() / fmt::format("kerascpp_ckpt_{}_{}", ::getpid(), n++);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// Shuffling, dropout and Adam all take part, so any difference in the random draws or in the restored
// optimizer state changes the weights.
struct Data {
    Tensor x, y;
    Data() {
        std::vector<std::vector<int32_t>> rows;
        std::vector<double> labels;
        for (int i = 0; i < 40; ++i) {
            std::vector<int32_t> row;
            for (int t = 0; t < 6; ++t) row.push_back((i * 5 + t * 7 + i * t) % 15);
            rows.push_back(row);
            labels.push_back((i * 7 % 5) < 2 ? 1.0 : 0.0);
        }
        x = Tensor::from_rows(rows);
        y = test_helpers::floats(labels, {40, 1});
    }
};

std::shared_ptr<Sequential> make_model(uint64_t seed) {
    utils::set_random_seed(seed);
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({6}, {.dtype = DType::int32}));
    model->add(layers::Embedding(15, 4));
    model->add(layers::LSTM(5, {.dropout = 0.2f}));
    model->add(layers::Dropout(0.3f));
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.01f), "binary_crossentropy", {"accuracy"});
    return model;
}

FitOptions fit_options(int epochs, int initial_epoch = 0, std::vector<callbacks::CallbackPtr> cbs = {}) {
    return {.batch_size = 8, .epochs = epochs, .validation_split = 0.25, .shuffle = true, .verbose = 0,
            .callbacks = std::move(cbs), .initial_epoch = initial_epoch};
}

std::vector<std::vector<float>> weights_of(const Model& model) {
    std::vector<std::vector<float>> out;
    for (const auto& w : model.get_weights()) out.push_back(w.to_vector<float>());
    return out;
}

std::vector<std::vector<float>> unbroken_run(int epochs) {
    Data d;
    auto model = make_model(11);
    model->fit(d.x, d.y, fit_options(epochs));
    return weights_of(*model);
}

}  // namespace

TEST_CASE("fit(initial_epoch=k) continues an earlier fit exactly") {
    Data d;
    const auto expected = unbroken_run(4);
    auto model = make_model(11);
    model->fit(d.x, d.y, fit_options(2));
    const auto history = model->fit(d.x, d.y, fit_options(4, 2));
    CHECK(history.epoch == std::vector<int>{2, 3});
    CHECK(weights_of(*model) == expected);
}

TEST_CASE("Exact resume from a .weights.h5 checkpoint into a fresh model") {
    TempDir dir;
    Data d;
    const auto expected = unbroken_run(4);
    {
        auto first = make_model(11);
        first->fit(d.x, d.y, fit_options(2));
        first->save_weights(dir.file("ckpt.weights.h5"));
    }
    // A new "process": other weights and other random draws before training resumes.
    auto resumed = make_model(99);
    resumed->predict(d.x, {.verbose = 0});
    resumed->load_weights(dir.file("ckpt.weights.h5"));
    utils::set_random_seed(11);
    resumed->fit(d.x, d.y, fit_options(4, 2));
    CHECK(weights_of(*resumed) == expected);
}

TEST_CASE("Exact resume through model.save (with the optimizer) and load_model") {
    TempDir dir;
    Data d;
    const auto expected = unbroken_run(4);
    {
        auto first = make_model(11);
        first->fit(d.x, d.y, fit_options(2));
        first->save(dir.file("model.h5"));
    }
    utils::set_random_seed(123);   // what ran before must not matter, only the seed fit() sees
    auto resumed = models::load_model(dir.file("model.h5"));
    CHECK(resumed->optimizer().iterations == 2 * 4);
    utils::set_random_seed(11);
    const auto history = resumed->fit(d.x, d.y, fit_options(4, 2));
    CHECK(history.epoch == std::vector<int>{2, 3});
    CHECK(weights_of(*resumed) == expected);
}

TEST_CASE("BackupAndRestore: an interrupted fit resumes at the right epoch and matches an unbroken run") {
    TempDir dir;
    Data d;
    const auto expected = unbroken_run(4);
    const std::string backup = dir.file("backup");
    auto model = make_model(11);
    bool interrupt = true;
    auto crash = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_batch_end = [&](int64_t batch, Logs&) {
            if (interrupt && model->optimizer().iterations == 2 * 4 + 2 && batch == 1)
                throw std::runtime_error("simulated crash in epoch 3");
        }});
    auto restore = std::make_shared<callbacks::BackupAndRestore>(backup);
    CHECK(message_of<std::runtime_error>([&] { model->fit(d.x, d.y, fit_options(4, 0, {restore, crash})); }) ==
          "simulated crash in epoch 3");
    CHECK(fs::exists(fs::path(backup) / "latest.weights.h5"));
    std::ifstream metadata(fs::path(backup) / "training_metadata.json");
    std::string text((std::istreambuf_iterator<char>(metadata)), std::istreambuf_iterator<char>());
    CHECK(text == R"({"batch":0,"epoch":2})");

    interrupt = false;
    const auto history = model->fit(d.x, d.y, fit_options(4, 0, {restore, crash}));
    CHECK(history.epoch == std::vector<int>{2, 3});
    CHECK(weights_of(*model) == expected);
    CHECK_FALSE(fs::exists(backup));   // deleted after a fit that completed
}

TEST_CASE("BackupAndRestore: a fresh model picks up the backup; batch-level saves; delete_checkpoint=false") {
    TempDir dir;
    Data d;
    const auto expected = unbroken_run(3);
    const std::string backup = dir.file("b");
    {
        auto model = make_model(11);
        auto stop = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
            .on_epoch_end = [&](int epoch, Logs&) { if (epoch == 1) throw std::runtime_error("killed"); }});
        // The stop callback runs after BackupAndRestore, so epoch 2's backup is written first.
        CHECK_THROWS_AS(model->fit(d.x, d.y, fit_options(3, 0, {std::make_shared<callbacks::BackupAndRestore>(backup), stop})),
                        std::runtime_error);
    }
    auto fresh = make_model(5);
    utils::set_random_seed(11);
    fresh->fit(d.x, d.y, fit_options(3, 0, {std::make_shared<callbacks::BackupAndRestore>(
                                               backup, callbacks::BackupAndRestoreOptions{.delete_checkpoint = false})}));
    CHECK(weights_of(*fresh) == expected);
    CHECK(fs::exists(fs::path(backup) / "latest.weights.h5"));

    // Every 2 batches (3 per epoch here): saves after batches 2, 4, 6 → epoch 0 batch 1, epoch 1 batch 0, epoch 1 batch 2.
    fs::remove_all(backup);
    auto model = make_model(11);
    std::vector<std::string> metadata;
    auto spy = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_batch_end = [&](int64_t, Logs&) {
            std::ifstream in(fs::path(backup) / "training_metadata.json");
            if (in) metadata.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
            fs::remove(fs::path(backup) / "training_metadata.json");
        }});
    model->fit(d.x, d.y, {.batch_size = 10, .epochs = 2, .validation_split = 0.25, .verbose = 0,
                          .callbacks = {std::make_shared<callbacks::BackupAndRestore>(
                                            backup, callbacks::BackupAndRestoreOptions{.save_freq = int64_t{2}}),
                                        spy}});
    CHECK(metadata == std::vector<std::string>{R"({"batch":1,"epoch":0})", R"({"batch":0,"epoch":1})",
                                               R"({"batch":2,"epoch":1})"});
}

TEST_CASE("BackupAndRestore errors") {
    CHECK(message_of<ValueError>([] { callbacks::BackupAndRestore(""); }) == "Empty `backup_dir` argument passed");
    CHECK(message_of<ValueError>([] { callbacks::BackupAndRestore("d", {.save_freq = std::string("batch")}); }) ==
          "BackupAndRestore: unrecognized save_freq: 'batch'. Expected save_freq are 'epoch' or integer values");
    CHECK(message_of<ValueError>([] { callbacks::BackupAndRestore("d", {.save_freq = int64_t{0}}); }) ==
          "BackupAndRestore: save_freq must be 'epoch' or a positive number of batches. Received: save_freq=0");
    TempDir dir;
    Data d;
    std::ofstream(dir.file("training_metadata.json")) << R"({"epoch": "two"})";
    auto model = make_model(1);
    const std::string msg = message_of<ValueError>([&] {
        model->fit(d.x, d.y, fit_options(1, 0, {std::make_shared<callbacks::BackupAndRestore>(dir.path.string())}));
    });
    CHECK(msg.find("training_metadata.json must hold {\"epoch\": <non-negative integer>, ...}") != std::string::npos);
}

TEST_CASE("ModelCheckpoint file names: Python format specs, epoch and batch 1-based") {
    Logs logs;
    logs.set("loss", 1.0);
    logs.set("val_loss", 0.693147);
    logs.set("val_accuracy", 0.8125);
    using callbacks::format_filepath;
    CHECK(format_filepath("ckpt-{epoch:02d}-{val_loss:.2f}.h5", 0, std::nullopt, logs) == "ckpt-01-0.69.h5");
    CHECK(format_filepath("e{epoch}-b{batch:03d}.h5", 11, int64_t{4}, logs) == "e12-b005.h5");
    CHECK(format_filepath("{loss}_{val_loss}.h5", 0, std::nullopt, logs) == "1.0_0.693147.h5");
    CHECK(format_filepath("{val_accuracy:.1%}|{val_loss:.3e}|{epoch:>4}|{epoch:.1f}|{{x}}", 2, std::nullopt, logs) ==
          "81.2%|6.931e-01|   3|3.0|{x}");
    CHECK(message_of<ValueError>([&] { format_filepath("m-{val_acc:.2f}.h5", 0, std::nullopt, logs); }) ==
          "Failed to format this callback filepath: \"m-{val_acc:.2f}.h5\". Reason: 'val_acc' is not a key this "
          "checkpoint knows (available: epoch, loss, val_loss, val_accuracy)");
    CHECK(message_of<ValueError>([&] { format_filepath("m-{batch}.h5", 0, std::nullopt, logs); }).find(
              "'batch' is not a key") != std::string::npos);
    CHECK(message_of<ValueError>([&] { format_filepath("{val_loss:d}.h5", 0, std::nullopt, logs); }).find(
              "Unknown format code 'd' for object of type 'float'") != std::string::npos);
    CHECK(message_of<ValueError>([&] { callbacks::check_filepath_template("m-{epoch.h5"); }) ==
          "Invalid ModelCheckpoint filepath \"m-{epoch.h5\": expected '}' before end of string");
    CHECK(message_of<ValueError>([&] { callbacks::check_filepath_template("m-}.h5"); }) ==
          "Invalid ModelCheckpoint filepath \"m-}.h5\": single '}' encountered in format string");
    // A spec no value can take is refused when the callback is made (as the header promises), not at
    // the first save; a spec only a float can take ({val_loss:.2f}) or only an int ({epoch:03d}) is fine.
    CHECK(message_of<ValueError>([&] { callbacks::ModelCheckpoint("{epoch:zz}.h5"); }) ==
          "Invalid ModelCheckpoint filepath \"{epoch:zz}.h5\": 'zz' is not a valid format spec for field 'epoch' "
          "(e.g. {epoch:02d} or {val_loss:.2f})");
    CHECK(message_of<ValueError>([&] { callbacks::ModelCheckpoint("{val_loss:.2q}.h5"); }).find(
              "'.2q' is not a valid format spec for field 'val_loss'") != std::string::npos);
    CHECK_NOTHROW(callbacks::ModelCheckpoint("m-{epoch:03d}-{val_loss:.2f}-{val_accuracy:%}.h5"));
}

TEST_CASE("ModelCheckpoint saves every epoch to templated names; each file holds that epoch's weights") {
    TempDir dir;
    Data d;
    auto model = make_model(3);
    std::vector<std::vector<std::vector<float>>> at_epoch_end;
    auto record = std::make_shared<callbacks::LambdaCallback>(callbacks::LambdaCallbackOptions{
        .on_epoch_end = [&](int, Logs&) { at_epoch_end.push_back(weights_of(*model)); }});
    const std::string pattern = dir.file("sub/w-{epoch:02d}-{val_loss:.3f}.weights.h5");
    auto ckpt = std::make_shared<callbacks::ModelCheckpoint>(pattern, callbacks::ModelCheckpointOptions{
                                                                          .save_weights_only = true});
    const auto history = model->fit(d.x, d.y, fit_options(3, 0, {ckpt, record}));
    for (int e = 0; e < 3; ++e) {
        const std::string path = dir.file(fmt::format("sub/w-{:02d}-{:.3f}.weights.h5", e + 1, history["val_loss"][e]));
        REQUIRE(fs::exists(path));
        auto other = make_model(4);
        other->load_weights(path);
        CHECK(weights_of(*other) == at_epoch_end[e]);
    }
}

TEST_CASE("ModelCheckpoint save_best_only: Keras's messages, modes, initial_value_threshold") {
    TempDir dir;
    Data d;
    auto model = make_model(3);
    const std::string path = dir.file("best.h5");
    auto ckpt = std::make_shared<callbacks::ModelCheckpoint>(
        path, callbacks::ModelCheckpointOptions{.verbose = 1, .save_best_only = true});
    callbacks::History history;
    const std::string out = captured(std::cout, [&] { history = model->fit(d.x, d.y, fit_options(4, 0, {ckpt})); });
    // The expected lines, built from the epoch losses by Keras's rules (min mode, best starts at inf).
    std::string expected;
    double best = std::numeric_limits<double>::infinity();
    for (int e = 0; e < 4; ++e) {
        const double v = history["val_loss"][e];
        if (v < best) {
            expected += fmt::format("\nEpoch {}: val_loss improved from {:.5f} to {:.5f}, saving model to {}\n", e + 1,
                                    best, v, path);
            best = v;
        } else {
            expected += fmt::format("\nEpoch {}: val_loss did not improve from {:.5f}\n", e + 1, best);
        }
    }
    CHECK(out == expected);
    CHECK(out.starts_with("\nEpoch 1: val_loss improved from inf to "));
    CHECK(ckpt->best == best);
    CHECK(fs::exists(path));

    SUBCASE("auto mode maximises accuracy; max mode on a loss; a threshold nothing beats") {
        auto acc = std::make_shared<callbacks::ModelCheckpoint>(
            dir.file("acc.weights.h5"),
            callbacks::ModelCheckpointOptions{.monitor = "val_accuracy", .save_best_only = true, .save_weights_only = true});
        auto max_loss = std::make_shared<callbacks::ModelCheckpoint>(
            dir.file("maxloss.weights.h5"),
            callbacks::ModelCheckpointOptions{.save_best_only = true, .save_weights_only = true, .mode = "max"});
        auto never = std::make_shared<callbacks::ModelCheckpoint>(
            dir.file("never.weights.h5"), callbacks::ModelCheckpointOptions{
                                              .verbose = 1, .save_best_only = true, .save_weights_only = true,
                                              .initial_value_threshold = 0.0});
        callbacks::History h;
        const std::string text = captured(std::cout, [&] { h = model->fit(d.x, d.y, fit_options(3, 0, {acc, max_loss, never})); });
        const auto& va = h["val_accuracy"];
        const auto& vl = h["val_loss"];
        CHECK(acc->best == *std::max_element(va.begin(), va.end()));
        CHECK(max_loss->best == *std::max_element(vl.begin(), vl.end()));
        CHECK(never->best == 0.0);
        CHECK_FALSE(fs::exists(dir.file("never.weights.h5")));
        CHECK(text.find("\nEpoch 3: val_loss did not improve from 0.00000\n") != std::string::npos);
    }
}

TEST_CASE("ModelCheckpoint save_freq in batches counts across epochs; full-model saves load back") {
    TempDir dir;
    Data d;
    auto model = make_model(3);
    // 30 training samples in batches of 10: 3 batches per epoch; every 2 batches -> (1,2), (2,1), (2,3).
    auto ckpt = std::make_shared<callbacks::ModelCheckpoint>(
        dir.file("m-{epoch}-{batch}.h5"), callbacks::ModelCheckpointOptions{.save_freq = int64_t{2}});
    model->fit(d.x, d.y, {.batch_size = 10, .epochs = 2, .validation_split = 0.25, .verbose = 0, .callbacks = {ckpt}});
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(dir.path)) files.insert(e.path().filename().string());
    CHECK(files == std::set<std::string>{"m-1-2.h5", "m-2-1.h5", "m-2-3.h5"});
    auto other = make_model(4);
    other->load_weights(dir.file("m-2-3.h5"));   // load_weights reads a full model file's model_weights
    CHECK(weights_of(*other) == weights_of(*model));
}

TEST_CASE("ModelCheckpoint save_best_only without the monitored value warns and skips the save") {
    TempDir dir;
    Data d;
    auto model = make_model(3);
    auto ckpt = std::make_shared<callbacks::ModelCheckpoint>(dir.file("m.h5"),
                                                             callbacks::ModelCheckpointOptions{.save_best_only = true});
    const std::string err = captured(std::cerr, [&] {
        model->fit(d.x, d.y, {.batch_size = 8, .epochs = 2, .verbose = 0, .callbacks = {ckpt}});   // no validation
    });
    CHECK(err == "WARNING: Can save best model only with val_loss available, skipping.\n"
                       "WARNING: Can save best model only with val_loss available, skipping.\n");
    CHECK_FALSE(fs::exists(dir.file("m.h5")));
}

TEST_CASE("ModelCheckpoint errors") {
    using callbacks::ModelCheckpoint;
    CHECK(message_of<ValueError>([] { ModelCheckpoint("model.keras"); }) ==
          "ModelCheckpoint: the filepath must end in `.h5` (Keras's HDF5 format; `.weights.h5` for Keras 3's weights "
          "layout). Received: filepath=model.keras");
    CHECK(message_of<ValueError>([] { ModelCheckpoint("m.h5", {.save_freq = std::string("batch")}); }) ==
          "ModelCheckpoint: unrecognized save_freq: 'batch'. Expected save_freq are 'epoch' or integer values");
    CHECK(message_of<ValueError>([] { ModelCheckpoint("m.h5", {.save_freq = int64_t{-1}}); }).find(
              "Received: save_freq=-1") != std::string::npos);
    CHECK(message_of<ValueError>([] { ModelCheckpoint("m-{epoch.h5"); }).find("expected '}'") != std::string::npos);

    TempDir dir;
    Data d;
    auto model = make_model(3);
    auto unknown = std::make_shared<ModelCheckpoint>(dir.file("m-{val_acc:.2f}.h5"));
    CHECK(message_of<ValueError>([&] { model->fit(d.x, d.y, fit_options(1, 0, {unknown})); }).find(
              "'val_acc' is not a key this checkpoint knows (available: epoch, loss, accuracy, val_loss, val_accuracy)") !=
          std::string::npos);
    fs::create_directories(dir.file("taken.h5"));
    auto directory = std::make_shared<ModelCheckpoint>(dir.file("taken.h5"));
    CHECK(message_of<ValueError>([&] { model->fit(d.x, d.y, fit_options(1, 0, {directory})); }) ==
          "Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an existing directory: " +
              dir.file("taken.h5"));
}
