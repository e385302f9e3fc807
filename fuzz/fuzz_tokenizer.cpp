// keras::preprocessing::text: Tokenizer and text_to_word_sequence on arbitrary text (UTF-8 or not).
// The first byte picks the options: bit 0 lower, bit 1 char_level, bit 2 an oov_token, bit 3
// num_words = 5, bit 4: the first line is the filters and the second the split string. Then one text
// per line.
#include <keras/preprocessing/text.hpp>

#include <limits>
#include <vector>

#include "harness.hpp"

namespace {

std::vector<std::string> lines(std::string_view text) {
    std::vector<std::string> out;
    for (size_t start = 0; start <= text.size();) {
        const size_t end = std::min(text.find('\n', start), text.size());
        out.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    namespace text = keras::preprocessing::text;
    const uint8_t flags = data[0];
    std::vector<std::string> texts = lines(fuzz::as_text(data + 1, size - 1));
    text::TokenizerOptions options{.lower = (flags & 1) != 0, .char_level = (flags & 2) != 0};
    if (flags & 4) options.oov_token = "<oov>";
    if (flags & 8) options.num_words = 5;
    if ((flags & 16) && texts.size() >= 2) {
        options.filters = texts[0], options.split = texts[1];
        texts.erase(texts.begin(), texts.begin() + 2);
    }
    fuzz::keras_errors_only([&] {
        for (const auto& t : texts)
            text::text_to_word_sequence(t, {.filters = options.filters, .lower = options.lower, .split = options.split});
    });
    fuzz::keras_errors_only([&] {
        text::Tokenizer tokenizer(options);
        tokenizer.fit_on_texts(texts);
        const auto sequences = tokenizer.texts_to_sequences(texts);
        tokenizer.sequences_to_texts(sequences);
        tokenizer.sequences_to_texts({{0, 1, -1, 1000000, std::numeric_limits<int64_t>::max()}});
        tokenizer.fit_on_sequences(sequences);
    });
    return 0;
}
