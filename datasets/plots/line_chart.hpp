// One panel of line curves, as matplotlib draws ax.plot(): a framed plot area, ticks and tick labels on
// both axes (linear, or log10 on x), axis labels, a title and a legend in the corner the curves leave
// free (matplotlib's loc="best").
#pragma once

#include <string>
#include <vector>

#include "plots/svg_writer.hpp"

namespace keras::plots {

struct Series {
    std::string name{};         // the legend's label
    std::vector<double> x{}, y{};   // same length; a point whose x or y is not finite is a gap in the line
    std::string color = "#1f77b4";
    bool line = true;           // false: markers only (lr_find's suggestion points)
    bool markers = false;       // a dot on every point
    double marker_radius = 2.5;
};

struct Chart {
    std::string title{}, xlabel{}, ylabel{};
    bool log_x = false;       // x on a log10 axis (every x must be > 0)
    bool integer_x = false;   // x ticks on whole numbers only (epochs)
    std::vector<Series> series{};
};

// Draws the chart into the box (left, top, width, height) of the picture. Each series is a group
// <g class="curve" data-name="NAME"> holding one polyline per unbroken run of finite points (and its
// markers); the whole panel is <g class="panel" data-name="TITLE">.
void draw_chart(SvgWriter& svg, const Chart& chart, double left, double top, double width, double height);

// matplotlib's tab10 colours, C0 (blue), C1 (orange), ...
const std::string& tab10(size_t index);

}  // namespace keras::plots
