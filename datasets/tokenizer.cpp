#include <algorithm>
#include <unordered_set>

#include "keras/errors.hpp"
#include "keras/preprocessing/text.hpp"
#include "unicode_text.hpp"

namespace keras::preprocessing::text {

Tokenizer::Tokenizer(TokenizerOptions options) : options_(std::move(options)) {
    if (options_.num_words && *options_.num_words < 0)
        value_error("Tokenizer: num_words must be >= 0 (or unset), got {}", *options_.num_words);
    if (!options_.char_level && options_.split.empty()) value_error("Tokenizer: `split` must not be empty");
}

// Words of one text as Keras's Tokenizer sees them: single characters (lower-cased, filters
// ignored) with char_level, else text_to_word_sequence.
std::vector<std::string> Tokenizer::tokens_of(std::string_view text) const {
    if (!options_.char_level)
        return text_to_word_sequence(text, {.filters = options_.filters, .lower = options_.lower, .split = options_.split});
    std::u32string s = unicode::decode_utf8(text, "Tokenizer: the text");
    if (options_.lower) s = unicode::lower(s);
    std::vector<std::string> chars;
    chars.reserve(s.size());
    for (char32_t c : s) chars.push_back(unicode::encode_utf8(std::u32string_view(&c, 1)));
    return chars;
}

void Tokenizer::fit_on_texts(const std::vector<std::string>& texts) {
    for (const auto& text : texts) {
        ++document_count_;
        const std::vector<std::string> words = tokens_of(text);
        for (const auto& w : words) {
            auto [it, inserted] = word_position_.try_emplace(w, word_counts_.size());
            if (inserted) word_counts_.emplace_back(w, 1);
            else ++word_counts_[it->second].second;
        }
        for (const auto& w : std::unordered_set<std::string>(words.begin(), words.end())) ++word_docs_[w];
    }
    rebuild_index();
}

// Keras: a stable sort of word_counts by count, descending, after the oov_token; then
// dict(zip(words, 1..n)), so a word equal to the oov_token keeps its later index.
void Tokenizer::rebuild_index() {
    std::vector<std::pair<std::string, int64_t>> sorted = word_counts_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::string> vocabulary;
    if (options_.oov_token) vocabulary.push_back(*options_.oov_token);
    for (auto& [word, count] : sorted) vocabulary.push_back(std::move(word));

    word_index_.clear();
    for (size_t i = 0; i < vocabulary.size(); ++i) word_index_[vocabulary[i]] = static_cast<int64_t>(i) + 1;
    index_word_.clear();
    for (const auto& [word, index] : word_index_) index_word_[index] = word;
    for (const auto& [word, docs] : word_docs_) index_docs_[word_index_.at(word)] = docs;
}

void Tokenizer::fit_on_sequences(const std::vector<std::vector<int64_t>>& sequences) {
    document_count_ += static_cast<int64_t>(sequences.size());
    for (const auto& seq : sequences)
        for (int64_t i : std::unordered_set<int64_t>(seq.begin(), seq.end())) ++index_docs_[i];
}

namespace {
// Keras tests `if num_words and i >= num_words`: unset and 0 both mean no limit.
bool beyond_num_words(const std::optional<int64_t>& num_words, int64_t index) {
    return num_words && *num_words > 0 && index >= *num_words;
}
}  // namespace

std::vector<std::vector<int64_t>> Tokenizer::texts_to_sequences(const std::vector<std::string>& texts) const {
    std::optional<int64_t> oov_index;
    if (options_.oov_token)
        if (auto it = word_index_.find(*options_.oov_token); it != word_index_.end()) oov_index = it->second;
    std::vector<std::vector<int64_t>> out;
    out.reserve(texts.size());
    for (const auto& text : texts) {
        std::vector<int64_t> ids;
        for (const auto& w : tokens_of(text)) {
            auto it = word_index_.find(w);
            // Keras appends None for an oov_token it never indexed (no fit yet); that cannot be an
            // int, so such words are dropped here.
            if (it == word_index_.end() || beyond_num_words(options_.num_words, it->second)) {
                if (oov_index) ids.push_back(*oov_index);
            } else {
                ids.push_back(it->second);
            }
        }
        out.push_back(std::move(ids));
    }
    return out;
}

std::vector<std::string> Tokenizer::sequences_to_texts(const std::vector<std::vector<int64_t>>& sequences) const {
    const std::string* oov_word = nullptr;
    if (options_.oov_token)
        if (auto it = word_index_.find(*options_.oov_token); it != word_index_.end()) oov_word = &index_word_.at(it->second);
    std::vector<std::string> out;
    out.reserve(sequences.size());
    for (const auto& seq : sequences) {
        std::string text;
        bool first = true;
        for (int64_t index : seq) {
            auto it = index_word_.find(index);
            const std::string* word = (it == index_word_.end() || beyond_num_words(options_.num_words, index))
                                          ? oov_word
                                          : &it->second;
            if (!word) continue;   // dropped, as Keras does without an oov_token
            if (!first) text += ' ';
            text += *word;
            first = false;
        }
        out.push_back(std::move(text));
    }
    return out;
}

}  // namespace keras::preprocessing::text
