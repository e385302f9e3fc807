// Callbacks driven directly with synthetic logs and fake clocks. Expected texts are worked out by
// hand from Keras 2.15's Progbar / callbacks formulas (and Python's float repr), not taken from
// this implementation's output.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/layers/dense.hpp"
#include "keras/model.hpp"
#include "keras/optimizers.hpp"
#include "test_helpers.hpp"

#include <unistd.h>

using namespace keras;
using namespace keras::callbacks;
using test_helpers::captured;

namespace {

Logs make_logs(std::initializer_list<std::pair<const char*, double>> items) {
    Logs logs;
    for (const auto& [key, value] : items) logs.set(key, value);
    return logs;
}

// A progress bar writing to a string, with a clock the test moves by hand.
struct FakeBar {
    std::ostringstream out;
    double now = 0;
    ProgbarLogger bar{&out};
    FakeBar(int epochs, int64_t steps, int verbose) {
        bar.clock = [this] { return now; };
        bar.interactive = true;   // a terminal's live bar; the log-file form has its own tests
        bar.set_params({.epochs = epochs, .steps = steps, .verbose = verbose});
    }
};

// A tiny compiled model: Dense(2) on 3 features, SGD.
std::unique_ptr<Sequential> tiny_model(float learning_rate = 0.01f) {
    auto model = std::make_unique<Sequential>();
    model->add(layers::Dense(2));
    model->build({-1, 3});
    model->compile(optimizers::SGD(learning_rate), "mse");
    return model;
}

// Gives every weight of the model the value v (stands in for one epoch of training).
void set_all_weights(Model& model, float v) {
    auto weights = model.get_weights();
    for (auto& w : weights) w.fill(v);
    model.set_weights(weights);
}

float first_weight(const Model& model) { return model.get_weights().front().to_vector<float>().front(); }

// Feeds one monitored value per epoch until the callback stops training; returns the epoch it
// stopped at, or -1 if it never did. Weights are set to 10 * epoch before each epoch end.
int run_epochs(Callback& cb, Model& model, const std::string& monitor, const std::vector<double>& values) {
    Logs begin;
    model.stop_training = false;
    cb.on_train_begin(begin);
    for (size_t epoch = 0; epoch < values.size(); ++epoch) {
        set_all_weights(model, 10.0f * static_cast<float>(epoch));
        Logs logs;
        logs.set("loss", 1.0);
        logs.set(monitor, values[epoch]);
        cb.on_epoch_end(static_cast<int>(epoch), logs);
        if (model.stop_training) return static_cast<int>(epoch);
    }
    return -1;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("kerascpp_test_callbacks_" + name)).string();
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

// ---------------------------------------------------------------- ProgbarLogger

TEST_CASE("ProgbarLogger verbose 1: live bar, redraw interval, padding, final line") {
    FakeBar f(/*epochs=*/2, /*steps=*/157, /*verbose=*/1);
    Logs none;
    f.bar.on_train_begin(none);
    f.now = 0.0;
    f.bar.on_epoch_begin(0, none);

    // Step 1 at 0.5 s: the first update always draws; 0.5 s/step, ETA 156 * 0.5 = 78 s.
    f.now = 0.5;
    Logs b0 = make_logs({{"loss", 0.69314718}, {"accuracy", 0.5}});
    f.bar.on_train_batch_end(0, b0);
    // Step 2 only 1/64 s later: inside the 0.05 s interval, nothing is drawn.
    f.now = 0.515625;
    Logs b1 = make_logs({{"loss", 0.7}, {"accuracy", 0.4}});
    f.bar.on_train_batch_end(1, b1);
    // Step 37 at 2.75 s: per step (2.75 - 0.5) / 36 = 0.0625 s without the first step; ETA 120 * 0.0625 = 7.5 s.
    f.now = 2.75;
    Logs b36 = make_logs({{"loss", 0.6}, {"accuracy", 0.625}});
    f.bar.on_train_batch_end(36, b36);
    // Last step 1/32 s later: skipped too; the epoch end always draws.
    f.now = 2.78125;
    f.bar.on_train_batch_end(156, b36);
    // Epoch end at 2.9375 s: (2.9375 - 0.5) / 156 = 15.625 ms/step -> "16ms/step"; 2.9375 s -> "3s".
    f.now = 2.9375;
    Logs end = make_logs({{"loss", 0.55}, {"accuracy", 0.7}, {"val_loss", 0.6925}, {"val_accuracy", 0.508}});
    f.bar.on_epoch_end(0, end);

    const std::string expected =
        "Epoch 1/2\n"
        "\r  1/157 [..............................] - ETA: 1:18 - loss: 0.6931 - accuracy: 0.5000"
        // 84 characters after 86: two blanks wipe the end of the previous line.
        "\r 37/157 [======>.......................] - ETA: 7s - loss: 0.6000 - accuracy: 0.6250  "
        "\r157/157 [==============================] - 3s 16ms/step - loss: 0.5500 - accuracy: 0.7000"
        " - val_loss: 0.6925 - val_accuracy: 0.5080\n";
    CHECK(f.out.str() == expected);

    // The next epoch starts a new bar (fresh clock origin, values and widths).
    f.out.str("");
    f.now = 10.0;
    f.bar.on_epoch_begin(1, none);
    f.now = 11.0;
    Logs c0 = make_logs({{"loss", 0.5}});
    f.bar.on_train_batch_end(0, c0);
    CHECK(f.out.str() == "Epoch 2/2\n\r  1/157 [..............................] - ETA: 2:36 - loss: 0.5000");
}

TEST_CASE("ProgbarLogger verbose 1: tiny values use %.4e, large ETA uses h:mm:ss") {
    FakeBar f(1, 10000, 1);
    Logs none;
    f.bar.on_epoch_begin(0, none);   // epochs == 1: no "Epoch 1/1" header, as Keras
    f.now = 1.0;
    Logs b = make_logs({{"loss", 0.0001234}, {"zero", 0.0}, {"neg", -0.5}, {"small_neg", -0.0005}});
    f.bar.on_train_batch_end(0, b);
    // ETA = 9999 s = 2 h 46 min 39 s.
    CHECK(f.out.str() == "\r    1/10000 [..............................] - ETA: 2:46:39 - loss: 1.2340e-04"
                         " - zero: 0.0000e+00 - neg: -0.5000 - small_neg: -5.0000e-04");
}

TEST_CASE("ProgbarLogger verbose 1: unknown number of steps") {
    FakeBar f(1, /*steps=*/0, 1);
    Logs none;
    f.bar.on_epoch_begin(0, none);
    f.now = 1.0;
    Logs b0 = make_logs({{"loss", 0.5}});
    f.bar.on_train_batch_end(0, b0);
    f.now = 1.75;
    Logs b1 = make_logs({{"loss", 0.25}});
    f.bar.on_train_batch_end(1, b1);
    f.now = 2.0;
    f.bar.on_epoch_end(0, b1);
    CHECK(f.out.str() == "\r      1/Unknown - 1s 1s/step - loss: 0.5000"
                         "\r      2/Unknown - 2s 750ms/step - loss: 0.2500"
                         "\r2/2 [==============================] - 2s 1s/step - loss: 0.2500\n");
}

TEST_CASE("ProgbarLogger verbose 2: one line per epoch in Keras 2.15's form") {
    FakeBar f(2, 157, 2);
    Logs none;
    f.bar.on_train_begin(none);
    f.now = 100.0;
    f.bar.on_epoch_begin(0, none);
    f.now = 101.0;
    Logs b = make_logs({{"loss", 0.9}});
    for (int64_t i = 0; i < 157; ++i) f.bar.on_train_batch_end(i, b);   // verbose 2 draws nothing per batch
    f.now = 103.0;
    Logs end = make_logs({{"loss", 0.55}, {"accuracy", 0.7}, {"val_loss", -0.5}, {"val_accuracy", 0.508}});
    f.bar.on_epoch_end(0, end);
    // 3 s for the epoch, 3 / 157 = 19.1 ms/step. Keras 2.15 tests `avg > 1e-3` without abs() in this
    // mode, so a negative value prints in scientific notation.
    CHECK(f.out.str() == "Epoch 1/2\n"
                         "157/157 - 3s - loss: 0.5500 - accuracy: 0.7000 - val_loss: -5.0000e-01"
                         " - val_accuracy: 0.5080 - 3s/epoch - 19ms/step\n");
}

TEST_CASE("ProgbarLogger evaluate: bar with metrics, silent inside fit") {
    FakeBar f(1, 79, 1);
    Logs none;
    Logs b0 = make_logs({{"loss", 0.4}, {"accuracy", 0.8}});

    // Inside fit() (between on_train_begin and on_train_end) validation draws nothing.
    f.bar.on_train_begin(none);
    f.bar.on_test_begin(none);
    f.bar.on_test_batch_end(0, b0);
    f.bar.on_test_end(b0);
    CHECK(f.out.str().empty());
    f.bar.on_train_end(none);

    f.now = 0.0;
    f.bar.on_test_begin(none);
    f.now = 0.0078125;                      // 1/128 s per step: ETA 78 / 128 = 0.6 s -> "0s"
    f.bar.on_test_batch_end(0, b0);
    f.now = 0.05;                           // within 0.05 s of the last draw: skipped
    f.bar.on_test_batch_end(78, b0);
    f.now = 0.0078125 + 78 * 0.0009765625;  // 976.5625 us per later step -> "977us/step"
    f.bar.on_test_end(b0);
    CHECK(f.out.str() == "\r 1/79 [..............................] - ETA: 0s - loss: 0.4000 - accuracy: 0.8000"
                         "\r79/79 [==============================] - 0s 977us/step - loss: 0.4000 - accuracy: 0.8000\n");
}

TEST_CASE("ProgbarLogger predict: bar without values, s/step units") {
    FakeBar f(1, 2, 1);
    Logs none;
    f.now = 0.0;
    f.bar.on_predict_begin(none);
    f.now = 1.5;
    Logs outputs = make_logs({{"outputs", 3.0}});   // never shown
    f.bar.on_predict_batch_end(0, outputs);
    f.now = 4.25;                                     // 2.75 s for the second step -> "3s/step"
    f.bar.on_predict_batch_end(1, outputs);
    f.bar.on_predict_end(outputs);
    CHECK(f.out.str() == "\r1/2 [==============>...............] - ETA: 1s"
                         "\r2/2 [==============================] - ETA: 0s"
                         "\r2/2 [==============================] - 4s 3s/step\n");
}

// What fit / evaluate / predict print when standard output is a file: fd 1 is pointed at a file
// for the call, as `./prog > log.txt` does, and the file's text is returned.
template <class F>
std::string stdout_to_file(F&& f) {
    const auto path = std::filesystem::temp_directory_path() / ("kerascpp_progbar_" + std::to_string(getpid()) + ".txt");
    std::cout.flush();
    const int saved = dup(STDOUT_FILENO);
    FILE* file = std::fopen(path.c_str(), "w");
    REQUIRE(file != nullptr);
    dup2(fileno(file), STDOUT_FILENO);
    std::fclose(file);
    try {
        f();
    } catch (...) {
        std::cout.flush();
        dup2(saved, STDOUT_FILENO);
        close(saved);
        throw;
    }
    std::cout.flush();
    dup2(saved, STDOUT_FILENO);
    close(saved);
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(path);
    return text;
}

TEST_CASE("ProgbarLogger verbose 1 off a terminal: only the final line of each bar") {
    // A string stream is no terminal: the default (interactive unset) prints whole lines only.
    std::ostringstream out;
    double now = 0;
    ProgbarLogger bar{&out};
    bar.clock = [&] { return now; };
    bar.set_params({.epochs = 2, .steps = 157, .verbose = 1});
    Logs none;
    bar.on_train_begin(none);
    bar.on_epoch_begin(0, none);
    Logs b = make_logs({{"loss", 0.6}});
    now = 0.5;
    bar.on_train_batch_end(0, b);
    for (int64_t i = 1; i < 157; ++i) {
        now += 0.015625;
        bar.on_train_batch_end(i, b);
    }
    Logs end = make_logs({{"loss", 0.55}});
    bar.on_epoch_end(0, end);
    // The first step stays out of the per-step time, as on a terminal: 156 * 15.625 ms after it.
    CHECK(out.str() == "Epoch 1/2\n157/157 [==============================] - 3s 16ms/step - loss: 0.5500\n");
}

TEST_CASE("fit, evaluate and predict with standard output in a file: whole lines, no \\r or \\b") {
    auto model = tiny_model();
    const Tensor x = Tensor::zeros({40, 3});
    const Tensor y = Tensor::zeros({40, 2});
    const std::string text = stdout_to_file([&] {
        model->fit(x, y, {.batch_size = 4, .epochs = 2, .verbose = 1});
        model->evaluate(x, y, {.batch_size = 4});
        model->predict(x, {.batch_size = 4});
    });
    CHECK(text.find('\r') == std::string::npos);
    CHECK(text.find('\b') == std::string::npos);
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    // Two epoch headers, then one finished bar per epoch, evaluate and predict.
    std::istringstream lines(text);
    std::vector<std::string> all;
    for (std::string line; std::getline(lines, line);) all.push_back(line);
    REQUIRE(all.size() == 6);
    CHECK(all[0] == "Epoch 1/2");
    CHECK(all[2] == "Epoch 2/2");
    for (size_t i : {1, 3, 4, 5}) CHECK(all[i].rfind("10/10 [==============================] - ", 0) == 0);
}

TEST_CASE("ProgbarLogger verbose 0 prints nothing") {
    FakeBar f(3, 5, 0);
    Logs none, b = make_logs({{"loss", 1.0}});
    f.bar.on_train_begin(none);
    f.bar.on_epoch_begin(0, none);
    f.bar.on_train_batch_end(0, b);
    f.bar.on_epoch_end(0, b);
    CHECK(f.out.str().empty());
}

// ---------------------------------------------------------------- History

TEST_CASE("History records epochs and values in first-seen order") {
    History h;
    Logs none;
    h.on_train_begin(none);
    Logs e0 = make_logs({{"loss", 1.0}, {"accuracy", 0.5}});
    Logs e1 = make_logs({{"loss", 0.5}, {"accuracy", 0.75}, {"learning_rate", 0.01}});
    h.on_epoch_end(3, e0);
    h.on_epoch_end(4, e1);
    CHECK(h.epoch == std::vector<int>{3, 4});
    REQUIRE(h.history.size() == 3);
    CHECK(h.history[0].first == "loss");
    CHECK(h.history[1].first == "accuracy");
    CHECK(h.history[2].first == "learning_rate");
    CHECK(h["loss"] == std::vector<double>{1.0, 0.5});
    CHECK(h["accuracy"] == std::vector<double>{0.5, 0.75});
    CHECK(h["learning_rate"] == std::vector<double>{0.01});
    CHECK_THROWS_WITH_AS(h["val_loss"], "History has no key 'val_loss'. Available keys: loss, accuracy, learning_rate",
                         ValueError);
    History empty;
    CHECK_THROWS_WITH_AS(empty["loss"], "History has no key 'loss'. Available keys: none", ValueError);
    h.on_train_begin(none);   // as Keras: a new fit starts a new epoch list
    CHECK(h.epoch.empty());
}

TEST_CASE("Callback::model() without a model throws") {
    TerminateOnNaN cb;
    Logs logs = make_logs({{"loss", kNaN}});
    CHECK_THROWS_WITH_AS(captured(std::cout, [&] { cb.on_train_batch_end(0, logs); }),
                         "This callback is not attached to a model: call set_model() first.", RuntimeError);
}

// ---------------------------------------------------------------- TerminateOnNaN

TEST_CASE("TerminateOnNaN stops on a NaN or infinite batch loss") {
    auto model = tiny_model();
    TerminateOnNaN cb;
    cb.set_model(model.get());
    Logs finite = make_logs({{"loss", 0.3}});
    Logs no_loss = make_logs({{"accuracy", kNaN}});
    const std::string quiet = captured(std::cout, [&] {
        cb.on_train_batch_end(11, finite);
        cb.on_train_batch_end(11, no_loss);
    });
    CHECK_FALSE(model->stop_training);
    CHECK(quiet.empty());

    Logs bad = make_logs({{"loss", kNaN}});
    CHECK(captured(std::cout, [&] { cb.on_train_batch_end(12, bad); }) ==
          "Batch 12: Invalid loss, terminating training\n");
    CHECK(model->stop_training);

    model->stop_training = false;
    Logs inf = make_logs({{"loss", -std::numeric_limits<double>::infinity()}});
    CHECK(captured(std::cout, [&] { cb.on_train_batch_end(3, inf); }) ==
          "Batch 3: Invalid loss, terminating training\n");
    CHECK(model->stop_training);
}

// ---------------------------------------------------------------- EarlyStopping

TEST_CASE("EarlyStopping: patience counts epochs without improvement") {
    auto model = tiny_model();
    SUBCASE("patience 2") {
        EarlyStopping es({.patience = 2});
        es.set_model(model.get());
        // best 1.0, best 0.9, wait 1, wait 2 -> stop at epoch 3
        CHECK(run_epochs(es, *model, "val_loss", {1.0, 0.9, 0.95, 0.96, 0.97, 0.5}) == 3);
        CHECK(es.stopped_epoch == 3);
        CHECK(es.best_epoch == 1);
    }
    SUBCASE("patience 0 stops at the first epoch (> 0) that does not improve; equal is not better") {
        EarlyStopping es({.monitor = "loss"});
        es.set_model(model.get());
        Logs none;
        es.on_train_begin(none);
        Logs e0 = make_logs({{"loss", 1.0}});
        es.on_epoch_end(0, e0);
        CHECK_FALSE(model->stop_training);
        es.on_epoch_end(1, e0);
        CHECK(model->stop_training);
        CHECK(es.stopped_epoch == 1);
    }
    SUBCASE("never stops while improving; the instance resets on train begin") {
        EarlyStopping es({.patience = 1});
        es.set_model(model.get());
        CHECK(run_epochs(es, *model, "val_loss", {5, 4, 3, 2, 1}) == -1);
        CHECK(run_epochs(es, *model, "val_loss", {9, 9.5}) == 1);
    }
}

TEST_CASE("EarlyStopping: min_delta must be beaten, whatever its sign") {
    auto model = tiny_model();
    for (double delta : {0.1, -0.1}) {
        EarlyStopping es({.min_delta = delta, .patience = 1});
        es.set_model(model.get());
        // 0.95 is lower than 1.0 but not by more than 0.1
        CHECK(run_epochs(es, *model, "val_loss", {1.0, 0.95, 0.5}) == 1);
        // 0.85 beats 1.0 by 0.15; 0.8 does not beat 0.85 by 0.1
        CHECK(run_epochs(es, *model, "val_loss", {1.0, 0.85, 0.8}) == 2);
    }
    EarlyStopping maximise({.monitor = "val_accuracy", .min_delta = 0.05, .patience = 1});
    maximise.set_model(model.get());
    CHECK(run_epochs(maximise, *model, "val_accuracy", {0.5, 0.54, 0.9}) == 1);
    CHECK(run_epochs(maximise, *model, "val_accuracy", {0.5, 0.56, 0.6}) == 2);
}

TEST_CASE("EarlyStopping: mode and Keras's auto rule (names ending in acc, accuracy, auc maximise)") {
    auto model = tiny_model();
    const std::vector<double> rising = {0.1, 0.2, 0.3, 0.4};
    for (const char* name : {"val_accuracy", "val_acc", "auc", "val_auc"}) {
        EarlyStopping es({.monitor = name, .patience = 1});
        es.set_model(model.get());
        CHECK_MESSAGE(run_epochs(es, *model, name, rising) == -1, name);
    }
    for (const char* name : {"val_loss", "accuracy_gap", "val_mae"}) {
        EarlyStopping es({.monitor = name, .patience = 1});
        es.set_model(model.get());
        CHECK_MESSAGE(run_epochs(es, *model, name, rising) == 1, name);
    }
    EarlyStopping max_loss({.monitor = "val_loss", .patience = 1, .mode = "max"});
    max_loss.set_model(model.get());
    CHECK(run_epochs(max_loss, *model, "val_loss", rising) == -1);
    EarlyStopping min_acc({.monitor = "val_accuracy", .patience = 1, .mode = "min"});
    min_acc.set_model(model.get());
    CHECK(run_epochs(min_acc, *model, "val_accuracy", rising) == 1);

    std::optional<EarlyStopping> unknown;
    CHECK(captured(std::cerr, [&] { unknown.emplace(EarlyStoppingOptions{.monitor = "val_loss", .mode = "lowest"}); }) ==
          "WARNING: EarlyStopping mode lowest is unknown, fallback to auto mode.\n");
    CHECK(unknown->options.mode == "auto");
}

TEST_CASE("EarlyStopping: baseline") {
    auto model = tiny_model();
    // Improvements that do not beat the baseline leave the wait counting; Keras 2.15 checks the
    // patience only on epochs that do not improve.
    EarlyStopping with_baseline({.patience = 2, .baseline = 0.5});
    with_baseline.set_model(model.get());
    CHECK(run_epochs(with_baseline, *model, "val_loss", {0.9, 0.8, 0.85}) == 2);
    CHECK(run_epochs(with_baseline, *model, "val_loss", {0.9, 0.8, 0.7, 0.6, 0.55}) == -1);
    // Beating the baseline resets the wait.
    CHECK(run_epochs(with_baseline, *model, "val_loss", {0.9, 0.4, 0.45, 0.44}) == 3);
    EarlyStopping without({.patience = 2});
    without.set_model(model.get());
    CHECK(run_epochs(without, *model, "val_loss", {0.9, 0.8, 0.85}) == -1);
}

TEST_CASE("EarlyStopping: start_from_epoch ignores the warm-up epochs") {
    auto model = tiny_model();
    // counted from epoch 2: best 3, then 2.5, then 2.6 does not improve
    EarlyStopping late({.monitor = "val_loss", .patience = 1, .start_from_epoch = 2});
    late.set_model(model.get());
    CHECK(run_epochs(late, *model, "val_loss", {1, 2, 3, 2.5, 2.6}) == 4);
    EarlyStopping early({.monitor = "val_loss", .patience = 1});
    early.set_model(model.get());
    CHECK(run_epochs(early, *model, "val_loss", {1, 2, 3, 2.5, 2.6}) == 1);
}

TEST_CASE("EarlyStopping: restore_best_weights restores the best epoch when it stops") {
    auto model = tiny_model();
    SUBCASE("stop: weights of the best epoch, with the messages") {
        EarlyStopping es({.patience = 2, .verbose = 1, .restore_best_weights = true});
        es.set_model(model.get());
        // best at epoch 1 (weights 10), stop at epoch 3 (weights 30)
        int stopped = -1;
        const std::string printed = captured(std::cout, [&] {
            stopped = run_epochs(es, *model, "val_loss", {1.0, 0.5, 0.7, 0.8, 0.1});
            Logs none;
            es.on_train_end(none);
        });
        CHECK(stopped == 3);
        for (const auto& w : model->get_weights())
            for (float v : w.to_vector<float>()) CHECK(v == 10.0f);
        CHECK(printed == "Restoring model weights from the end of the best epoch: 2.\nEpoch 4: early stopping\n");
    }
    SUBCASE("no stop: the last weights stay (Keras 2.15 restores only when stopping)") {
        EarlyStopping es({.patience = 5, .verbose = 1, .restore_best_weights = true});
        es.set_model(model.get());
        int stopped = 0;
        const std::string printed = captured(std::cout, [&] {
            stopped = run_epochs(es, *model, "val_loss", {1.0, 0.5, 0.7});
            Logs none;
            es.on_train_end(none);
        });
        CHECK(stopped == -1);
        CHECK(first_weight(*model) == 20.0f);
        CHECK(printed.empty());
    }
    SUBCASE("nothing ever improves: the first counted epoch's weights") {
        EarlyStopping es({.patience = 2, .restore_best_weights = true, .start_from_epoch = 1});
        es.set_model(model.get());
        // epoch 0 is not counted; NaN never improves; epoch 1 (weights 10) is kept, stop at epoch 2
        CHECK(run_epochs(es, *model, "val_loss", {0.1, kNaN, kNaN, kNaN}) == 2);
        CHECK(first_weight(*model) == 10.0f);
        CHECK(es.best_epoch == 0);
    }
    SUBCASE("without restore_best_weights the weights are left alone") {
        EarlyStopping es({.patience = 1});
        es.set_model(model.get());
        CHECK(run_epochs(es, *model, "val_loss", {1.0, 2.0}) == 1);
        CHECK(first_weight(*model) == 10.0f);
    }
}

TEST_CASE("EarlyStopping: a missing monitor warns with the available keys and does not stop") {
    auto model = tiny_model();
    EarlyStopping es({.monitor = "val_los", .patience = 0});
    es.set_model(model.get());
    Logs none;
    es.on_train_begin(none);
    Logs logs = make_logs({{"loss", 1.0}, {"accuracy", 0.5}});
    const std::string warned = captured(std::cerr, [&] {
        es.on_epoch_end(0, logs);
        es.on_epoch_end(1, logs);
    });
    CHECK_FALSE(model->stop_training);
    CHECK(warned == "WARNING: Early stopping conditioned on metric `val_los` which is not available. "
                        "Available metrics are: loss,accuracy\n"
                        "WARNING: Early stopping conditioned on metric `val_los` which is not available. "
                        "Available metrics are: loss,accuracy\n");
}

// ---------------------------------------------------------------- CSVLogger

TEST_CASE("CSVLogger: sorted header, one row per epoch, flushed, Python number format") {
    const std::string path = temp_path("basic.csv");
    CSVLogger csv(path);
    Logs none;
    csv.on_train_begin(none);
    Logs e0 = make_logs({{"loss", 0.5}, {"accuracy", 0.75}, {"val_loss", 0.25}, {"val_accuracy", 1.0}});
    csv.on_epoch_end(0, e0);
    // flushed at each epoch: readable before the end of training
    CHECK(read_file(path) == "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.75,0.5,1.0,0.25\r\n");
    // Python repr: shortest round-trip digits, 'e-05' below 1e-4, 'e+16' from 1e16
    Logs e1 = make_logs({{"loss", 0.1 + 0.2}, {"accuracy", 1e-5}, {"val_loss", 1e16}, {"val_accuracy", 123456789.0}});
    csv.on_epoch_end(1, e1);
    Logs e2 = make_logs({{"loss", static_cast<double>(0.6931472f)}, {"accuracy", 0.0001},
                         {"val_loss", kNaN}, {"val_accuracy", -0.0}});
    csv.on_epoch_end(2, e2);
    csv.on_train_end(none);
    CHECK(read_file(path) == "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                             "0,0.75,0.5,1.0,0.25\r\n"
                             "1,1e-05,0.30000000000000004,123456789.0,1e+16\r\n"
                             "2,0.0001,0.6931471824645996,-0.0,nan\r\n");
    std::filesystem::remove(path);
}

TEST_CASE("CSVLogger: without validation keys, val_ columns are reserved and written NA") {
    const std::string path = temp_path("noval.csv");
    CSVLogger csv(path, {.separator = ";"});
    Logs none;
    csv.on_train_begin(none);
    Logs e0 = make_logs({{"loss", 0.5}, {"accuracy", 0.25}});
    csv.on_epoch_end(0, e0);
    Logs e1 = make_logs({{"loss", 0.25}, {"accuracy", 0.5}, {"val_loss", 2.5}});
    csv.on_epoch_end(1, e1);
    csv.on_train_end(none);
    CHECK(read_file(path) == "epoch;accuracy;loss;val_accuracy;val_loss\r\n"
                             "0;0.25;0.5;NA;NA\r\n"
                             "1;0.5;0.25;NA;2.5\r\n");
    std::filesystem::remove(path);
}

TEST_CASE("CSVLogger: append mode writes the header only into an empty or missing file") {
    const std::string path = temp_path("append.csv");
    std::filesystem::remove(path);
    Logs none, e0 = make_logs({{"loss", 0.5}, {"val_loss", 0.75}});
    {
        CSVLogger csv(path, {.append = true});   // missing file: header
        csv.on_train_begin(none);
        csv.on_epoch_end(0, e0);
        csv.on_train_end(none);
    }
    {
        CSVLogger csv(path, {.append = true});   // file with content: rows only
        csv.on_train_begin(none);
        csv.on_epoch_end(1, e0);
        csv.on_train_end(none);
    }
    CHECK(read_file(path) == "epoch,loss,val_loss\r\n0,0.5,0.75\r\n1,0.5,0.75\r\n");

    { std::ofstream truncate(path, std::ios::trunc); }
    CSVLogger csv(path, {.append = true});   // empty file: header
    csv.on_train_begin(none);
    csv.on_epoch_end(0, e0);
    csv.on_train_end(none);
    CHECK(read_file(path) == "epoch,loss,val_loss\r\n0,0.5,0.75\r\n");

    // Without append, a second fit with the same logger rewrites the file, header included.
    CSVLogger overwrite(path);
    for (int fit = 0; fit < 2; ++fit) {
        overwrite.on_train_begin(none);
        overwrite.on_epoch_end(fit, e0);
        overwrite.on_train_end(none);
    }
    CHECK(read_file(path) == "epoch,loss,val_loss\r\n1,0.5,0.75\r\n");
    std::filesystem::remove(path);
}

TEST_CASE("CSVLogger errors") {
    Logs none, e0 = make_logs({{"loss", 0.5}});
    CSVLogger unopened(temp_path("never.csv"));
    CHECK_THROWS_WITH_AS(unopened.on_epoch_end(0, e0),
                         "CSVLogger: on_train_begin() must be called before on_epoch_end().", RuntimeError);
    const std::string bad = (std::filesystem::temp_directory_path() / "kerascpp_no_such_dir" / "log.csv").string();
    CSVLogger unwritable(bad);
    CHECK_THROWS_WITH_AS(unwritable.on_train_begin(none), ("CSVLogger: cannot open '" + bad + "' for writing.").c_str(),
                         RuntimeError);
}

// ---------------------------------------------------------------- ReduceLROnPlateau

namespace {
// One epoch of ReduceLROnPlateau: returns the "learning_rate" it put into the logs.
double reduce_epoch(ReduceLROnPlateau& cb, int epoch, const char* monitor, double value) {
    Logs logs = make_logs({{"loss", 1.0}});
    logs.set(monitor, value);
    cb.on_epoch_end(epoch, logs);
    return logs.at("learning_rate");
}
}  // namespace

TEST_CASE("ReduceLROnPlateau: factor >= 1 is an error") {
    CHECK_THROWS_WITH_AS(ReduceLROnPlateau({.factor = 1.0}),
                         "ReduceLROnPlateau does not support a factor >= 1.0. Got 1.0", ValueError);
    CHECK_THROWS_WITH_AS(ReduceLROnPlateau({.factor = 2.5}),
                         "ReduceLROnPlateau does not support a factor >= 1.0. Got 2.5", ValueError);
}

TEST_CASE("ReduceLROnPlateau: reduces after `patience` flat epochs, puts lr in the logs") {
    auto model = tiny_model(0.01f);
    ReduceLROnPlateau cb({.factor = 0.5, .patience = 2, .min_delta = 0.0});
    cb.set_model(model.get());
    Logs none;
    cb.on_train_begin(none);
    // epoch 0 improves; 1: wait 1; 2: wait 2 -> halve; 3: wait 1; 4: wait 2 -> halve again
    std::vector<double> logged;
    for (int e = 0; e < 5; ++e) logged.push_back(reduce_epoch(cb, e, "val_loss", 1.0));
    const float lr0 = 0.01f;
    const auto lr1 = static_cast<float>(static_cast<double>(lr0) * 0.5);
    const auto lr2 = static_cast<float>(static_cast<double>(lr1) * 0.5);
    CHECK(logged == std::vector<double>{lr0, lr0, lr0, lr1, lr1});
    CHECK(model->optimizer().learning_rate == lr2);
}

TEST_CASE("ReduceLROnPlateau: cooldown, min_lr, min_delta, verbose message") {
    Logs none;
    SUBCASE("cooldown: no waiting for `cooldown` epochs after a reduction") {
        auto model = tiny_model(1.0f);
        ReduceLROnPlateau cb({.factor = 0.5, .patience = 1, .cooldown = 2});
        cb.set_model(model.get());
        cb.on_train_begin(none);
        // Keras counts the cooldown down at the start of each epoch end, so cooldown = 2 leaves one
        // epoch out: reductions at epochs 1, 3, 5, 7 (every epoch from 1 on without a cooldown).
        std::vector<double> logged;
        for (int e = 0; e < 8; ++e) logged.push_back(reduce_epoch(cb, e, "val_loss", 3.0));
        CHECK(logged == std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125});
        CHECK(model->optimizer().learning_rate == 0.0625f);
    }
    SUBCASE("min_lr bounds the rate, and no reduction happens at it") {
        auto model = tiny_model(0.01f);
        ReduceLROnPlateau cb({.factor = 0.1, .patience = 1, .verbose = 1, .min_lr = 0.005});
        cb.set_model(model.get());
        cb.on_train_begin(none);
        const std::string printed = captured(std::cout, [&] {
            for (int e = 0; e < 4; ++e) reduce_epoch(cb, e, "val_loss", 1.0);
        });
        CHECK(model->optimizer().learning_rate == 0.005f);
        CHECK(printed == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.005.\n");
    }
    SUBCASE("the message shows float32(lr) * factor in double, as Keras 2.15 prints it") {
        auto model = tiny_model(0.001f);
        ReduceLROnPlateau cb({.factor = 0.1, .patience = 1, .verbose = 1});
        cb.set_model(model.get());
        cb.on_train_begin(none);
        const std::string printed = captured(std::cout, [&] {
            reduce_epoch(cb, 0, "val_loss", 1.0);
            reduce_epoch(cb, 1, "val_loss", 1.0);
        });
        CHECK(printed == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.00010000000474974513.\n");
        CHECK(model->optimizer().learning_rate == static_cast<float>(static_cast<double>(0.001f) * 0.1));
    }
    SUBCASE("min_delta: a smaller gain is no improvement") {
        auto model = tiny_model(1.0f);
        ReduceLROnPlateau cb({.factor = 0.5, .patience = 1, .min_delta = 0.1});
        cb.set_model(model.get());
        cb.on_train_begin(none);
        reduce_epoch(cb, 0, "val_loss", 1.0);
        reduce_epoch(cb, 1, "val_loss", 0.85);   // beats 1.0 - 0.1
        CHECK(model->optimizer().learning_rate == 1.0f);
        reduce_epoch(cb, 2, "val_loss", 0.8);    // does not beat 0.85 - 0.1
        CHECK(model->optimizer().learning_rate == 0.5f);
    }
    SUBCASE("auto mode maximises names containing 'acc' only") {
        auto model = tiny_model(1.0f);
        ReduceLROnPlateau acc({.monitor = "val_accuracy", .patience = 1});
        acc.set_model(model.get());
        acc.on_train_begin(none);
        for (int e = 0; e < 4; ++e) reduce_epoch(acc, e, "val_accuracy", 0.1 * (e + 1));
        CHECK(model->optimizer().learning_rate == 1.0f);
        ReduceLROnPlateau auc({.monitor = "val_auc", .patience = 1});   // Keras's rule: 'auc' is minimised here
        auc.set_model(model.get());
        auc.on_train_begin(none);
        reduce_epoch(auc, 0, "val_auc", 0.1);
        reduce_epoch(auc, 1, "val_auc", 0.2);
        CHECK(model->optimizer().learning_rate == static_cast<float>(1.0 * 0.1));
    }
    SUBCASE("missing monitor: warning, lr still logged") {
        auto model = tiny_model(0.5f);
        ReduceLROnPlateau cb({.monitor = "val_accuracy", .patience = 0});
        cb.set_model(model.get());
        cb.on_train_begin(none);
        Logs logs = make_logs({{"loss", 1.0}});
        const std::string warned = captured(std::cerr, [&] { cb.on_epoch_end(0, logs); });
        CHECK(logs.at("learning_rate") == 0.5);
        CHECK(warned == "WARNING: Learning rate reduction is conditioned on metric `val_accuracy` which is not "
                            "available. Available metrics are: loss,learning_rate.\n");
    }
}

// ---------------------------------------------------------------- LearningRateScheduler

TEST_CASE("LearningRateScheduler sets the rate at epoch begin and logs it at epoch end") {
    auto model = tiny_model(0.01f);
    std::vector<std::pair<int, double>> calls;
    LearningRateScheduler cb(
        [&](int epoch, double lr) {
            calls.emplace_back(epoch, lr);
            return epoch == 0 ? 0.001 : lr * 0.5;
        },
        /*verbose=*/1);
    cb.set_model(model.get());
    Logs begin, end;
    float lr_after_first = 0;
    const std::string printed = captured(std::cout, [&] {
        cb.on_epoch_begin(0, begin);
        lr_after_first = model->optimizer().learning_rate;
        cb.on_epoch_end(0, end);
        cb.on_epoch_begin(1, begin);
    });
    CHECK(lr_after_first == 0.001f);
    CHECK(end.at("learning_rate") == static_cast<double>(0.001f));
    CHECK(model->optimizer().learning_rate == static_cast<float>(static_cast<double>(0.001f) * 0.5));
    // the schedule sees the float rate as a double, as Keras's float(get_value(lr))
    REQUIRE(calls.size() == 2);
    CHECK(calls[0] == std::pair<int, double>{0, static_cast<double>(0.01f)});
    CHECK(calls[1] == std::pair<int, double>{1, static_cast<double>(0.001f)});
    CHECK(printed == "\nEpoch 1: LearningRateScheduler setting learning rate to 0.001.\n"
                        "\nEpoch 2: LearningRateScheduler setting learning rate to 0.0005000000237487257.\n");
}

// ---------------------------------------------------------------- with fit()

TEST_CASE("callbacks inside fit(): TerminateOnNaN stops at the first batch, CSVLogger and History agree") {
    auto model = tiny_model(0.01f);
    std::vector<float> xs(8 * 3, 1.0f), ys(8 * 2, 0.0f);
    xs[0] = std::numeric_limits<float>::quiet_NaN();
    const Tensor x(xs, {8, 3}), y(ys, {8, 2});
    const std::string path = temp_path("fit.csv");
    History history;
    const std::string printed = captured(std::cout, [&] {
        history = model->fit(x, y, {.batch_size = 4, .epochs = 3, .shuffle = false, .verbose = 0,
                                    .callbacks = {std::make_shared<TerminateOnNaN>(), std::make_shared<CSVLogger>(path)}});
    });
    CHECK(printed == "Batch 0: Invalid loss, terminating training\n");
    CHECK(history.epoch == std::vector<int>{0});
    CHECK(std::isnan(history["loss"].at(0)));
    CHECK(read_file(path) == "epoch,loss,val_loss\r\n0,nan,NA\r\n");
    std::filesystem::remove(path);
}

TEST_CASE("fit() verbose 2 prints Keras 2.15's epoch lines") {
    auto model = tiny_model(0.01f);
    const Tensor x(std::vector<float>(10 * 3, 0.5f), {10, 3}), y(std::vector<float>(10 * 2, 0.0f), {10, 2});
    const std::string text = captured(std::cout, [&] { model->fit(x, y, {.batch_size = 4, .epochs = 2, .verbose = 2}); });
    // "Epoch 1/2\n3/3 - 0s - loss: ... - 0s/epoch - ...ms/step\n" twice (timings vary)
    std::istringstream lines(text);
    std::string line;
    std::vector<std::string> all;
    while (std::getline(lines, line)) all.push_back(line);
    REQUIRE(all.size() == 4);
    CHECK(all[0] == "Epoch 1/2");
    CHECK(all[2] == "Epoch 2/2");
    for (int i : {1, 3}) {
        CHECK(all[i].rfind("3/3 - ", 0) == 0);
        CHECK(all[i].find(" - loss: ") != std::string::npos);
        CHECK(all[i].find("/epoch - ") != std::string::npos);
        CHECK(all[i].ends_with("/step"));
    }
}
