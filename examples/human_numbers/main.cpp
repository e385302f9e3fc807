// The seeds' fastai lesson in kerascpp: a word-level language model on the "human numbers" corpus
// ("one , two , three , ... , one hundred ,", repeated), then text generation: continue
// "one , two ," and "twenty , twenty one ," for 50 words, greedy and with temperature sampling.
// Greedy output that counts correctly (". . . three , four , five , ...") shows the model learned.
// Trained as fastai trains it: lr_find's sweep suggests a learning rate (valley, steepest,
// minimum/10; the model is left untouched), then fit_one_cycle peaking at one of them: by default
// the fastbook's rule, a tenth of the rate at the minimum loss (fastai's newer default, valley, is
// more cautious: here 0.0036 against 0.16, and 15 epochs at it are not enough to count).
//
// Usage: human_numbers [--epochs N] [--suggestion valley|steepest|minimum] [--lr RATE] [--check]
//                      [--verbose 0|1|2] (--help lists the defaults)
//   --lr: skip lr_find and train at this rate.
//   --check: exit 1 unless both greedy continuations match the corpus word for word.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

namespace {

// 1 .. 100 in words, fastai's spelling: "twenty one", "one hundred".
std::string number_in_words(int n) {
    static const char* units[] = {"",        "one",     "two",       "three",    "four",     "five",    "six",
                                  "seven",   "eight",   "nine",      "ten",      "eleven",   "twelve",  "thirteen",
                                  "fourteen", "fifteen", "sixteen",   "seventeen", "eighteen", "nineteen"};
    static const char* tens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
    if (n == 100) return "one hundred";
    if (n < 20) return units[n];
    return n % 10 == 0 ? tens[n / 10] : fmt::format("{} {}", tens[n / 10], units[n % 10]);
}

// The corpus as words: "one , two , ... , one hundred ," repeated `passes` times.
std::vector<std::string> human_numbers(int passes) {
    std::vector<std::string> words;
    for (int p = 0; p < passes; ++p)
        for (int n = 1; n <= 100; ++n) {
            for (const auto& w : keras::preprocessing::text::text_to_word_sequence(number_in_words(n))) words.push_back(w);
            words.push_back(",");
        }
    return words;
}

struct Args {
    int epochs = 15;
    std::string suggestion = "minimum";
    double lr = 0.0;   // 0: lr_find's suggestion
    bool check = false;
    int verbose = 2;
};

// --help, unknown flags and bad values are CLI11's: a message and exit code (0 for --help) in *exit_code.
std::optional<Args> parse(int argc, char** argv, int* exit_code) {
    Args args;
    CLI::App app{"fastai's human-numbers lesson: a word-level LSTM language model on\n"
                 "\"one , two , ... , one hundred ,\" that continues two seeds for 50 words, greedy and with\n"
                 "temperature sampling. Trained as fastai does: lr_find suggests a learning rate, then\n"
                 "fit_one_cycle peaks at it."};
    app.add_option("--epochs", args.epochs, "training epochs")
        ->capture_default_str()
        ->check(CLI::Range(0, std::numeric_limits<int>::max()));
    app.add_option("--suggestion", args.suggestion, "which of lr_find's suggestions to train at (minimum: minimum/10)")
        ->capture_default_str()
        ->check(CLI::IsMember({"valley", "steepest", "minimum"}));
    app.add_option("--lr", args.lr, "the one-cycle's peak learning rate instead of lr_find's suggestion")
        ->check(CLI::PositiveNumber);
    app.add_flag("--check", args.check, "exit 1 unless both greedy continuations match the corpus word for word");
    app.add_option("--verbose", args.verbose, "fit's verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
        ->capture_default_str()
        ->check(CLI::Range(0, 2));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        *exit_code = app.exit(e);
        return std::nullopt;
    }
    return args;
}

// The corpus words that follow the first occurrence of `seed` (what greedy generation should say).
std::vector<std::string> continuation(const std::vector<std::string>& corpus, const std::vector<std::string>& seed,
                                      size_t n) {
    for (size_t i = 0; i + seed.size() + n <= corpus.size(); ++i)
        if (std::equal(seed.begin(), seed.end(), corpus.begin() + static_cast<std::ptrdiff_t>(i)))
            return {corpus.begin() + static_cast<std::ptrdiff_t>(i + seed.size()),
                    corpus.begin() + static_cast<std::ptrdiff_t>(i + seed.size() + n)};
    return {};
}

}  // namespace

int main(int argc, char** argv) try {
    using namespace keras;
    int exit_code = 0;
    const std::optional<Args> parsed = parse(argc, argv, &exit_code);
    if (!parsed) return exit_code;
    const Args& args = *parsed;
    const std::vector<std::string> corpus = human_numbers(3);

    // The vocabulary in order of first appearance; a word's index is its id.
    std::vector<std::string> vocabulary;
    for (const auto& w : corpus)
        if (std::find(vocabulary.begin(), vocabulary.end(), w) == vocabulary.end()) vocabulary.push_back(w);
    const auto id_of = [&](const std::string& w) {
        return static_cast<int32_t>(std::find(vocabulary.begin(), vocabulary.end(), w) - vocabulary.begin());
    };

    // Every window of 16 words; the target is the same window shifted by one word.
    constexpr int64_t window = 16;
    const int64_t samples = static_cast<int64_t>(corpus.size()) - window;
    Tensor x({samples, window}, DType::int32), y({samples, window}, DType::float32);
    for (int64_t s = 0; s < samples; ++s)
        for (int64_t t = 0; t < window; ++t) {
            x.data<int32_t>()[s * window + t] = id_of(corpus[s + t]);
            y.data<float>()[s * window + t] = static_cast<float>(id_of(corpus[s + t + 1]));
        }
    fmt::print("corpus: {} words, vocabulary {} words, {} training windows of {}\n", corpus.size(), vocabulary.size(),
               samples, window);

    utils::set_random_seed(42);
    Sequential model;
    model.add(layers::Input({-1}, {.dtype = DType::int32}));   // any length, so generation can feed any context
    model.add(layers::Embedding(static_cast<int64_t>(vocabulary.size()), 32));
    model.add(layers::LSTM(64, {.return_sequences = true}));
    model.add(layers::Dense(static_cast<int64_t>(vocabulary.size()), "softmax"));
    model.compile(optimizers::Adam(0.01), "sparse_categorical_crossentropy", {"accuracy"});
    if (args.verbose > 0) model.summary();
    double lr = args.lr;
    if (lr == 0.0) {
        const LRFinderResult found = model.lr_find(x, y, {.batch_size = 32});
        fmt::print("lr_find over {} batches: valley {:.3g}, steepest {:.3g}, minimum/10 {:.3g}\n", found.lrs.size(),
                   found.valley, found.steepest, found.minimum);
        lr = args.suggestion == "valley" ? found.valley : args.suggestion == "steepest" ? found.steepest : found.minimum;
        if (!std::isfinite(lr)) throw RuntimeError("lr_find found no learning rate (the loss diverged at once)");
    }
    fmt::print("fit_one_cycle: {} epochs, peak learning rate {:.3g}\n", args.epochs, lr);
    model.fit_one_cycle(x, y, args.epochs, lr, {.batch_size = 32, .verbose = args.verbose});

    bool all_correct = true;
    for (const std::string seed : {"one , two ,", "twenty , twenty one ,"}) {
        const auto greedy = text::generate(model, vocabulary, seed, {.n_words = 50});
        const auto expected = continuation(corpus, preprocessing::text::text_to_word_sequence(seed, {.filters = ""}), 50);
        const bool correct = greedy == expected;
        all_correct = all_correct && correct;
        fmt::print("\nseed: {}\ngreedy:          {}\n  counts correctly: {}\n", seed, text::join_words(greedy),
                   correct ? "yes" : "NO");
        for (double temperature : {0.5, 1.0})
            fmt::print("temperature {}:  {}\n", temperature,
                       text::join_words(text::generate(model, vocabulary, seed,
                                                       {.n_words = 50, .temperature = temperature, .seed = 1})));
    }
    if (args.check && !all_correct) {
        std::cerr << "human_numbers: greedy generation does not count correctly\n";
        return 1;
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "human_numbers: " << e.what() << "\n";
    return 1;
}
