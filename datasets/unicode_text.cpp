#include "unicode_text.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "keras/errors.hpp"

namespace keras::unicode {

namespace {

struct LowerMapping {
    char32_t from, to1, to2;
};
struct CodePointRange {
    char32_t first, last;
};
#include "unicode_case_table.inc"

template <size_t N>
bool in_ranges(const CodePointRange (&table)[N], char32_t c) {
    auto it = std::upper_bound(std::begin(table), std::end(table), c,
                               [](char32_t v, const CodePointRange& r) { return v < r.first; });
    return it != std::begin(table) && c <= std::prev(it)->last;
}

bool case_ignorable(char32_t c) { return in_ranges(kCaseIgnorableRanges, c); }
bool cased(char32_t c) { return in_ranges(kCasedRanges, c); }

constexpr char32_t kCapitalSigma = 0x3A3, kSmallSigma = 0x3C3, kFinalSigma = 0x3C2;

// Unicode's Final_Sigma context, as Python tests it: a cased letter before the sigma and none after it,
// skipping case-ignorable code points (apostrophes, combining marks) on both sides.
bool final_sigma(std::u32string_view text, size_t i) {
    size_t j = i;
    while (j > 0 && case_ignorable(text[j - 1])) --j;
    if (j == 0 || !cased(text[j - 1])) return false;
    size_t k = i + 1;
    while (k < text.size() && case_ignorable(text[k])) ++k;
    return k == text.size() || !cased(text[k]);
}

[[noreturn]] void bad_utf8(std::string_view what, size_t offset, unsigned char byte) {
    value_error("{} is not valid UTF-8: byte 0x{:02X} at offset {}", what, byte, offset);
}

}  // namespace

std::u32string decode_utf8(std::string_view text, std::string_view what) {
    std::u32string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const auto b0 = static_cast<unsigned char>(text[i]);
        if (b0 < 0x80) {
            out += static_cast<char32_t>(b0);
            ++i;
            continue;
        }
        // Lead byte: length and the smallest code point that length may encode (no overlong forms).
        size_t len;
        char32_t cp, min_cp;
        if (b0 >= 0xC2 && b0 <= 0xDF) len = 2, cp = b0 & 0x1F, min_cp = 0x80;
        else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, cp = b0 & 0x0F, min_cp = 0x800;
        else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, cp = b0 & 0x07, min_cp = 0x10000;
        else bad_utf8(what, i, b0);
        for (size_t k = 1; k < len; ++k) {
            if (i + k >= text.size()) bad_utf8(what, i, b0);   // truncated character
            const auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xC0) != 0x80) bad_utf8(what, i + k, b);
            cp = (cp << 6) | (b & 0x3F);
        }
        if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) bad_utf8(what, i, b0);
        out += cp;
        i += len;
    }
    return out;
}

std::string encode_utf8(std::u32string_view code_points) {
    std::string out;
    out.reserve(code_points.size());
    for (char32_t c : code_points) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

std::u32string lower(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char32_t c = text[i];
        if (c < 0x80) {   // the common case, without a table lookup
            out += (c >= 'A' && c <= 'Z') ? c + 32 : c;
            continue;
        }
        if (c == kCapitalSigma) {
            out += final_sigma(text, i) ? kFinalSigma : kSmallSigma;
            continue;
        }
        auto it = std::lower_bound(std::begin(kLowerMappings), std::end(kLowerMappings), c,
                                   [](const LowerMapping& m, char32_t v) { return m.from < v; });
        if (it == std::end(kLowerMappings) || it->from != c) {
            out += c;
            continue;
        }
        out += it->to1;
        if (it->to2) out += it->to2;
    }
    return out;
}

}  // namespace keras::unicode
