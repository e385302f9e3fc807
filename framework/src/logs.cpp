#include "keras/logs.hpp"

#include <algorithm>

#include "keras/errors.hpp"

namespace keras {

static auto find_key(auto& items, const std::string& key) {
    return std::find_if(items.begin(), items.end(), [&](const auto& kv) { return kv.first == key; });
}

void Logs::set(const std::string& key, double value) {
    auto it = find_key(items_, key);
    if (it != items_.end()) it->second = value;
    else items_.emplace_back(key, value);
}

bool Logs::contains(const std::string& key) const { return find_key(items_, key) != items_.end(); }

double Logs::at(const std::string& key) const {
    auto it = find_key(items_, key);
    if (it == items_.end()) {
        std::string keys;
        for (const auto& kv : items_) keys += (keys.empty() ? "" : ", ") + kv.first;
        value_error("No value named '{}' in the logs; available: {}", key, keys.empty() ? "none" : keys);
    }
    return it->second;
}

}  // namespace keras
