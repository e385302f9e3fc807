// The progress bar get_file shows while downloading: Keras 2's Progbar (as in ProgbarLogger) counting
// bytes, e.g. "17464789/17464789 [==============================] - 2s 0us/step". Internal.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace keras::utils {

class DownloadProgbar {
public:
    // target: total bytes, or unset when the server does not say ("     1234/Unknown").
    DownloadProgbar(std::optional<int64_t> target, std::ostream& out);
    void update(int64_t current);   // redrawn at most every 0.05 s, as Keras
    void finish(int64_t current);   // the final line, with a newline
    // After a failure: end the half-drawn line so the error starts on its own line.
    void abandon();

private:
    void draw(int64_t current, bool finalize, double now);
    std::string bar(int64_t current) const;
    double step_duration(int64_t current, double now);

    std::optional<int64_t> target_;
    std::ostream& out_;
    double start_;
    std::optional<double> last_update_, time_after_first_step_;
    size_t total_width_ = 0;
    bool line_open_ = false;
};

}  // namespace keras::utils
