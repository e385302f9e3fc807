// BackupAndRestore with Keras 3's files: backup_dir/latest.weights.h5 (weights and optimizer state, Keras
// 3's weights layout) and backup_dir/training_metadata.json ({"epoch": next epoch, "batch": last batch}).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "callbacks/save_freq.hpp"
#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"
#include "saving/atomic_write.hpp"

namespace keras::callbacks {

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) runtime_error("BackupAndRestore: cannot read {}", path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The epoch to resume at, from training_metadata.json.
int metadata_epoch(const std::string& path) {
    nlohmann::json metadata;
    try {
        metadata = nlohmann::json::parse(read_text(path));
    } catch (const nlohmann::json::exception& e) {
        value_error("BackupAndRestore: {} is not valid JSON ({})", path, e.what());
    }
    if (!metadata.is_object() || !metadata.contains("epoch") || !metadata["epoch"].is_number_integer() ||
        metadata["epoch"].get<int64_t>() < 0)
        value_error("BackupAndRestore: {} must hold {{\"epoch\": <non-negative integer>, ...}}; got {}", path,
                    metadata.dump());
    return metadata["epoch"].get<int>();
}

}  // namespace

BackupAndRestore::BackupAndRestore(std::string backup_dir_, BackupAndRestoreOptions options_)
    : backup_dir(std::move(backup_dir_)), options(std::move(options_)) {
    if (backup_dir.empty()) value_error("Empty `backup_dir` argument passed");
    batches_between_saves(options.save_freq, "BackupAndRestore");
}

std::string BackupAndRestore::weights_path() const {
    return (std::filesystem::path(backup_dir) / "latest.weights.h5").string();
}

std::string BackupAndRestore::metadata_path() const {
    return (std::filesystem::path(backup_dir) / "training_metadata.json").string();
}

void BackupAndRestore::on_train_begin(Logs&) {
    batches_since_save_ = 0;
    if (std::filesystem::exists(weights_path())) model().load_weights(weights_path());
    if (std::filesystem::exists(metadata_path())) model().initial_epoch_override = metadata_epoch(metadata_path());
}

void BackupAndRestore::on_epoch_begin(int epoch, Logs&) { current_epoch_ = epoch; }

void BackupAndRestore::on_train_batch_end(int64_t batch, Logs&) {
    const auto every = batches_between_saves(options.save_freq, "BackupAndRestore");
    if (!every || ++batches_since_save_ < *every) return;
    batches_since_save_ = 0;
    // Mid-epoch: the epoch restarts from its beginning on resume (as in Keras).
    save(current_epoch_, batch);
}

void BackupAndRestore::on_epoch_end(int epoch, Logs&) {
    if (!batches_between_saves(options.save_freq, "BackupAndRestore")) save(epoch + 1, 0);
}

void BackupAndRestore::on_train_end(Logs&) {
    if (options.delete_checkpoint && model().is_chief()) std::filesystem::remove_all(backup_dir);
}

void BackupAndRestore::save(int next_epoch, int64_t batch) {
    if (!model().is_chief()) return;   // distributed: the chief keeps the backup of every worker
    std::filesystem::create_directories(backup_dir);
    // Both files are replaced atomically, so neither is ever half-written. A kill between the two
    // leaves newer weights beside the older epoch number: the resumed run repeats an epoch.
    model().save_weights(weights_path(), true);
    const std::string metadata = nlohmann::json{{"epoch", next_epoch}, {"batch", batch}}.dump();
    saving::atomic_write(metadata_path(), [&](const std::string& temp_path) {
        std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
        out << metadata;
        out.close();
        if (!out) runtime_error("BackupAndRestore: cannot write {}", temp_path);
    });
}

}  // namespace keras::callbacks
