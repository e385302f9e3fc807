// plot_history and plot_lr_find: the data checked and laid out as line_chart panels in one SVG.
#include "keras/utils/training_curves.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "keras/errors.hpp"
#include "plots/line_chart.hpp"
#include "plots/output_file.hpp"
#include "plots/svg_writer.hpp"

namespace keras::utils {

namespace {

using plots::Chart;
using plots::Series;

const std::vector<double>* find_metric(const callbacks::History& history, const std::string& name) {
    for (const auto& [key, values] : history.history)
        if (key == name) return &values;
    return nullptr;
}

bool is_validation(const std::string& key) { return key.rfind("val_", 0) == 0; }

// The panels' metrics: as asked, or each training metric in recorded order (a "val_" metric
// without its training twin gets a panel of its own).
std::vector<std::string> panel_metrics(const callbacks::History& history, const PlotHistoryOptions& options) {
    std::vector<std::string> available;
    for (const auto& [key, values] : history.history) available.push_back(key);
    if (!options.metrics.empty()) {
        for (const auto& m : options.metrics)
            if (!find_metric(history, m))
                value_error("plot_history: the history has no metric '{}' (it has: {})", m,
                            fmt::join(available, ", "));
        return options.metrics;
    }
    std::vector<std::string> names;
    for (const auto& key : available)
        if (!is_validation(key) || !find_metric(history, key.substr(4))) names.push_back(key);
    return names;
}

// Epoch numbers as Keras users label them: History::epoch + 1 (1, 2, ...) where it matches the values.
std::vector<double> epoch_axis(const callbacks::History& history, size_t n) {
    std::vector<double> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = history.epoch.size() == n ? history.epoch[i] + 1.0 : double(i + 1);
    return x;
}

Chart history_panel(const callbacks::History& history, const std::string& metric) {
    Chart chart{.title = metric, .xlabel = "Epoch", .ylabel = metric, .integer_x = true};
    const bool markers = find_metric(history, metric)->size() <= 40;   // dots show each epoch on short runs
    const std::string names[] = {metric, "val_" + metric};
    for (size_t k = 0; k < 2; ++k) {
        const auto* values = find_metric(history, names[k]);
        if (!values) continue;
        chart.series.push_back({.name = names[k], .x = epoch_axis(history, values->size()), .y = *values,
                                .color = plots::tab10(k), .markers = markers});
    }
    return chart;
}

void check_size(const char* what, int value, int minimum) {
    if (value < minimum) value_error("{} must be at least {} (got {})", what, minimum, value);
}

// Panels in a grid of `columns`, each panel_width x panel_height, under an optional title.
std::string grid_svg(const std::vector<Chart>& charts, const std::string& title, int columns, int panel_width,
                     int panel_height) {
    const int rows = (static_cast<int>(charts.size()) + columns - 1) / columns;
    const double title_height = title.empty() ? 0 : 32;
    const int used_columns = std::min<int>(columns, charts.size());
    plots::SvgWriter svg(used_columns * panel_width, rows * panel_height + title_height);
    if (!title.empty())
        svg.text({used_columns * panel_width / 2.0, 22}, title, {.size = 15, .anchor = "middle", .weight = "bold"});
    for (size_t i = 0; i < charts.size(); ++i)
        plots::draw_chart(svg, charts[i], double(i % columns) * panel_width,
                          title_height + double(i / columns) * panel_height, panel_width, panel_height);
    return svg.str();
}

// The loss at learning rate lr along the drawn curve: linear in log(lr) between the nearest finite
// points, the end value beyond either end.
double loss_at(double lr, std::span<const double> lrs, std::span<const double> losses) {
    std::vector<std::pair<double, double>> points;
    for (size_t i = 0; i < lrs.size(); ++i)
        if (std::isfinite(losses[i])) points.emplace_back(std::log10(lrs[i]), losses[i]);
    if (points.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(points.begin(), points.end());
    const double t = std::log10(lr);
    if (t <= points.front().first) return points.front().second;
    if (t >= points.back().first) return points.back().second;
    const auto hi = std::lower_bound(points.begin(), points.end(),
                                     std::make_pair(t, -std::numeric_limits<double>::infinity()));
    const auto lo = hi - 1;
    if (hi->first == lo->first) return hi->second;
    return lo->second + (hi->second - lo->second) * (t - lo->first) / (hi->first - lo->first);
}

}  // namespace

void plot_history(const callbacks::History& history, const std::string& path, const PlotHistoryOptions& options) {
    plots::require_extension(path, "svg", "plot_history");
    check_size("plot_history: columns", options.columns, 0);
    check_size("plot_history: panel_width", options.panel_width, 200);
    check_size("plot_history: panel_height", options.panel_height, 150);
    const bool any_epoch =
        std::any_of(history.history.begin(), history.history.end(), [](const auto& kv) { return !kv.second.empty(); });
    if (!any_epoch) value_error("plot_history: the history has no epochs (nothing was recorded): nothing to plot");
    std::vector<Chart> charts;
    for (const auto& metric : panel_metrics(history, options)) charts.push_back(history_panel(history, metric));
    const int columns = options.columns > 0 ? options.columns : std::min<int>(3, charts.size());
    plots::write_file_atomically(path,
                                 grid_svg(charts, options.title, columns, options.panel_width, options.panel_height));
}

void plot_lr_find(std::span<const double> lrs, std::span<const double> losses,
                  const std::vector<std::pair<std::string, double>>& suggestions, const std::string& path,
                  const PlotLRFindOptions& options) {
    plots::require_extension(path, "svg", "plot_lr_find");
    if (lrs.size() != losses.size())
        value_error("plot_lr_find: lrs and losses differ in length ({} and {})", lrs.size(), losses.size());
    if (lrs.size() < 2) value_error("plot_lr_find: needs at least 2 points (got {})", lrs.size());
    for (size_t i = 0; i < lrs.size(); ++i)
        if (!std::isfinite(lrs[i]) || lrs[i] <= 0)
            value_error("plot_lr_find: learning rates go on a log axis and must be finite and > 0; lrs[{}] is {}", i,
                        lrs[i]);
    for (const auto& [name, lr] : suggestions)
        if (!std::isfinite(lr) || lr <= 0)
            value_error("plot_lr_find: the suggestion '{}' must be a finite learning rate > 0 (got {})", name, lr);
    check_size("plot_lr_find: skip_end", options.skip_end, 0);
    check_size("plot_lr_find: width", options.width, 200);
    check_size("plot_lr_find: height", options.height, 150);

    const size_t kept = std::max<size_t>(2, lrs.size() - std::min<size_t>(options.skip_end, lrs.size()));
    const auto shown_lrs = lrs.first(kept), shown_losses = losses.first(kept);
    Chart chart{.title = options.title, .xlabel = "Learning Rate", .ylabel = "Loss", .log_x = true};
    chart.series.push_back({.name = "loss",
                            .x = {shown_lrs.begin(), shown_lrs.end()},
                            .y = {shown_losses.begin(), shown_losses.end()},
                            .color = plots::tab10(0)});
    // fastai colours the suggestions C1, C2, ... and draws each as a dot on the curve.
    for (size_t k = 0; k < suggestions.size(); ++k) {
        const auto& [name, lr] = suggestions[k];
        chart.series.push_back({.name = fmt::format("{}: {:.2e}", name, lr),
                                .x = {lr},
                                .y = {loss_at(lr, shown_lrs, shown_losses)},
                                .color = plots::tab10(k + 1),
                                .line = false,
                                .marker_radius = 4.5});
    }
    plots::write_file_atomically(path, grid_svg({chart}, "", 1, options.width, options.height));
}

void plot_lr_find(const LRFinderResult& result, const std::string& path, const PlotLRFindOptions& options) {
    std::vector<std::pair<std::string, double>> suggestions;
    for (const auto& [name, lr] : {std::pair<std::string, double>{"valley", result.valley},
                                   {"steepest", result.steepest}, {"minimum/10", result.minimum}})
        if (!std::isnan(lr)) suggestions.emplace_back(name, lr);
    plot_lr_find(result.lrs, result.losses, suggestions, path, options);
}

}  // namespace keras::utils
