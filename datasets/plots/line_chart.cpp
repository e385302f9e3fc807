#include "plots/line_chart.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

namespace keras::plots {

namespace {

constexpr double kTickFont = 11, kLabelFont = 12, kTitleFont = 13, kLegendFont = 11;
constexpr double kCharWidth = 0.6;   // an average DejaVu Sans glyph, as a fraction of the font size

struct Tick {
    double value;
    std::string label, exponent;   // exponent: the label is label^exponent (log axes' decades)
    bool major = true;
};

// Value -> pixel along one axis; lo / hi are the axis limits (log10 of them on a log axis).
struct Axis {
    double lo = 0, hi = 1;
    bool log = false;
    double pixel_lo = 0, pixel_hi = 1;
    double to_pixel(double v) const {
        const double t = log ? std::log10(v) : v;
        return pixel_lo + (t - lo) / (hi - lo) * (pixel_hi - pixel_lo);
    }
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// The smallest and largest usable values of one coordinate over every series (x or y).
std::optional<std::pair<double, double>> data_range(const Chart& chart, bool of_x) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& s : chart.series)
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!usable(s.x[i], chart.log_x) || !std::isfinite(s.y[i])) continue;
            const double v = of_x ? s.x[i] : s.y[i];
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (lo > hi) return std::nullopt;
    return std::make_pair(lo, hi);
}

// matplotlib's default margins: 5% of the data's span on each side; a single value gets +-10% (or +-1).
std::pair<double, double> padded(double lo, double hi) {
    if (hi == lo) {
        const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
        return {lo - d, hi + d};
    }
    const double m = (hi - lo) * 0.05;
    return {lo - m, hi + m};
}

// 1, 2 or 5 times a power of ten, giving about five intervals over the span.
double nice_step(double span) {
    const double raw = span / 5;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double n = raw / magnitude;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude;
}

int floor_log10(double v) { return static_cast<int>(std::floor(std::log10(v) + 1e-9)); }

// As many decimals as the step needs: 0.2, 0.4 for a step of 0.2; 0.05, 0.10 for 0.05; 20, 40 for
// 20. An axis reaching 1e6, or staying below 1e-4, is in scientific form with one mantissa width for
// all its labels (5.0e+05, 1.0e+06, 1.5e+06).
std::string linear_label(double v, double step, double largest) {
    if (std::abs(v) < step * 1e-9) v = 0;   // -0.0 and rounding noise print as 0
    if (largest >= 1e6 || largest < 1e-4)
        return fmt::format("{:.{}e}", v, std::max(0, floor_log10(largest) - floor_log10(step)));
    return fmt::format("{:.{}f}", v, std::max(0, -floor_log10(step)));
}

std::vector<Tick> linear_ticks(double lo, double hi, bool integer) {
    double step = nice_step(hi - lo);
    if (integer) step = std::max(1.0, std::round(step));
    const double largest = std::max(std::abs(lo), std::abs(hi));
    std::vector<Tick> ticks;
    for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; ++k)
        ticks.push_back({k * step, linear_label(k * step, step, largest), ""});
    return ticks;
}

// Decades labelled 10^k (every n-th one when there are many), unlabelled minor ticks at 2..9 x 10^k.
// A range of less than two decades also labels 2 and 5 x 10^k, so the axis is never bare.
std::vector<Tick> log_ticks(double lo, double hi) {
    std::vector<Tick> ticks;
    const int first = static_cast<int>(std::ceil(lo - 1e-9)), last = static_cast<int>(std::floor(hi + 1e-9));
    const int stride = std::max(1, (last - first + 8) / 8);
    const bool few_decades = last - first < 1;
    for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e)
        for (int m = 1; m <= 9; ++m) {
            const double t = std::log10(m) + e;
            if (t < lo - 1e-9 || t > hi + 1e-9) continue;
            const double v = m * std::pow(10.0, e);
            if (m == 1 && (e - first) % stride == 0) ticks.push_back({v, "10", std::to_string(e), true});
            else if (few_decades && (m == 2 || m == 5)) ticks.push_back({v, fmt::format("{:g}", v), "", true});
            else ticks.push_back({v, "", "", false});
        }
    return ticks;
}

double label_width(const Tick& t, double size) {
    return (t.label.size() + 0.75 * t.exponent.size()) * kCharWidth * size;
}

Axis make_axis(std::optional<std::pair<double, double>> range, bool log) {
    Axis axis;
    axis.log = log;
    if (!range) range = std::make_pair(log ? 1e-3 : 0.0, 1.0);   // nothing finite to show: a plain unit range
    auto [lo, hi] = *range;
    if (log) {
        lo = std::log10(lo);
        hi = std::log10(hi);
    }
    std::tie(axis.lo, axis.hi) = padded(lo, hi);
    return axis;
}

std::vector<Tick> ticks_of(const Axis& axis, bool integer) {
    return axis.log ? log_ticks(axis.lo, axis.hi) : linear_ticks(axis.lo, axis.hi, integer);
}

// The points of a series in pixels, cut into runs at every non-finite point.
std::vector<std::vector<Point>> runs_of(const Series& s, const Axis& x, const Axis& y) {
    std::vector<std::vector<Point>> runs(1);
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!usable(s.x[i], x.log) || !std::isfinite(s.y[i])) {
            if (!runs.back().empty()) runs.emplace_back();
            continue;
        }
        runs.back().push_back({x.to_pixel(s.x[i]), y.to_pixel(s.y[i])});
    }
    if (runs.back().empty()) runs.pop_back();
    return runs;
}

void draw_series(SvgWriter& svg, const Series& s, const Axis& x, const Axis& y) {
    svg.begin_group("curve", s.name);
    const auto runs = runs_of(s, x, y);
    for (const auto& run : runs) {
        if (s.line && run.size() > 1) svg.polyline(run, {.stroke = s.color, .stroke_width = 1.8});
        // A run of one point has no line to show: it gets a marker, as do series drawn with markers.
        if (s.markers || !s.line || run.size() == 1)
            for (const auto& p : run) svg.circle(p, s.marker_radius, {.stroke = "", .fill = s.color});
    }
    svg.end_group();
}

struct Box {
    double left, top, width, height;
    bool contains(Point p) const { return p.x >= left && p.x <= left + width && p.y >= top && p.y <= top + height; }
};

// How many points of the curves (vertices and points along each segment) a legend box would cover.
int covered(const Box& box, const std::vector<std::vector<Point>>& runs) {
    int count = 0;
    for (const auto& run : runs)
        for (size_t i = 0; i < run.size(); ++i) {
            count += box.contains(run[i]);
            if (i + 1 == run.size()) continue;
            for (int k = 1; k < 10; ++k)
                count += box.contains({run[i].x + (run[i + 1].x - run[i].x) * k / 10,
                                       run[i].y + (run[i + 1].y - run[i].y) * k / 10});
        }
    return count;
}

bool has_finite_point(const Series& s, bool log_x) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
        if (usable(s.x[i], log_x) && std::isfinite(s.y[i])) return true;
    return false;
}

std::string legend_label(const Series& s, const Axis& x) {
    return has_finite_point(s, x.log) ? s.name : s.name + " (no finite values)";
}

// The legend in the plot area's corner that covers the fewest curve points (upper right first).
void draw_legend(SvgWriter& svg, const Chart& chart, const Box& area, const Axis& x, const Axis& y) {
    if (chart.series.empty()) return;
    double longest = 0;
    for (const auto& s : chart.series) longest = std::max<double>(longest, legend_label(s, x).size());
    const double row = 18, width = 48 + longest * kCharWidth * kLegendFont, height = row * chart.series.size() + 8;
    std::vector<std::vector<Point>> runs;
    for (const auto& s : chart.series)
        for (auto& run : runs_of(s, x, y)) runs.push_back(std::move(run));
    const double inset = 8;
    const Box corners[] = {
        {area.left + area.width - width - inset, area.top + inset, width, height},
        {area.left + inset, area.top + inset, width, height},
        {area.left + inset, area.top + area.height - height - inset, width, height},
        {area.left + area.width - width - inset, area.top + area.height - height - inset, width, height},
    };
    const Box* best = &corners[0];
    int best_count = covered(*best, runs);
    for (const auto& box : corners)
        if (const int c = covered(box, runs); c < best_count) best = &box, best_count = c;
    svg.begin_group("legend", chart.title);
    svg.rect(best->left, best->top, best->width, best->height, {.stroke = "#cccccc", .fill = "#ffffff"});
    for (size_t i = 0; i < chart.series.size(); ++i) {
        const Series& s = chart.series[i];
        const double cy = best->top + 4 + row * (i + 0.5);
        const double sx = best->left + 8;
        if (s.line) svg.line({sx, cy}, {sx + 24, cy}, {.stroke = s.color, .stroke_width = 1.8});
        if (s.markers || !s.line)   // a marker-only series (a suggestion) gets a slightly bigger dot
            svg.circle({sx + 12, cy}, s.marker_radius + (s.line ? 0 : 1), {.stroke = "", .fill = s.color});
        svg.text({sx + 32, cy + 4}, legend_label(s, x), {.size = kLegendFont});
    }
    svg.end_group();
}

void draw_x_axis(SvgWriter& svg, const Axis& x, const std::vector<Tick>& ticks, const Box& area) {
    const double bottom = area.top + area.height;
    for (const auto& t : ticks) {
        const double px = x.to_pixel(t.value);
        if (t.major) svg.line({px, area.top}, {px, bottom}, {.stroke = "#e8e8e8", .stroke_width = 0.8});
        svg.line({px, bottom}, {px, bottom + (t.major ? 5 : 3)}, {.stroke = "#000000", .stroke_width = 0.8});
        if (t.label.empty()) continue;
        const TextStyle style{.size = kTickFont, .anchor = "middle"};
        if (t.exponent.empty()) svg.text({px, bottom + 18}, t.label, style);
        else svg.text_with_exponent({px - 3, bottom + 19}, t.label, t.exponent, style);
    }
}

void draw_y_axis(SvgWriter& svg, const Axis& y, const std::vector<Tick>& ticks, const Box& area) {
    for (const auto& t : ticks) {
        const double py = y.to_pixel(t.value);
        svg.line({area.left, py}, {area.left + area.width, py}, {.stroke = "#e8e8e8", .stroke_width = 0.8});
        svg.line({area.left - 5, py}, {area.left, py}, {.stroke = "#000000", .stroke_width = 0.8});
        svg.text({area.left - 8, py + 4}, t.label, {.size = kTickFont, .anchor = "end"});
    }
}

}  // namespace

const std::string& tab10(size_t index) {
    static const std::string colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return colors[index % 10];
}

void draw_chart(SvgWriter& svg, const Chart& chart, double left, double top, double width, double height) {
    Axis x = make_axis(data_range(chart, true), chart.log_x);
    Axis y = make_axis(data_range(chart, false), false);
    const auto x_ticks = ticks_of(x, chart.integer_x), y_ticks = ticks_of(y, false);
    double widest = 0;
    for (const auto& t : y_ticks) widest = std::max(widest, label_width(t, kTickFont));
    // Room on the left for the rotated y label and the widest tick label; below for ticks and x label.
    const Box area{left + 34 + widest, top + (chart.title.empty() ? 12 : 32), 0, 0};
    const Box plot{area.left, area.top, left + width - 16 - area.left, top + height - 48 - area.top};
    x.pixel_lo = plot.left, x.pixel_hi = plot.left + plot.width;
    y.pixel_lo = plot.top + plot.height, y.pixel_hi = plot.top;

    svg.begin_group("panel", chart.title);
    draw_y_axis(svg, y, y_ticks, plot);
    draw_x_axis(svg, x, x_ticks, plot);
    svg.rect(plot.left, plot.top, plot.width, plot.height, {.stroke = "#000000", .stroke_width = 0.8});
    for (const auto& s : chart.series) draw_series(svg, s, x, y);
    draw_legend(svg, chart, plot, x, y);
    const double centre_x = plot.left + plot.width / 2;
    if (!chart.title.empty()) svg.text({centre_x, top + 20}, chart.title, {.size = kTitleFont, .anchor = "middle"});
    svg.text({centre_x, plot.top + plot.height + 38}, chart.xlabel, {.size = kLabelFont, .anchor = "middle"});
    const Point ylabel{left + 14, plot.top + plot.height / 2};
    svg.text(ylabel, chart.ylabel, {.size = kLabelFont, .anchor = "middle", .rotate = -90});
    svg.end_group();
}

}  // namespace keras::plots
