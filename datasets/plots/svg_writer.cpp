#include "plots/svg_writer.hpp"

#include <fmt/format.h>

#include "keras/errors.hpp"

namespace keras::plots {

namespace {

// 0.01 px is finer than any screen; trailing zeros go ("12.5", not "12.50").
std::string num(double v) {
    std::string s = fmt::format("{:.2f}", v);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s == "-0" ? "0" : s;
}

std::string style_attributes(const Style& style) {
    std::string out = fmt::format(" fill=\"{}\"", style.fill);
    if (!style.stroke.empty())
        out += fmt::format(" stroke=\"{}\" stroke-width=\"{}\"", style.stroke, num(style.stroke_width));
    if (!style.dasharray.empty()) out += fmt::format(" stroke-dasharray=\"{}\"", style.dasharray);
    return out;
}

std::string text_attributes(Point at, const TextStyle& style) {
    std::string out = fmt::format(" x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{}\"", num(at.x),
                                  num(at.y), num(style.size), style.anchor, style.fill);
    if (style.weight != "normal") out += fmt::format(" font-weight=\"{}\"", style.weight);
    if (style.rotate != 0)
        out += fmt::format(" transform=\"rotate({} {} {})\"", num(style.rotate), num(at.x), num(at.y));
    return out;
}

}  // namespace

std::string xml_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

SvgWriter::SvgWriter(double width, double height) : width_(width), height_(height) {}

void SvgWriter::rect(double x, double y, double width, double height, const Style& style) {
    body_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{}/>\n", num(x), num(y), num(width),
                         num(height), style_attributes(style));
}

void SvgWriter::line(Point a, Point b, const Style& style) {
    body_ += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"{}/>\n", num(a.x), num(a.y), num(b.x), num(b.y),
                         style_attributes(style));
}

void SvgWriter::polyline(const std::vector<Point>& points, const Style& style) {
    std::string coords;
    for (const auto& p : points) coords += (coords.empty() ? "" : " ") + num(p.x) + "," + num(p.y);
    body_ += fmt::format("<polyline points=\"{}\"{} stroke-linejoin=\"round\"/>\n", coords,
                         style_attributes(style));
}

void SvgWriter::circle(Point centre, double radius, const Style& style) {
    body_ += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\"{}/>\n", num(centre.x), num(centre.y), num(radius),
                         style_attributes(style));
}

void SvgWriter::text(Point at, const std::string& text, const TextStyle& style) {
    body_ += fmt::format("<text{}>{}</text>\n", text_attributes(at, style), xml_escape(text));
}

void SvgWriter::text_with_exponent(Point at, const std::string& base, const std::string& exponent,
                                   const TextStyle& style) {
    // The exponent: 3/4 of the font size, raised by 0.4 of it (nothing follows it on the line).
    body_ += fmt::format("<text{}>{}<tspan font-size=\"{}\" dy=\"{}\">{}</tspan></text>\n", text_attributes(at, style),
                         xml_escape(base), num(style.size * 0.75), num(-style.size * 0.4), xml_escape(exponent));
}

void SvgWriter::begin_group(const std::string& cls, const std::string& name) {
    body_ += fmt::format("<g class=\"{}\" data-name=\"{}\">\n", xml_escape(cls), xml_escape(name));
    ++open_groups_;
}

void SvgWriter::end_group() {
    if (open_groups_ == 0) runtime_error("SvgWriter: end_group() without an open group");
    body_ += "</g>\n";
    --open_groups_;
}

std::string SvgWriter::str() const {
    if (open_groups_ != 0) runtime_error("SvgWriter: {} group(s) left open", open_groups_);
    return fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n"
        "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n{2}</svg>\n",
        num(width_), num(height_), body_);
}

}  // namespace keras::plots
