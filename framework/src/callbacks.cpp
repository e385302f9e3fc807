// The standard callbacks with Keras 2.15's behaviour (keras/callbacks.py): History, EarlyStopping,
// TerminateOnNaN, CSVLogger, ReduceLROnPlateau, LearningRateScheduler. ProgbarLogger is in
// progbar_logger.cpp.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/model.hpp"

namespace keras::callbacks {

namespace {

// Python's repr() of a float: the shortest digits that round-trip, fixed notation for decimal
// exponents in [-4, 16), scientific otherwise ("0.001", "1.0", "1e-05", "1.5e+16"). Keras prints
// learning rates and CSV values this way. With a float argument the digits are float's.
template <typename T>
std::string python_repr(T value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
    std::string text(buffer, result.ptr);   // "-1.2345e-05"
    std::string sign;
    if (text[0] == '-') {
        sign = "-";
        text.erase(0, 1);
    }
    const size_t e = text.find('e');
    const int exponent = std::stoi(text.substr(e + 1));
    std::string digits = text.substr(0, e);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());

    if (exponent < -4 || exponent >= 16) {
        const std::string fraction = digits.size() > 1 ? fmt::format(".{}", digits.substr(1)) : "";
        return fmt::format("{}{}{}e{}{:02d}", sign, digits[0], fraction, exponent < 0 ? '-' : '+', std::abs(exponent));
    }
    if (exponent < 0) return fmt::format("{}0.{}{}", sign, std::string(static_cast<size_t>(-exponent - 1), '0'), digits);
    const auto int_digits = static_cast<size_t>(exponent + 1);
    if (digits.size() <= int_digits) return fmt::format("{}{}{}.0", sign, digits, std::string(int_digits - digits.size(), '0'));
    return fmt::format("{}{}.{}", sign, digits.substr(0, int_digits), digits.substr(int_digits));
}

std::string joined_keys(const Logs& logs, const char* separator) {
    std::string keys;
    for (const auto& [key, value] : logs.items()) keys += (keys.empty() ? "" : separator) + key;
    return keys;
}

void print_message(const std::string& text) { std::cout << text << '\n' << std::flush; }
void print_warning(const std::string& text) { std::cerr << "WARNING: " << text << '\n' << std::flush; }

// Keras's EarlyStopping "auto" mode: maximise metrics named like an accuracy or an AUC.
bool early_stopping_minimizes(const std::string& monitor, const std::string& mode) {
    if (mode == "min") return true;
    if (mode == "max") return false;
    const auto ends_with = [&](const std::string& suffix) { return monitor.ends_with(suffix); };
    return !(ends_with("acc") || ends_with("accuracy") || ends_with("auc"));
}

// ReduceLROnPlateau's "auto" mode is older: maximise when the name contains "acc".
bool reduce_lr_minimizes(const std::string& monitor, const std::string& mode) {
    if (mode == "min") return true;
    if (mode == "max") return false;
    return monitor.find("acc") == std::string::npos;
}

bool known_mode(const std::string& mode) { return mode == "auto" || mode == "min" || mode == "max"; }

// Python's csv writer (QUOTE_MINIMAL): quote a field holding the separator, a quote or a line break.
std::string csv_field(const std::string& field, const std::string& separator) {
    const bool needs_quotes = field.find(separator) != std::string::npos ||
                              field.find_first_of("\"\r\n") != std::string::npos;
    if (!needs_quotes) return field;
    std::string quoted = "\"";
    for (char c : field) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

}  // namespace

// ---------------------------------------------------------------- Callback, History

Model& Callback::model() const {
    if (!model_) runtime_error("This callback is not attached to a model: call set_model() first.");
    return *model_;
}

void History::on_train_begin(Logs&) { epoch.clear(); }

void History::on_epoch_end(int epoch_index, Logs& logs) {
    epoch.push_back(epoch_index);
    for (const auto& entry : logs.items()) {
        // Not a structured binding: clang 14 cannot capture one in a lambda.
        const std::string& key = entry.first;
        auto it = std::find_if(history.begin(), history.end(), [&](const auto& kv) { return kv.first == key; });
        if (it == history.end()) history.emplace_back(key, std::vector<double>{entry.second});
        else it->second.push_back(entry.second);
    }
}

const std::vector<double>& History::operator[](const std::string& key) const {
    for (const auto& [name, values] : history)
        if (name == key) return values;
    std::string keys;
    for (const auto& [name, values] : history) keys += (keys.empty() ? "" : ", ") + name;
    value_error("History has no key '{}'. Available keys: {}", key, keys.empty() ? "none" : keys);
}

// ---------------------------------------------------------------- EarlyStopping

EarlyStopping::EarlyStopping(EarlyStoppingOptions opts) : options(std::move(opts)) {
    if (!known_mode(options.mode)) {
        print_warning(fmt::format("EarlyStopping mode {} is unknown, fallback to auto mode.", options.mode));
        options.mode = "auto";
    }
}

// Keras turns min_delta into a signed offset: the value must beat the reference by more than |min_delta|.
bool EarlyStopping::improved(double current, double reference) const {
    const double delta = minimize_ ? -std::abs(options.min_delta) : std::abs(options.min_delta);
    return minimize_ ? (current - delta) < reference : (current - delta) > reference;
}

void EarlyStopping::on_train_begin(Logs&) {
    minimize_ = early_stopping_minimizes(options.monitor, options.mode);
    wait_ = 0;
    stopped_epoch = 0;
    best_ = minimize_ ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    best_weights_.reset();
    best_epoch = 0;
}

void EarlyStopping::on_epoch_end(int epoch, Logs& logs) {
    if (!logs.contains(options.monitor)) {
        print_warning(fmt::format("Early stopping conditioned on metric `{}` which is not available. "
                                  "Available metrics are: {}", options.monitor, joined_keys(logs, ",")));
        return;
    }
    if (epoch < options.start_from_epoch) return;   // still warming up
    const double current = logs.at(options.monitor);
    // Keep the first counted epoch's weights in case nothing ever improves.
    if (options.restore_best_weights && !best_weights_) best_weights_ = model().get_weights();

    ++wait_;
    if (improved(current, best_)) {
        best_ = current;
        best_epoch = epoch;
        if (options.restore_best_weights) best_weights_ = model().get_weights();
        // The wait restarts only when the value beats both the previous best and the baseline.
        if (!options.baseline || improved(current, *options.baseline)) wait_ = 0;
        return;
    }
    if (wait_ >= options.patience && epoch > 0) {
        stopped_epoch = epoch;
        model().stop_training = true;
        if (options.restore_best_weights && best_weights_) {
            if (options.verbose > 0)
                print_message(fmt::format("Restoring model weights from the end of the best epoch: {}.", best_epoch + 1));
            model().set_weights(*best_weights_);
        }
    }
}

void EarlyStopping::on_train_end(Logs&) {
    if (stopped_epoch > 0 && options.verbose > 0) print_message(fmt::format("Epoch {}: early stopping", stopped_epoch + 1));
}

// ---------------------------------------------------------------- TerminateOnNaN

void TerminateOnNaN::on_train_batch_end(int64_t batch, Logs& logs) {
    if (!logs.contains("loss")) return;
    const double loss = logs.at("loss");
    if (std::isnan(loss) || std::isinf(loss)) {
        print_message(fmt::format("Batch {}: Invalid loss, terminating training", batch));
        model().stop_training = true;
    }
}

// ---------------------------------------------------------------- CSVLogger

CSVLogger::CSVLogger(std::string filename, CSVLoggerOptions options)
    : filename_(std::move(filename)), options_(std::move(options)) {}

void CSVLogger::on_train_begin(Logs&) {
    auto mode = std::ios::out | std::ios::binary;   // binary: the "\r\n" line ends are written as they are
    if (options_.append) {
        std::error_code ec;
        if (std::filesystem::exists(filename_, ec)) append_header_ = std::filesystem::file_size(filename_, ec) == 0;
        mode |= std::ios::app;
    } else {
        mode |= std::ios::trunc;
    }
    if (file_.is_open()) file_.close();
    file_.open(filename_, mode);
    if (!file_) runtime_error("CSVLogger: cannot open '{}' for writing.", filename_);
    writer_ready_ = false;
}

void CSVLogger::on_epoch_end(int epoch, Logs& logs) {
    if (!file_.is_open()) runtime_error("CSVLogger: on_train_begin() must be called before on_epoch_end().");
    if (!keys_) {
        std::vector<std::string> keys;
        for (const auto& [key, value] : logs.items()) keys.push_back(key);
        std::sort(keys.begin(), keys.end());
        // Without validation keys in the first epoch (validation_freq > 1 in Keras), reserve
        // val_ columns for every key so later epochs have a place for them.
        const bool has_val = std::any_of(keys.begin(), keys.end(), [](const auto& k) { return k.starts_with("val_"); });
        if (!has_val) {
            const size_t n = keys.size();
            for (size_t i = 0; i < n; ++i) keys.push_back("val_" + keys[i]);
        }
        keys_ = std::move(keys);
    }
    const std::string& sep = options_.separator;
    if (!writer_ready_) {
        if (append_header_) {
            std::string header = "epoch";
            for (const auto& key : *keys_) header += sep + csv_field(key, sep);
            file_ << header << "\r\n";
        }
        writer_ready_ = true;
    }
    std::string row = std::to_string(epoch);
    for (const auto& key : *keys_) row += sep + (logs.contains(key) ? python_repr(logs.at(key)) : std::string("NA"));
    file_ << row << "\r\n" << std::flush;
}

void CSVLogger::on_train_end(Logs&) {
    file_.close();
    writer_ready_ = false;
}

// ---------------------------------------------------------------- ReduceLROnPlateau

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions opts) : options(std::move(opts)) {
    if (options.factor >= 1.0)
        value_error("ReduceLROnPlateau does not support a factor >= 1.0. Got {}", python_repr(options.factor));
    if (!known_mode(options.mode)) {
        print_warning(fmt::format("Learning rate reduction mode {} is unknown, fallback to auto mode.", options.mode));
        options.mode = "auto";
    }
}

void ReduceLROnPlateau::on_train_begin(Logs&) {
    minimize_ = reduce_lr_minimizes(options.monitor, options.mode);
    best_ = minimize_ ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    cooldown_counter_ = 0;
    wait_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, Logs& logs) {
    auto& optimizer = model().optimizer();
    logs.set("learning_rate", optimizer.learning_rate);
    if (!logs.contains(options.monitor)) {
        print_warning(fmt::format("Learning rate reduction is conditioned on metric `{}` which is not available. "
                                  "Available metrics are: {}.", options.monitor, joined_keys(logs, ",")));
        return;
    }
    const double current = logs.at(options.monitor);
    if (cooldown_counter_ > 0) {
        --cooldown_counter_;
        wait_ = 0;
    }
    const bool better = minimize_ ? current < best_ - options.min_delta : current > best_ + options.min_delta;
    if (better) {
        best_ = current;
        wait_ = 0;
        return;
    }
    if (cooldown_counter_ > 0) return;   // no waiting while cooling down
    if (++wait_ < options.patience) return;
    const float old_lr = optimizer.learning_rate;
    if (old_lr > static_cast<float>(options.min_lr)) {
        const double new_lr = std::max(static_cast<double>(old_lr) * options.factor, options.min_lr);
        optimizer.check_learning_rate_settable();
        optimizer.learning_rate = static_cast<float>(new_lr);
        // Keras prints the double product before it is stored back as float32:
        // 0.001 * 0.1 reads "0.00010000000474974513".
        if (options.verbose > 0)
            print_message(fmt::format("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.", epoch + 1,
                                      python_repr(new_lr)));
        cooldown_counter_ = options.cooldown;
        wait_ = 0;
    }
}

// ---------------------------------------------------------------- LearningRateScheduler

void LearningRateScheduler::on_epoch_begin(int epoch, Logs&) {
    auto& optimizer = model().optimizer();
    const double lr = schedule_(epoch, optimizer.learning_rate);
    optimizer.check_learning_rate_settable();
    optimizer.learning_rate = static_cast<float>(lr);
    if (verbose_ > 0)
        print_message(fmt::format("\nEpoch {}: LearningRateScheduler setting learning rate to {}.", epoch + 1,
                                  python_repr(lr)));
}

void LearningRateScheduler::on_epoch_end(int, Logs& logs) { logs.set("learning_rate", model().optimizer().learning_rate); }

}  // namespace keras::callbacks
