// Printing tensors the way numpy 2.x prints arrays with str(): the layout of numpy's _formatArray
// (nested brackets, 75-column lines, "..." past 1000 elements with 3 items kept at each edge) and
// the number formats of its FloatingFormat / IntegerFormat with the default print options.
#include "keras/tensor.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace keras {
namespace {

// numpy's default print options.
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr size_t kLineWidth = 75;
constexpr int kPrecision = 8;

std::string chars(float x, std::chars_format format) {
    char buf[64];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, x, format).ptr);
}

std::string chars(float x, std::chars_format format, int precision) {
    char buf[128];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, x, format, precision).ptr);
}

// numpy's Dragon4 in "unique" mode with a cutoff: the shortest digits that read back as the same
// float32, unless they need more than `precision` digits after the point; then the value rounded
// there, trailing zeros dropped. `format` is fixed or scientific.
std::string shortest(float x, std::chars_format format, int precision) {
    std::string s = chars(x, format);
    const size_t e = std::min(s.find('e'), s.size());
    const size_t dot = s.find('.');
    const size_t frac_len = dot < e ? e - dot - 1 : 0;
    if (static_cast<int>(frac_len) <= precision) return s;
    s = chars(x, format, precision);
    const size_t e2 = std::min(s.find('e'), s.size());
    size_t end = e2;
    while (end > 0 && s[end - 1] == '0') --end;
    if (end > 0 && s[end - 1] == '.') --end;
    return s.substr(0, end) + s.substr(e2);
}

// A number split as numpy splits it: integer part, digits after the point, exponent ("-05").
struct Parts {
    std::string int_part, frac_part, exp_part;
};

Parts split(const std::string& s) {
    Parts p;
    const size_t e = s.find('e');
    const std::string mantissa = s.substr(0, e);
    if (e != std::string::npos) p.exp_part = s.substr(e + 1);
    const size_t dot = mantissa.find('.');
    p.int_part = mantissa.substr(0, dot);
    if (dot != std::string::npos) p.frac_part = mantissa.substr(dot + 1);
    return p;
}

std::string pad_left(const std::string& s, size_t width) {
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// numpy's FloatingFormat (floatmode "maxprec", precision 8): one layout for all the shown values,
// scientific when the non-zero magnitudes span too much or reach 10**6 (float32's precision).
class FloatFormat {
public:
    explicit FloatFormat(const std::vector<float>& values) {
        std::vector<float> finite;
        for (float v : values)
            if (std::isfinite(v)) finite.push_back(v);
        choose_exp(finite);
        if (finite.empty()) {
            left_ = right_ = 0;
        } else if (exp_) {
            measure_exp(finite);
        } else {
            measure_fixed(finite);
        }
        if (finite.size() != values.size()) widen_for_nonfinite(values);
    }

    std::string operator()(float x) const {
        if (!std::isfinite(x)) {
            const std::string word = std::isnan(x) ? "nan" : x < 0 ? "-inf" : "inf";
            return pad_left(word, left_ + right_ + 1);
        }
        if (exp_) {
            // Every value gets the common number of digits, the extra ones exact (numpy's min_digits),
            // not zeros: 883321090 prints as 8.8332109e+08 beside a value that needs 8 digits.
            const Parts p = split(chars(x, std::chars_format::scientific, static_cast<int>(precision_)));
            std::string digits = p.exp_part.substr(1);
            digits = std::string(std::max<size_t>(exp_size_, digits.size()) - digits.size(), '0') + digits;
            return pad_left(p.int_part, left_) + "." + p.frac_part + "e" + p.exp_part[0] + digits;
        }
        Parts p = split(shortest(x, std::chars_format::fixed, kPrecision));
        p.frac_part.resize(right_, ' ');
        return pad_left(p.int_part, left_) + "." + p.frac_part;
    }

private:
    void choose_exp(const std::vector<float>& finite) {
        double max_val = 0, min_val = INFINITY;
        for (float v : finite) {
            if (v == 0) continue;
            max_val = std::max(max_val, std::fabs(double(v)));
            min_val = std::min(min_val, std::fabs(double(v)));
        }
        exp_ = max_val > 0 && (max_val >= 1e6 || min_val < 1e-4 || max_val / min_val > 1000.);
    }
    void measure_exp(const std::vector<float>& finite) {
        for (float v : finite) {
            const Parts p = split(shortest(v, std::chars_format::scientific, kPrecision));
            left_ = std::max(left_, p.int_part.size());
            precision_ = std::max(precision_, p.frac_part.size());
            exp_size_ = std::max(exp_size_, p.exp_part.size() - 1);
        }
        right_ = exp_size_ + 2 + precision_;
    }
    void measure_fixed(const std::vector<float>& finite) {
        for (float v : finite) {
            const Parts p = split(shortest(v, std::chars_format::fixed, kPrecision));
            left_ = std::max(left_, p.int_part.size());
            right_ = std::max(right_, p.frac_part.size());
        }
    }
    // "nan" and "-inf" take the place of the integer part, the point and the digits.
    void widen_for_nonfinite(const std::vector<float>& values) {
        bool neginf = false;
        for (float v : values) neginf = neginf || (std::isinf(v) && v < 0);
        const long offset = static_cast<long>(right_) + 1;
        const long need = std::max(3 - offset, 3 + (neginf ? 1 : 0) - offset);
        left_ = std::max<long>(static_cast<long>(left_), need);
    }

    bool exp_ = false;
    size_t left_ = 0, right_ = 0, precision_ = 0, exp_size_ = 0;
};

// str() of a numpy float32 scalar (what numpy prints for a 0-d array): shortest digits, positional
// from 1e-4 up to 10**6 (numpy 2.x's cutoff for float32) with at least one digit after the point,
// else scientific without a point ("1e+06").
std::string scalar_str(float x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
    const double a = std::fabs(double(x));   // numpy compares in double: float32(1e-4) is below 1e-4
    if (a == 0 || (a >= 1e-4 && a < 1e6)) {
        std::string s = chars(x, std::chars_format::fixed);
        return s.find('.') == std::string::npos ? s + ".0" : s;
    }
    return chars(x, std::chars_format::scientific);
}

// The flat indices of the elements numpy shows (all of them unless summarised): per axis, the first
// and last kEdgeItems when the axis is longer than twice that.
void shown_indices(const Shape& shape, bool summarise, size_t axis, int64_t base, std::vector<int64_t>& out) {
    if (axis == shape.size()) {
        out.push_back(base);
        return;
    }
    const int64_t n = shape[axis];
    for (int64_t i = 0; i < n; ++i) {
        if (summarise && 2 * kEdgeItems < n && i == kEdgeItems) i = n - kEdgeItems;
        shown_indices(shape, summarise, axis + 1, base * n + i, out);
    }
}

// numpy's _extendLine: start a new line when the word does not fit (unless that would not help).
void extend_line(std::string& s, std::string& line, const std::string& word, size_t width, const std::string& indent) {
    if (line.size() + word.size() > width && line.size() > indent.size()) {
        while (!line.empty() && line.back() == ' ') line.pop_back();
        s += line + "\n";
        line = indent;
    }
    line += word;
}

// numpy's _formatArray: the block of axis `axis` starting at flat element `base` of the sub-tensor.
class Layout {
public:
    Layout(const Shape& shape, bool summarise, std::function<std::string(int64_t)> element)
        : shape_(shape), summarise_(summarise), element_(std::move(element)) {}

    std::string block(size_t axis, int64_t base, const std::string& indent, size_t width) const {
        const int64_t n = shape_[axis];
        const bool summary = summarise_ && 2 * kEdgeItems < n;
        std::vector<int64_t> items;
        for (int64_t i = 0; i < n; ++i) {
            if (summary && i == kEdgeItems) {
                items.push_back(-1);   // where "..." goes
                i = n - kEdgeItems;
            }
            items.push_back(i);
        }
        const std::string s = axis + 1 == shape_.size() ? row(base, items, indent, width)
                                                        : rows(axis, base, items, indent, width);
        std::string out = "[";   // the first line's indent gives way to the bracket
        out.append(s, indent.size());
        return out += "]";
    }

private:
    int64_t stride(size_t axis) const {
        int64_t s = 1;
        for (size_t a = axis + 1; a < shape_.size(); ++a) s *= shape_[a];
        return s;
    }
    // The last axis: elements separated by spaces, wrapped at the line width.
    std::string row(int64_t base, const std::vector<int64_t>& items, const std::string& indent, size_t width) const {
        std::string s, line = indent;
        for (size_t k = 0; k < items.size(); ++k) {
            const std::string word = items[k] < 0 ? "..." : element_(base + items[k]);
            extend_line(s, line, word, width - 1, indent);
            if (k + 1 < items.size()) line += " ";
        }
        return s + line;
    }
    // Outer axes: one sub-block per line, with a blank line per further axis between them.
    std::string rows(size_t axis, int64_t base, const std::vector<int64_t>& items, const std::string& indent,
                     size_t width) const {
        const std::string sep(shape_.size() - axis - 1, '\n');
        std::string s;
        for (size_t k = 0; k < items.size(); ++k) {
            s += indent;
            s += items[k] < 0 ? "..." : block(axis + 1, base + items[k] * stride(axis), indent + " ", width - 1);
            if (k + 1 < items.size()) s += sep;
        }
        return s;
    }

    const Shape& shape_;
    bool summarise_;
    std::function<std::string(int64_t)> element_;
};

template <typename T>
std::string int_text(T v) {
    return std::to_string(v);
}

// numpy's IntegerFormat: every value right-aligned to the widest of the shown min and max.
template <typename T>
std::string format_ints(const Tensor& t, bool summarise, const std::vector<int64_t>& shown) {
    const T* p = t.data<T>();
    if (t.ndim() == 0) return int_text(p[0]);
    size_t w = 0;
    for (int64_t i : shown) w = std::max(w, int_text(p[i]).size());
    const Layout layout(t.shape(), summarise, [&](int64_t i) { return pad_left(int_text(p[i]), w); });
    return layout.block(0, 0, " ", kLineWidth);
}

std::string format_floats(const Tensor& t, bool summarise, const std::vector<int64_t>& shown) {
    const float* p = t.data<float>();
    if (t.ndim() == 0) return scalar_str(p[0]);
    std::vector<float> values;
    for (int64_t i : shown) values.push_back(p[i]);
    const FloatFormat format(values);
    const Layout layout(t.shape(), summarise, [&](int64_t i) { return format(p[i]); });
    return layout.block(0, 0, " ", kLineWidth);
}

}  // namespace

std::string to_string(const Tensor& tensor) {
    if (!tensor.defined()) return "Tensor(undefined)";
    if (tensor.ndim() > 0 && tensor.numel() == 0) return "[]";
    // Values live on the host for printing: a CUDA tensor is copied over first.
    const Tensor t = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
    const bool summarise = t.numel() > kThreshold;
    std::vector<int64_t> shown;
    shown_indices(t.shape(), summarise, 0, 0, shown);
    switch (t.dtype()) {
        case DType::float32: return format_floats(t, summarise, shown);
        case DType::int32: return format_ints<int32_t>(t, summarise, shown);
        case DType::int64: return format_ints<int64_t>(t, summarise, shown);
    }
    return "";
}

std::ostream& operator<<(std::ostream& os, const Tensor& tensor) { return os << to_string(tensor); }

}  // namespace keras
