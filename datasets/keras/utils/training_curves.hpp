// Training curves as pictures, without Python: keras::utils::plot_history (the loss and metrics per
// epoch, train and validation, as Keras users draw history.history with matplotlib) and
// plot_lr_find (fastai's learning-rate finder plot). Both write SVG, atomically (readers see the old
// file or the complete new one); view it in a browser or convert it (rsvg-convert -o x.png x.svg).
#pragma once

#include "keras/export.hpp"

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "keras/callbacks.hpp"
#include "keras/lr_finder.hpp"

namespace keras::utils {

// plot_history's keyword arguments.
struct KERAS_API PlotHistoryOptions {
    // The panels, in order, by training metric name ("loss", "accuracy"); each also draws its "val_"
    // twin when the history has one. Empty: every metric, in the order the history recorded them.
    std::vector<std::string> metrics{};
    std::string title = "";    // above the panels
    int columns = 0;           // panels per row; 0: all in one row up to 3, then rows of 3
    int panel_width = 440;     // pixels
    int panel_height = 330;
};

// One panel per metric with the training curve (blue) and the validation curve (orange) against the
// epoch (1, 2, ...), axes with ticks and labels, a legend, the metric's name as the title. The path
// must end in ".svg". A value that is NaN or infinite is left out: the curve has a gap there (a
// legend entry says "(no finite values)" when nothing is left). Errors (keras::ValueError): a
// history with no epochs, a metric not in it (the message lists those there), another extension,
// options out of range; the file is then not touched.
KERAS_API void plot_history(const callbacks::History& history, const std::string& path,
                            const PlotHistoryOptions& options = {});

// plot_lr_find's keyword arguments.
struct KERAS_API PlotLRFindOptions {
    int skip_end = 5;        // fastai's: the last points (where the loss blows up) are not drawn; at least 2 stay
    std::string title = "";
    int width = 560;         // pixels
    int height = 420;
};

// fastai's Recorder.plot_lr_find: the loss against the learning rate on a log10 x axis, each
// suggestion ({"valley", lr}, {"steepest", lr}, {"minimum", lr}) a dot on the curve at its learning
// rate, named with its value in the legend. lrs and losses have one entry per step (equal sizes,
// at least 2); every learning rate must be finite and > 0 (ValueError naming the first that is
// not), as must every suggestion's; a NaN or infinite loss is a gap in the curve. SVG, ".svg" path.
KERAS_API void plot_lr_find(std::span<const double> lrs, std::span<const double> losses,
                            const std::vector<std::pair<std::string, double>>& suggestions, const std::string& path,
                            const PlotLRFindOptions& options = {});
// The same for what Model::lr_find returned, with its valley / steepest / minimum/10 suggestions
// (a suggestion that is NaN, from a curve too short to judge, is not drawn).
KERAS_API void plot_lr_find(const LRFinderResult& result, const std::string& path,
                            const PlotLRFindOptions& options = {});

}  // namespace keras::utils
