// ModelCheckpoint with Keras 2.15's rules and messages (keras/callbacks.py): best starts at +-inf or
// initial_value_threshold, "auto" maximises a monitor whose name contains "acc", a missing monitor
// with save_best_only skips the save with a warning.
#include <filesystem>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "callbacks/filepath_template.hpp"
#include "callbacks/save_freq.hpp"
#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"

namespace keras::callbacks {

namespace {

void check_extension(const std::string& filepath) {
    if (!filepath.ends_with(".h5"))
        value_error("ModelCheckpoint: the filepath must end in `.h5` (Keras's HDF5 format; `.weights.h5` for Keras 3's "
                    "weights layout). Received: filepath={}", filepath);
}

std::string resolved_mode(const std::string& mode) {
    if (mode == "auto" || mode == "min" || mode == "max") return mode;
    std::cerr << fmt::format("WARNING: ModelCheckpoint mode {} is unknown, fallback to auto mode.\n", mode);
    return "auto";
}

bool minimizes(const std::string& monitor, const std::string& mode) {
    if (mode == "min") return true;
    if (mode == "max") return false;
    return !(monitor.find("acc") != std::string::npos || monitor.starts_with("fmeasure"));
}

// Python's f"{x:.5f}" (inf prints as "inf").
std::string five_decimals(double x) { return fmt::format("{:.5f}", x); }

}  // namespace

ModelCheckpoint::ModelCheckpoint(std::string filepath_, ModelCheckpointOptions options_)
    : filepath(std::move(filepath_)), options(std::move(options_)) {
    check_filepath_template(filepath);
    check_extension(filepath);
    batches_between_saves(options.save_freq, "ModelCheckpoint");
    minimize_ = minimizes(options.monitor, resolved_mode(options.mode));
    const double inf = std::numeric_limits<double>::infinity();
    best = options.initial_value_threshold.value_or(minimize_ ? inf : -inf);
}

void ModelCheckpoint::on_epoch_begin(int epoch, Logs&) { current_epoch_ = epoch; }

void ModelCheckpoint::on_train_batch_end(int64_t batch, Logs& logs) {
    const auto every = batches_between_saves(options.save_freq, "ModelCheckpoint");
    if (!every) return;
    if (++batches_since_save_ < *every) return;
    batches_since_save_ = 0;
    save(current_epoch_, batch, logs);
}

void ModelCheckpoint::on_epoch_end(int epoch, Logs& logs) {
    if (!batches_between_saves(options.save_freq, "ModelCheckpoint")) save(epoch, std::nullopt, logs);
}

bool ModelCheckpoint::should_save(int epoch, const Logs& logs, const std::string& path) {
    // Distributed: every worker tracks `best` (their logs are the same); only the chief says it saves.
    const bool verbose = options.verbose > 0 && model().is_chief();
    if (!options.save_best_only) {
        if (verbose) std::cout << fmt::format("\nEpoch {}: saving model to {}\n", epoch + 1, path) << std::flush;
        return true;
    }
    if (!logs.contains(options.monitor)) {
        std::cerr << fmt::format("WARNING: Can save best model only with {} available, skipping.\n", options.monitor);
        return false;
    }
    const double current = logs.at(options.monitor);
    const bool improved = minimize_ ? current < best : current > best;
    if (!improved) {
        if (verbose)
            std::cout << fmt::format("\nEpoch {}: {} did not improve from {}\n", epoch + 1, options.monitor,
                                     five_decimals(best)) << std::flush;
        return false;
    }
    if (verbose)
        std::cout << fmt::format("\nEpoch {}: {} improved from {} to {}, saving model to {}\n", epoch + 1,
                                 options.monitor, five_decimals(best), five_decimals(current), path) << std::flush;
    best = current;
    return true;
}

void ModelCheckpoint::save(int epoch, std::optional<int64_t> batch, const Logs& logs) {
    const std::string path = format_filepath(filepath, epoch, batch, logs);
    if (!should_save(epoch, logs, path) || !model().is_chief()) return;
    if (std::filesystem::is_directory(path))
        value_error("Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an existing "
                    "directory: {}", path);
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    if (options.save_weights_only) model().save_weights(path, true);
    else model().save(path, {.overwrite = true});
}

}  // namespace keras::callbacks
