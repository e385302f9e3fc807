// Text generation with a trained word-level language model (the seeds' fastai "human numbers" lesson):
// feed the words so far, read the model's next-word probabilities at the last step, pick a word,
// append it, repeat. It lives in keras::preprocessing::text, which keras::text names too.
//
//     auto words = keras::text::generate(model, vocabulary, "one , two ,", {.n_words = 50});
//
// The model takes word ids (1, L) (an Input of shape (None,) so any length works) and returns
// probabilities over the vocabulary, (1, L, V) with return_sequences or (1, V); the last step is used.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "keras/model.hpp"

namespace keras::preprocessing::text {

// generate()'s options.
struct KERAS_API GenerateOptions {
    int64_t n_words = 50;        // how many words to append
    // 0: greedy (the most probable word; the lowest id on ties). > 0: sample from the probabilities
    // raised to 1 / temperature and renormalised (softmax(log p / temperature)): below 1 sharper,
    // above 1 flatter.
    double temperature = 0.0;
    uint64_t seed = 0;           // the sampling generator's seed: same seed, same text
    int64_t max_context = 0;     // 0: feed every word so far; > 0: only the last max_context words
};

// The n_words words that continue seed_text (its words split on whitespace, each looked up in
// vocabulary, where a word's index is its id). ValueError for an empty seed, a word not in the
// vocabulary, a negative n_words / temperature / max_context, or a model whose output does not end
// in vocabulary.size() probabilities.
KERAS_API std::vector<std::string> generate(Model& model, const std::vector<std::string>& vocabulary,
                                  const std::string& seed_text, const GenerateOptions& options = {});

// The index of the word chosen from one row of probabilities (what generate() does at each step);
// `uniform` is a draw in [0, 1), used only when temperature > 0.
KERAS_API int64_t choose_word(const float* probabilities, int64_t vocabulary_size, double temperature, double uniform);

// Words joined by single spaces ("three , four ,").
KERAS_API std::string join_words(const std::vector<std::string>& words);

}  // namespace keras::preprocessing::text

namespace keras {
// keras::text is the same namespace as keras::preprocessing::text (an alias, not a second namespace):
// the docs' `namespace text = keras::preprocessing::text;` beside `using namespace keras;` then names
// one namespace twice, which C++ accepts, where two namespaces called `text` were ambiguous.
namespace text = preprocessing::text;
}  // namespace keras

