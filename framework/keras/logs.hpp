// The logs dictionary Keras passes around: metric name -> value, kept in insertion order so
// progress lines read "loss, accuracy, val_loss, val_accuracy" as in Keras.
#pragma once

#include "keras/export.hpp"

#include <string>
#include <utility>
#include <vector>

namespace keras {

// Keras's logs dict: metric name -> value, in insertion order, as callbacks receive them.
class KERAS_API Logs {
public:
    void set(const std::string& key, double value);
    bool contains(const std::string& key) const;
    double at(const std::string& key) const;   // throws ValueError naming the missing key
    const std::vector<std::pair<std::string, double>>& items() const { return items_; }
    bool empty() const { return items_.empty(); }
    void clear() { items_.clear(); }

private:
    std::vector<std::pair<std::string, double>> items_;
};

}  // namespace keras
