#include <algorithm>

#include "keras/errors.hpp"
#include "keras/preprocessing/text.hpp"
#include "unicode_text.hpp"

namespace keras::preprocessing::text {

// Keras: text.lower(), then str.translate mapping every filter character to `split`, then
// text.split(split), keeping non-empty pieces. Working on code points keeps multi-byte filter
// characters and separators whole, as in Python.
std::vector<std::string> text_to_word_sequence(std::string_view text, const TextToWordSequenceOptions& options) {
    if (options.split.empty()) value_error("text_to_word_sequence: `split` must not be empty (Python: empty separator)");
    std::u32string s = unicode::decode_utf8(text, "text_to_word_sequence: the text");
    const std::u32string filters = unicode::decode_utf8(options.filters, "text_to_word_sequence: `filters`");
    const std::u32string split = unicode::decode_utf8(options.split, "text_to_word_sequence: `split`");
    if (options.lower) s = unicode::lower(s);

    std::u32string translated;
    translated.reserve(s.size());
    for (char32_t c : s) {
        if (filters.find(c) != std::u32string::npos) translated += split;
        else translated += c;
    }

    std::vector<std::string> words;
    size_t start = 0;
    while (start <= translated.size()) {
        size_t end = translated.find(split, start);
        if (end == std::u32string::npos) end = translated.size();
        if (end > start) words.push_back(unicode::encode_utf8(std::u32string_view(translated).substr(start, end - start)));
        start = end + split.size();
    }
    return words;
}

}  // namespace keras::preprocessing::text
