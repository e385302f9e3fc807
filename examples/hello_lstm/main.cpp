// The seeds' character model: learn to continue "hi?hello!!" one character at a time with an
// LSTM(4) and a softmax over the characters, then print what the model predicts.
// Then the chopped-series lesson: the same weights in a stateful=true copy, fed the text in chunks
// of 3 characters, predict exactly what one pass over the whole text predicts (each chunk starts
// from the states the previous chunk ended in); a copy that is not stateful forgets at every chunk.
//
// --plot-model FILE draws the model (keras::utils::plot_model: a png / svg / pdf by Graphviz's dot,
// or the .dot text beside FILE when dot is not installed).
//
// Usage: hello_lstm [--epochs N] [--seed N] [--learning-rate X] [--chunk N] [--plot-model FILE]
//   (--help lists the defaults)
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

namespace {

// Steps [t0, t1) of a (1, T, C) tensor.
keras::Tensor steps_of(const keras::Tensor& x, int64_t t0, int64_t t1) {
    const int64_t C = x.dim(2);
    const float* p = x.data<float>() + t0 * C;
    return keras::Tensor(std::vector<float>(p, p + (t1 - t0) * C), {1, t1 - t0, C});
}

// The model's probabilities for x, predicted chunk by chunk and joined along the steps axis.
std::vector<float> predict_in_chunks(keras::Sequential& model, const keras::Tensor& x, int64_t chunk) {
    std::vector<float> out;
    for (int64_t t0 = 0; t0 < x.dim(1); t0 += chunk) {
        const keras::Tensor probs = model.predict(steps_of(x, t0, std::min(x.dim(1), t0 + chunk)), {.verbose = 0});
        out.insert(out.end(), probs.data<float>(), probs.data<float>() + probs.numel());
    }
    return out;
}

// A copy of the trained model (same weights) over chunks of any length, stateful or not.
std::unique_ptr<keras::Sequential> chunk_model(keras::Sequential& trained, int64_t classes, bool stateful) {
    using namespace keras;
    auto model = std::make_unique<Sequential>();
    // Keras 3: a stateful RNN needs a fixed batch size on its Input (here one text at a time).
    model->add(layers::Input({-1, classes}, {.batch_size = 1}));
    model->add(layers::LSTM(4, {.return_sequences = true, .stateful = stateful}));
    model->add(layers::Dense(classes, "softmax"));
    model->set_weights(trained.get_weights());
    return model;
}

std::string decode(const std::vector<float>& probs, const std::string& chars) {
    const auto classes = static_cast<int64_t>(chars.size());
    std::string text;
    for (size_t r = 0; r < probs.size() / chars.size(); ++r) {
        const float* row = probs.data() + r * classes;
        text += chars[std::max_element(row, row + classes) - row];
    }
    return text;
}

// CLI11's PositiveNumber names DBL_MAX in full when it refuses a value; this one says what it wants.
CLI::Validator positive_number() {
    return CLI::Validator(
        [](std::string& v) {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            return !v.empty() && *end == '\0' && x > 0 ? std::string() : "must be a number above 0, got '" + v + "'";
        },
        "POSITIVE");
}

struct Args {
    int epochs = 100;
    int seed = 7;
    double learning_rate = 0.1;
    int chunk = 3;
    std::string plot_model;   // empty: none
};

}  // namespace

int main(int argc, char** argv) try {
    using namespace keras;
    Args args;
    CLI::App app{"Learns to continue \"hi?hello!!\" with an LSTM(4), then checks that a stateful copy fed the\n"
                 "text in chunks predicts what one pass over the whole text predicts (exit 1 if not)."};
    app.add_option("--epochs", args.epochs, "training epochs")
        ->capture_default_str()
        ->check(CLI::Range(0, std::numeric_limits<int>::max()));
    app.add_option("--seed", args.seed, "random seed (weights)")->capture_default_str();
    app.add_option("--learning-rate", args.learning_rate, "Adam's learning rate")
        ->capture_default_str()
        ->check(positive_number());
    app.add_option("--chunk", args.chunk, "characters per chunk in the stateful part")
        ->capture_default_str()
        ->check(CLI::Range(1, std::numeric_limits<int>::max()));
    app.add_option("--plot-model", args.plot_model, "draw the model into this file (.png, .svg, .pdf or .dot)")
        ->default_str("none");
    CLI11_PARSE(app, argc, argv);

    const std::string text = "hi?hello!!";
    const std::string chars = "hi?elo!";   // the distinct characters, in order of appearance
    const int64_t steps = static_cast<int64_t>(text.size()) - 1, classes = static_cast<int64_t>(chars.size());

    // x: the text without its last character, y: without its first; both one-hot.
    Tensor x = Tensor::zeros({1, steps, classes}), y = Tensor::zeros({1, steps, classes});
    for (int64_t t = 0; t < steps; ++t) {
        x.data<float>()[t * classes + chars.find(text[t])] = 1.0f;
        y.data<float>()[t * classes + chars.find(text[t + 1])] = 1.0f;
    }

    utils::set_random_seed(args.seed);
    Sequential model;
    model.add(layers::Input({steps, classes}));
    model.add(layers::LSTM(4, {.return_sequences = true}));
    model.add(layers::Dense(classes, "softmax"));
    model.compile(optimizers::Adam(args.learning_rate), "categorical_crossentropy", {"accuracy"});
    model.summary();
    if (!args.plot_model.empty())
        fmt::print("Drew the model into {}\n",
                   utils::plot_model(model, args.plot_model, {.show_shapes = true, .show_layer_activations = true}));
    model.fit(x, y, {.batch_size = 1, .epochs = args.epochs, .verbose = 0});

    const Tensor probs = model.predict(x, {.verbose = 0});
    std::string predicted;
    for (int64_t t = 0; t < steps; ++t) {
        const float* row = probs.data<float>() + t * classes;
        predicted += chars[std::max_element(row, row + classes) - row];
    }
    const auto result = model.evaluate(x, y, {.verbose = 0});
    fmt::print("input:     {}\npredicted: {}\nexpected:  {}\nloss {:.4f}, accuracy {:.2f}\n", text.substr(0, steps),
               predicted, text.substr(1), result.loss(), result["accuracy"]);

    // The chopped-series lesson.
    const int64_t chunk = args.chunk;
    const std::vector<float> whole = probs.to_vector<float>();
    auto stateful = chunk_model(model, classes, true), plain = chunk_model(model, classes, false);
    const std::vector<float> chunked = predict_in_chunks(*stateful, x, chunk),
                             forgetful = predict_in_chunks(*plain, x, chunk);
    double max_diff = 0.0;
    for (size_t i = 0; i < whole.size(); ++i) max_diff = std::max(max_diff, std::abs(double(whole[i]) - chunked[i]));
    fmt::print("\nchunks of {}, stateful=true:  {}  (max |difference| from one pass: {:.2g})\n", chunk,
               decode(chunked, chars), max_diff);
    fmt::print("chunks of {}, stateful=false: {}  (every chunk starts from zero states)\n", chunk,
               decode(forgetful, chars));
    // The lesson's claim, checked: the suite runs this example and fails if it no longer holds.
    if (max_diff > 1e-5) {
        std::cerr << "hello_lstm: the stateful chunks differ from one pass by " << max_diff << "\n";
        return 1;
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "hello_lstm: " << e.what() << "\n";
    return 1;
}
