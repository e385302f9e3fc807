// keras.preprocessing.text (tf-keras 2.x): text_to_word_sequence and Tokenizer, with Keras's behaviour.
// Text is UTF-8; lower-casing is Python 3's str.lower() (Unicode, incl. "İ" -> "i̇" and a final "Σ" -> "ς").
// Text that is not valid UTF-8 is a keras::ValueError.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace keras::preprocessing::text {

// text_to_word_sequence's keyword arguments.
struct KERAS_API TextToWordSequenceOptions {
    std::string filters = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";   // each character becomes `split`
    bool lower = true;
    std::string split = " ";   // the separator (may be several characters); must not be empty
};

// Lower-cases (if asked), turns every filter character into `split`, splits on `split` and drops
// empty tokens: "Hello, world!" -> {"hello", "world"}.
KERAS_API std::vector<std::string> text_to_word_sequence(std::string_view text, const TextToWordSequenceOptions& options = {});

// Tokenizer's keyword arguments, in Keras's order.
struct KERAS_API TokenizerOptions {
    std::optional<int64_t> num_words{};   // texts_to_sequences keeps indices < num_words (unset or 0: all)
    std::string filters = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";
    bool lower = true;
    std::string split = " ";
    bool char_level = false;               // every character is a token (filters and split unused)
    std::optional<std::string> oov_token{};  // gets index 1; replaces unknown words in texts_to_sequences
};

// keras.preprocessing.text.Tokenizer. Index 0 is never assigned; words are indexed by count,
// most frequent first, ties in first-seen order.
class KERAS_API Tokenizer {
public:
    explicit Tokenizer(TokenizerOptions options = {});

    // Counts words; may be called several times (counts add up and the index is rebuilt).
    void fit_on_texts(const std::vector<std::string>& texts);
    // Counts, per index, the documents it occurs in (index_docs) without touching the word index.
    void fit_on_sequences(const std::vector<std::vector<int64_t>>& sequences);

    std::vector<std::vector<int64_t>> texts_to_sequences(const std::vector<std::string>& texts) const;
    // Indices joined by " "; unknown indices (and, with num_words, indices >= num_words) become
    // the oov_token, or are dropped without one.
    std::vector<std::string> sequences_to_texts(const std::vector<std::vector<int64_t>>& sequences) const;

    const std::unordered_map<std::string, int64_t>& word_index() const { return word_index_; }
    const std::map<int64_t, std::string>& index_word() const { return index_word_; }
    // In first-seen order, like Keras's OrderedDict.
    const std::vector<std::pair<std::string, int64_t>>& word_counts() const { return word_counts_; }
    const std::unordered_map<std::string, int64_t>& word_docs() const { return word_docs_; }
    const std::map<int64_t, int64_t>& index_docs() const { return index_docs_; }
    int64_t document_count() const { return document_count_; }
    const TokenizerOptions& options() const { return options_; }

private:
    std::vector<std::string> tokens_of(std::string_view text) const;
    void rebuild_index();

    TokenizerOptions options_;
    std::vector<std::pair<std::string, int64_t>> word_counts_;
    std::unordered_map<std::string, size_t> word_position_;   // word -> its slot in word_counts_
    std::unordered_map<std::string, int64_t> word_docs_;
    std::map<int64_t, int64_t> index_docs_;
    std::unordered_map<std::string, int64_t> word_index_;
    std::map<int64_t, std::string> index_word_;
    int64_t document_count_ = 0;
};

}  // namespace keras::preprocessing::text

namespace keras {
// keras::text is the same namespace as keras::preprocessing::text (an alias, not a second namespace):
// the docs' `namespace text = keras::preprocessing::text;` beside `using namespace keras;` then names
// one namespace twice, which C++ accepts, where two namespaces called `text` were ambiguous.
namespace text = preprocessing::text;
}  // namespace keras
