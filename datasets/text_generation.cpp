// keras::text::generate: greedy or temperature sampling from a word-level language model.
#include "keras/text/generation.hpp"

#include <cmath>
#include <random>
#include <sstream>
#include <unordered_map>

#include "keras/errors.hpp"

namespace keras::preprocessing::text {
namespace {

std::vector<int32_t> seed_ids(const std::vector<std::string>& vocabulary, const std::string& seed_text) {
    std::unordered_map<std::string, int32_t> index;
    for (size_t i = 0; i < vocabulary.size(); ++i) index.emplace(vocabulary[i], static_cast<int32_t>(i));
    std::vector<int32_t> ids;
    std::istringstream words(seed_text);
    for (std::string w; words >> w;) {
        const auto it = index.find(w);
        if (it == index.end())
            value_error("generate: the seed word \"{}\" is not in the vocabulary ({} words)", w, vocabulary.size());
        ids.push_back(it->second);
    }
    if (ids.empty()) value_error("generate: seed_text must contain at least one word, received \"{}\"", seed_text);
    return ids;
}

void check_options(const GenerateOptions& o) {
    if (o.n_words < 0) value_error("generate: n_words must be >= 0, received {}", o.n_words);
    if (!(o.temperature >= 0.0) || !std::isfinite(o.temperature))
        value_error("generate: temperature must be a finite number >= 0 (0 = greedy), received {}", o.temperature);
    if (o.max_context < 0) value_error("generate: max_context must be >= 0 (0 = all words), received {}", o.max_context);
}

// A draw in [0, 1) from 53 bits of the generator, so the text does not depend on the standard library.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

int64_t choose_word(const float* p, int64_t V, double temperature, double uniform) {
    if (temperature == 0.0) {
        int64_t best = 0;
        for (int64_t i = 1; i < V; ++i)
            if (p[i] > p[best]) best = i;
        return best;
    }
    // p^(1/T) renormalised, computed as exp((log p - log p_max) / T) so small T does not underflow.
    double pmax = 0.0;
    for (int64_t i = 0; i < V; ++i) pmax = std::max(pmax, static_cast<double>(p[i]));
    if (!(pmax > 0.0)) value_error("generate: the model's probabilities are all zero (or NaN)");
    std::vector<double> weights(static_cast<size_t>(V));
    double total = 0.0;
    for (int64_t i = 0; i < V; ++i) {
        weights[i] = p[i] > 0.0f ? std::exp((std::log(static_cast<double>(p[i])) - std::log(pmax)) / temperature) : 0.0;
        total += weights[i];
    }
    double target = uniform * total;
    for (int64_t i = 0; i < V; ++i) {
        if (target < weights[i]) return i;
        target -= weights[i];
    }
    // Rounding left target just above the last weight: take the last word with any weight.
    for (int64_t i = V - 1; i >= 0; --i)
        if (weights[i] > 0.0) return i;
    return V - 1;
}

std::vector<std::string> generate(Model& model, const std::vector<std::string>& vocabulary,
                                  const std::string& seed_text, const GenerateOptions& options) {
    check_options(options);
    std::vector<int32_t> ids = seed_ids(vocabulary, seed_text);
    const int64_t V = static_cast<int64_t>(vocabulary.size());
    std::mt19937_64 rng(options.seed);
    std::vector<std::string> out;
    for (int64_t k = 0; k < options.n_words; ++k) {
        const size_t L = options.max_context > 0 ? std::min(ids.size(), static_cast<size_t>(options.max_context))
                                                 : ids.size();
        const std::vector<int32_t> context(ids.end() - static_cast<std::ptrdiff_t>(L), ids.end());
        const Tensor probs = model.predict(Tensor(context, {1, static_cast<int64_t>(L)}), {.batch_size = 1, .verbose = 0});
        if (probs.ndim() < 2 || probs.dim(-1) != V)
            value_error("generate: the model's output has shape {}, expected probabilities over the {} words of "
                        "the vocabulary in its last axis", shape_str(probs.shape()), V);
        const float* last = probs.data<float>() + probs.numel() - V;   // the last step's row
        const double u = options.temperature > 0.0 ? uniform01(rng) : 0.0;
        const int64_t id = choose_word(last, V, options.temperature, u);
        ids.push_back(static_cast<int32_t>(id));
        out.push_back(vocabulary[static_cast<size_t>(id)]);
    }
    return out;
}

std::string join_words(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    return text;
}

}  // namespace keras::preprocessing::text
