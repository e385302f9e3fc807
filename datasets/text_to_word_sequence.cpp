#include <algorithm>

#include "keras/errors.hpp"
#include "keras/preprocessing/text.hpp"
#include "unicode_text.hpp"

namespace keras::preprocessing::text {

namespace {

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Every filter character becomes `split`, then the text is cut at each `split` and empty pieces are
// dropped: Python's str.translate + str.split(split). Str is std::string for ASCII text (bytes are
// characters) or std::u32string (code points), so multi-byte characters stay whole.
template <typename Str, typename IsFilter, typename ToUtf8>
std::vector<std::string> translate_and_split(const Str& text, IsFilter is_filter, const Str& split, ToUtf8 to_utf8) {
    std::vector<std::string> words;
    if (split.size() == 1) {
        // A one-character split: the same as cutting at every filter or split character.
        size_t start = 0;
        for (size_t i = 0; i <= text.size(); ++i) {
            if (i < text.size() && text[i] != split[0] && !is_filter(text[i])) continue;
            if (i > start) words.push_back(to_utf8(text.substr(start, i - start)));
            start = i + 1;
        }
        return words;
    }
    Str translated;
    translated.reserve(text.size());
    for (auto c : text) {
        if (is_filter(c)) translated += split;
        else translated += c;
    }
    size_t start = 0;
    while (start <= translated.size()) {
        size_t end = translated.find(split, start);
        if (end == Str::npos) end = translated.size();
        if (end > start) words.push_back(to_utf8(translated.substr(start, end - start)));
        start = end + split.size();
    }
    return words;
}

}  // namespace

// Keras: text.lower(), then str.translate mapping every filter character to `split`, then
// text.split(split), keeping non-empty pieces.
std::vector<std::string> text_to_word_sequence(std::string_view text, const TextToWordSequenceOptions& options) {
    if (options.split.empty()) value_error("text_to_word_sequence: `split` must not be empty (Python: empty separator)");
    // Most text is ASCII: then bytes are characters and Python's lower() is just A-Z -> a-z.
    if (is_ascii(text) && is_ascii(options.filters) && is_ascii(options.split)) {
        std::string s(text);
        if (options.lower) std::transform(s.begin(), s.end(), s.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
        bool filter[128] = {};
        for (char c : options.filters) filter[static_cast<unsigned char>(c)] = true;
        return translate_and_split(s, [&](char c) { return filter[static_cast<unsigned char>(c)]; }, options.split,
                                   [](std::string w) { return w; });
    }
    std::u32string s = unicode::decode_utf8(text, "text_to_word_sequence: the text");
    const std::u32string filters = unicode::decode_utf8(options.filters, "text_to_word_sequence: `filters`");
    const std::u32string split = unicode::decode_utf8(options.split, "text_to_word_sequence: `split`");
    if (options.lower) s = unicode::lower(s);
    return translate_and_split(s, [&](char32_t c) { return filters.find(c) != std::u32string::npos; }, split,
                               [](const std::u32string& w) { return unicode::encode_utf8(w); });
}

}  // namespace keras::preprocessing::text
