// Keras callbacks: hooks the training loop calls, and the standard ones.
#pragma once

#include "keras/export.hpp"

#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "keras/logs.hpp"
#include "keras/tensor.hpp"

namespace keras {
class Model;
}

namespace keras::callbacks {

// What fit() / evaluate() / predict() tell the callbacks before they start.
struct KERAS_API Params {
    int epochs = 1;
    int64_t steps = 0;     // batches per epoch
    int verbose = 1;
};

// Keras's Callback: override the hooks you need; fit() / evaluate() / predict() call them.
class KERAS_API Callback {
public:
    virtual ~Callback() = default;
    void set_model(Model* model) { model_ = model; }
    void set_params(const Params& params) { params_ = params; }

    virtual void on_train_begin(Logs&) {}
    virtual void on_train_end(Logs&) {}
    virtual void on_epoch_begin(int /*epoch*/, Logs&) {}
    virtual void on_epoch_end(int /*epoch*/, Logs&) {}
    // Keras: on_train_batch_* default to on_batch_*.
    virtual void on_batch_begin(int64_t /*batch*/, Logs&) {}
    virtual void on_batch_end(int64_t /*batch*/, Logs&) {}
    virtual void on_train_batch_begin(int64_t batch, Logs& logs) { on_batch_begin(batch, logs); }
    virtual void on_train_batch_end(int64_t batch, Logs& logs) { on_batch_end(batch, logs); }
    virtual void on_test_begin(Logs&) {}
    virtual void on_test_end(Logs&) {}
    virtual void on_test_batch_begin(int64_t, Logs&) {}
    virtual void on_test_batch_end(int64_t, Logs&) {}
    virtual void on_predict_begin(Logs&) {}
    virtual void on_predict_end(Logs&) {}
    virtual void on_predict_batch_begin(int64_t, Logs&) {}
    virtual void on_predict_batch_end(int64_t, Logs&) {}

protected:
    Model& model() const;     // throws if the callback is not attached to a model
    const Params& params() const { return params_; }

private:
    Model* model_ = nullptr;
    Params params_;
};
// How callbacks are passed to fit(), evaluate() and predict().
using CallbackPtr = std::shared_ptr<Callback>;

// Records every epoch's logs; fit() returns it.
class KERAS_API History : public Callback {
public:
    void on_train_begin(Logs&) override;   // clears `epoch` (Keras keeps `history`)
    void on_epoch_end(int epoch, Logs& logs) override;
    std::vector<int> epoch;
    // metric name -> one value per epoch, in the order the metrics first appeared
    std::vector<std::pair<std::string, std::vector<double>>> history;
    const std::vector<double>& operator[](const std::string& key) const;   // throws ValueError if absent
};

// Keras 2's progress bar. verbose 1: a live bar with ETA, redrawn in place (carriage return) at most every
// 0.05 s on a terminal, only the final line of each bar elsewhere (a log file, a pipe); verbose 2:
// one line per epoch. It counts batches ("157/157"), as fit and evaluate do.
// Values are shown as the logs give them: the model already passes running means.
class KERAS_API ProgbarLogger : public Callback {
public:
    explicit ProgbarLogger(std::ostream* out = nullptr);   // default std::cout
    // Seconds from any fixed origin; a steady clock unless a test puts a fake one here.
    std::function<double()> clock;
    // Redraw in place (true) or print whole lines (false); unset: whether the stream is a terminal
    // (utils::ProgbarOptions::interactive).
    std::optional<bool> interactive;

    void on_train_begin(Logs&) override;
    void on_train_end(Logs&) override;
    void on_epoch_begin(int epoch, Logs&) override;
    void on_train_batch_end(int64_t batch, Logs& logs) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    void on_test_begin(Logs&) override;
    void on_test_batch_end(int64_t batch, Logs& logs) override;
    void on_test_end(Logs& logs) override;
    void on_predict_begin(Logs&) override;
    void on_predict_batch_end(int64_t batch, Logs& logs) override;
    void on_predict_end(Logs&) override;
private:
    struct State;   // one bar: an epoch, an evaluate() or a predict()
    void start_bar();
    void batch_update(int64_t batch, const Logs* logs);
    void finish_bar(const Logs* logs);
    std::shared_ptr<State> state_;
    std::ostream* out_;
    bool in_fit_ = false;   // inside fit() validation is silent
    int64_t seen_ = 0;      // batches done in the current bar
};

// Keras's CallbackList: the callbacks of one fit() / evaluate() / predict() call, and each hook
// forwarded to them in order, so the training loop calls each hook once. Keras's order: the
// progress bar first (add_progbar), the given callbacks (null entries skipped), History last
// (add_history).
struct KERAS_API CallbackListOptions {
    bool add_history = false;
    bool add_progbar = false;
    Model* model = nullptr;   // given to every callback (set_model), with the params
    Params params{};
};
// The callbacks of one fit() / evaluate() / predict() call (see CallbackListOptions).
class KERAS_API CallbackList : public Callback {
public:
    explicit CallbackList(const std::vector<CallbackPtr>& callbacks = {}, const CallbackListOptions& options = {});
    // Attaches every callback to the model and tells them the params (set_model / set_params).
    void attach(Model* model, const Params& params);
    const std::vector<CallbackPtr>& callbacks() const { return callbacks_; }
    // The History that add_history appended (null without one).
    const std::shared_ptr<History>& history() const { return history_; }

    void on_train_begin(Logs& logs) override;
    void on_train_end(Logs& logs) override;
    void on_epoch_begin(int epoch, Logs& logs) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    void on_batch_begin(int64_t batch, Logs& logs) override;
    void on_batch_end(int64_t batch, Logs& logs) override;
    void on_train_batch_begin(int64_t batch, Logs& logs) override;
    void on_train_batch_end(int64_t batch, Logs& logs) override;
    void on_test_begin(Logs& logs) override;
    void on_test_end(Logs& logs) override;
    void on_test_batch_begin(int64_t batch, Logs& logs) override;
    void on_test_batch_end(int64_t batch, Logs& logs) override;
    void on_predict_begin(Logs& logs) override;
    void on_predict_end(Logs& logs) override;
    void on_predict_batch_begin(int64_t batch, Logs& logs) override;
    void on_predict_batch_end(int64_t batch, Logs& logs) override;

private:
    std::vector<CallbackPtr> callbacks_;
    std::shared_ptr<History> history_;
};

// EarlyStopping's keyword arguments, in Keras's order.
struct KERAS_API EarlyStoppingOptions {
    std::string monitor = "val_loss";
    double min_delta = 0.0;
    int patience = 0;
    int verbose = 0;
    std::string mode = "auto";              // "auto", "min", "max"
    std::optional<double> baseline = std::nullopt;
    bool restore_best_weights = false;
    int start_from_epoch = 0;
};
// Keras 2.15's EarlyStopping: stops when `monitor` has not improved by more than |min_delta| for
// `patience` epochs; with restore_best_weights it restores the best epoch's weights when it stops
// (not when training ends without stopping). A missing monitor only warns on std::cerr.
class KERAS_API EarlyStopping : public Callback {
public:
    explicit EarlyStopping(EarlyStoppingOptions options = {});
    void on_train_begin(Logs&) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    void on_train_end(Logs&) override;
    EarlyStoppingOptions options;
    int stopped_epoch = 0;
    int best_epoch = 0;
private:
    bool improved(double current, double reference) const;
    int wait_ = 0;
    double best_ = 0;
    bool minimize_ = true;
    std::optional<std::vector<Tensor>> best_weights_;
};

// Stops training as soon as a batch loss is NaN or infinite.
class KERAS_API TerminateOnNaN : public Callback {
public:
    void on_train_batch_end(int64_t batch, Logs& logs) override;
};

// CSVLogger's keyword arguments.
struct KERAS_API CSVLoggerOptions {
    std::string separator = ",";
    bool append = false;
};
// Writes "epoch,<metrics in sorted order>" and one row per epoch, as Keras's csv writer does
// (excel dialect: CR LF line ends, Python's repr for numbers, "NA" for a missing value).
class KERAS_API CSVLogger : public Callback {
public:
    explicit CSVLogger(std::string filename, CSVLoggerOptions options = {});
    void on_train_begin(Logs&) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    void on_train_end(Logs&) override;
private:
    std::string filename_;
    CSVLoggerOptions options_;
    std::ofstream file_;
    std::optional<std::vector<std::string>> keys_;   // fixed by the first epoch's logs
    bool append_header_ = true;
    bool writer_ready_ = false;   // header decided for this fit()
};

// A callback made of functions (any left empty does nothing).
struct KERAS_API LambdaCallbackOptions {
    std::function<void(int, Logs&)> on_epoch_begin = {}, on_epoch_end = {};
    std::function<void(int64_t, Logs&)> on_batch_begin = {}, on_batch_end = {};
    std::function<void(Logs&)> on_train_begin = {}, on_train_end = {};
};
// Keras's LambdaCallback: the functions of LambdaCallbackOptions as hooks.
class KERAS_API LambdaCallback : public Callback {
public:
    explicit LambdaCallback(LambdaCallbackOptions functions) : f_(std::move(functions)) {}
    void on_epoch_begin(int epoch, Logs& logs) override { if (f_.on_epoch_begin) f_.on_epoch_begin(epoch, logs); }
    void on_epoch_end(int epoch, Logs& logs) override { if (f_.on_epoch_end) f_.on_epoch_end(epoch, logs); }
    void on_batch_begin(int64_t batch, Logs& logs) override { if (f_.on_batch_begin) f_.on_batch_begin(batch, logs); }
    void on_batch_end(int64_t batch, Logs& logs) override { if (f_.on_batch_end) f_.on_batch_end(batch, logs); }
    void on_train_begin(Logs& logs) override { if (f_.on_train_begin) f_.on_train_begin(logs); }
    void on_train_end(Logs& logs) override { if (f_.on_train_end) f_.on_train_end(logs); }
private:
    LambdaCallbackOptions f_;
};

// ReduceLROnPlateau's keyword arguments, in Keras's order.
struct KERAS_API ReduceLROnPlateauOptions {
    std::string monitor = "val_loss";
    double factor = 0.1;
    int patience = 10;
    int verbose = 0;
    std::string mode = "auto";
    double min_delta = 1e-4;
    int cooldown = 0;
    double min_lr = 0.0;
};
// Multiplies the learning rate by `factor` (< 1) after `patience` epochs without improvement;
// puts the rate of the epoch into the logs as "learning_rate", as Keras 3 does (Keras 2 said "lr").
class KERAS_API ReduceLROnPlateau : public Callback {
public:
    explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
    void on_train_begin(Logs&) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    ReduceLROnPlateauOptions options;
private:
    int wait_ = 0, cooldown_counter_ = 0;
    double best_ = 0;
    bool minimize_ = true;
};

// Sets the learning rate at the start of each epoch from schedule(epoch, current_lr); puts it into
// the epoch-end logs as "learning_rate" (Keras 3's key).
class KERAS_API LearningRateScheduler : public Callback {
public:
    explicit LearningRateScheduler(std::function<double(int, double)> schedule, int verbose = 0)
        : schedule_(std::move(schedule)), verbose_(verbose) {}
    void on_epoch_begin(int epoch, Logs& logs) override;
    void on_epoch_end(int epoch, Logs& logs) override;
private:
    std::function<double(int, double)> schedule_;
    int verbose_;
};

// fastai's one-cycle policy (fit_one_cycle): lr_max, then these. With pct = step / total steps of the
// fit (step counted from 0 across epochs), the rate rises by a half cosine from lr_max / div to lr_max
// over the first pct_start of the steps, then falls by a half cosine to lr_max / div_final; the
// momentum goes the other way, moms[0] -> moms[1] -> moms[2] (fastai's combined_cos).
struct KERAS_API OneCycleOptions {
    double div = 25.0;
    double div_final = 1e5;
    double pct_start = 0.25;
    // Adam's beta_1, or SGD's / RMSprop's momentum when it is not 0; empty: momentum left alone.
    std::vector<double> moms = {0.95, 0.85, 0.95};
};
// Sets the optimizer's learning rate (and momentum) before every training batch. Each epoch's logs
// get the rate (and momentum) of its last batch as "learning_rate" (and "momentum"), as
// LearningRateScheduler logs it; lrs and moms keep every batch's values (fastai's recorder.hps).
class KERAS_API OneCycleScheduler : public Callback {
public:
    // ValueError for lr_max <= 0, div or div_final <= 0, pct_start outside [0, 1] or moms not of 0 or 3 values.
    explicit OneCycleScheduler(double lr_max, OneCycleOptions options = {});
    // fastai's schedules at pct in [0, 1] of the training steps.
    double learning_rate_at(double pct) const;
    double momentum_at(double pct) const;   // NaN when moms is empty
    // RuntimeError when the optimizer's rate follows a schedule. An optimizer without a momentum
    // (Adagrad; SGD / RMSprop compiled with momentum 0) keeps none, as fastai's SGD does.
    void on_train_begin(Logs&) override;
    void on_epoch_begin(int epoch, Logs&) override { epoch_ = epoch; }
    void on_train_batch_begin(int64_t batch, Logs&) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    const double lr_max;
    const OneCycleOptions options;
    std::vector<double> lrs, moms;   // per batch, this fit (moms stays empty without a momentum)
private:
    int epoch_ = 0;
    bool schedules_momentum_ = false;
};

// How often a checkpointing callback saves: "epoch" (at every epoch's end) or every N batches.
using SaveFreq = std::variant<std::string, int64_t>;

// ModelCheckpoint's keyword arguments, in Keras's order.
struct KERAS_API ModelCheckpointOptions {
    std::string monitor = "val_loss";
    int verbose = 0;
    bool save_best_only = false;
    bool save_weights_only = false;
    std::string mode = "auto";               // "auto" maximises names containing "acc", else minimises
    SaveFreq save_freq = std::string("epoch");
    std::optional<double> initial_value_threshold = std::nullopt;   // the starting "best"
};
// Keras 2.15's ModelCheckpoint: saves the model (model.save) or its weights (save_weights) at the end
// of every epoch or every save_freq batches, to `filepath` filled like Python's str.format with
// epoch (1-based), batch (1-based, batch-level saves) and the logs: "ckpt-{epoch:02d}-{val_loss:.2f}.h5".
// With save_best_only it saves only when `monitor` improves on the best value so far. verbose 1
// prints Keras's lines ("Epoch 1: val_loss improved from inf to 0.69315, saving model to ...").
// Missing directories are created; the files are written atomically.
class KERAS_API ModelCheckpoint : public Callback {
public:
    // ValueError for a malformed template, a save_freq that is neither "epoch" nor a positive
    // integer, or a filepath not ending in ".h5" (".weights.h5" selects Keras 3's weights layout).
    explicit ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {});
    void on_epoch_begin(int epoch, Logs&) override;
    void on_train_batch_end(int64_t batch, Logs& logs) override;
    void on_epoch_end(int epoch, Logs& logs) override;
    const std::string filepath;
    const ModelCheckpointOptions options;
    double best;   // the best monitored value so far (inf / -inf until the first)
private:
    void save(int epoch, std::optional<int64_t> batch, const Logs& logs);
    bool should_save(int epoch, const Logs& logs, const std::string& path);
    bool minimize_ = true;
    int current_epoch_ = 0;
    int64_t batches_since_save_ = 0;
};

// BackupAndRestore's keyword arguments.
struct KERAS_API BackupAndRestoreOptions {
    SaveFreq save_freq = std::string("epoch");
    bool delete_checkpoint = true;
};
// Keras 3's BackupAndRestore: saves the weights and optimizer state (backup_dir/latest.weights.h5)
// and the next epoch to run (backup_dir/training_metadata.json) at every epoch end (or every
// save_freq batches). When fit() starts and a backup exists, it restores them and fit() resumes at
// that epoch, so an interrupted fit continues where it stopped and, with the same seed, ends with
// the weights of an unbroken run (epoch-level saves). A fit that completes deletes backup_dir
// (unless delete_checkpoint is false). A batch-level backup resumes at the start of its epoch.
class KERAS_API BackupAndRestore : public Callback {
public:
    // ValueError for an empty backup_dir or a save_freq that is neither "epoch" nor a positive integer.
    explicit BackupAndRestore(std::string backup_dir, BackupAndRestoreOptions options = {});
    void on_train_begin(Logs&) override;
    void on_epoch_begin(int epoch, Logs&) override;
    void on_train_batch_end(int64_t batch, Logs&) override;
    void on_epoch_end(int epoch, Logs&) override;
    void on_train_end(Logs&) override;
    const std::string backup_dir;
    const BackupAndRestoreOptions options;
private:
    void save(int next_epoch, int64_t batch);
    std::string weights_path() const;
    std::string metadata_path() const;
    int current_epoch_ = 0;
    int64_t batches_since_save_ = 0;
};

}  // namespace keras::callbacks
