// UTF-8 decoding/encoding and Python 3's str.lower(), for the text preprocessing functions.
// Internal to the datasets library (not installed).
#pragma once

#include <string>
#include <string_view>

namespace keras::unicode {

// Code points of valid UTF-8; anything else (bad or overlong sequences, surrogates, > U+10FFFF,
// truncated characters) is a ValueError naming `what` and the byte offset.
std::u32string decode_utf8(std::string_view text, std::string_view what);
std::string encode_utf8(std::u32string_view code_points);

// Python's str.lower(): full lower-case mappings (U+0130 -> "i\u0307") and the Final_Sigma rule.
std::u32string lower(std::u32string_view text);

}  // namespace keras::unicode
