// keras.utils.Progbar as Keras 2.15 draws it (keras/utils/generic_utils.py): the bar ProgbarLogger shows
// for fit / evaluate / predict, and get_file's download bar.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace keras::utils {

// Progbar's keyword arguments.
struct KERAS_API ProgbarOptions {
    int verbose = 1;                 // 1: a bar with ETA (see `interactive`); 2: one line at the end; 0: silent
    std::ostream* out = nullptr;     // default std::cout
    std::function<double()> clock;   // seconds from any fixed origin; default a steady clock
    // verbose 1 on a terminal redraws the bar in place (carriage return); elsewhere (a pipe, a log file, a
    // string stream) it prints only the final line, so a log holds whole lines. Unset: interactive
    // when `out` is std::cout, std::cerr or std::clog, still on its own buffer, and that file
    // descriptor is a terminal.
    std::optional<bool> interactive;
};

// Whether `out` is std::cout / std::cerr / std::clog writing to a terminal (isatty of its descriptor).
// A standard stream redirected to another buffer (rdbuf(...)) is not.
KERAS_API bool is_terminal(const std::ostream* out);

// Named values a progress bar shows after the bar.
using ProgbarValues = std::vector<std::pair<std::string, double>>;

// Keras's utils.Progbar: the progress bar fit() and evaluate() print, for your own loops.
class KERAS_API Progbar {
public:
    // target: the number of steps, or <= 0 when unknown ("     37/Unknown").
    explicit Progbar(int64_t target, ProgbarOptions options = {});

    // `current` steps done (verbose 1 only; redrawn at most every 0.05 s). Values are shown as given,
    // in first-seen order; a later value for a key replaces the earlier one.
    void update(int64_t current, const ProgbarValues& values = {});
    // The final line. An unknown target becomes `seen`.
    void finish(int64_t seen, const ProgbarValues& values = {});
    // After a failure: ends a half-drawn line so what follows starts on its own line.
    void abandon();

private:
    void record(const ProgbarValues& values);
    double step_duration(int64_t current, double now);
    std::string bar(int64_t current) const;
    void draw(int64_t current, bool finalize, double now);
    void summary(int64_t current, double now);

    int64_t target_;
    ProgbarOptions options_;
    std::ostream* out_;
    double start_;
    std::optional<double> last_update_;            // no redraw yet: the first one always draws
    std::optional<double> time_after_first_step_;  // the first step is left out of the per-step time
    size_t total_width_ = 0;                        // width of the last line drawn, to blank leftovers
    bool interactive_;                              // redraw in place, or print only whole lines
    bool line_open_ = false;                        // a live line without its newline yet
    ProgbarValues values_;
};

}  // namespace keras::utils
