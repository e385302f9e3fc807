// A small SVG writer: the few elements our plots draw (lines, polylines, rectangles, circles, text),
// with numbers rounded to 0.01 px and text escaped for XML. No library: the output is plain text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace keras::plots {

struct Point {
    double x = 0, y = 0;
};

// How a shape is drawn; empty strings are left out of the element (SVG's defaults then apply).
struct Style {
    std::string stroke = "";
    double stroke_width = 1.0;
    std::string fill = "none";
    std::string dasharray = "";
};

struct TextStyle {
    double size = 12;
    std::string anchor = "start";   // SVG text-anchor: start, middle, end
    std::string weight = "normal";
    double rotate = 0;              // degrees, around the text's anchor point
    std::string fill = "#000000";
};

class SvgWriter {
public:
    SvgWriter(double width, double height);

    void rect(double x, double y, double width, double height, const Style& style);
    void line(Point a, Point b, const Style& style);
    void polyline(const std::vector<Point>& points, const Style& style);
    void circle(Point centre, double radius, const Style& style);
    void text(Point at, const std::string& text, const TextStyle& style);
    // Text with a raised exponent: base then a superscript (log-axis labels such as 10^-3).
    void text_with_exponent(Point at, const std::string& base, const std::string& exponent, const TextStyle& style);
    // <g class="..." data-name="...">: what a curve or panel is, for readers and tests.
    void begin_group(const std::string& cls, const std::string& name);
    void end_group();

    // The complete document.
    std::string str() const;

private:
    double width_, height_;
    std::string body_;
    int open_groups_ = 0;
};

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string xml_escape(const std::string& text);

}  // namespace keras::plots
