// The seeds' character model: learn to continue "hi?hello!!" one character at a time with an
// LSTM(4) and a softmax over the characters, then print what the model predicts.
#include <iostream>
#include <string>

#include <fmt/format.h>
#include <keras/keras.hpp>

int main() try {
    using namespace keras;
    const std::string text = "hi?hello!!";
    const std::string chars = "hi?elo!";   // the distinct characters, in order of appearance
    const int64_t steps = static_cast<int64_t>(text.size()) - 1, classes = static_cast<int64_t>(chars.size());

    // x: the text without its last character, y: without its first; both one-hot.
    Tensor x = Tensor::zeros({1, steps, classes}), y = Tensor::zeros({1, steps, classes});
    for (int64_t t = 0; t < steps; ++t) {
        x.data<float>()[t * classes + chars.find(text[t])] = 1.0f;
        y.data<float>()[t * classes + chars.find(text[t + 1])] = 1.0f;
    }

    utils::set_random_seed(7);
    Sequential model;
    model.add(layers::Input({steps, classes}));
    model.add(layers::LSTM(4, {.return_sequences = true}));
    model.add(layers::Dense(classes, "softmax"));
    model.compile(optimizers::Adam(0.1), "categorical_crossentropy", {"accuracy"});
    model.summary();
    model.fit(x, y, {.batch_size = 1, .epochs = 100, .verbose = 0});

    const Tensor probs = model.predict(x, {.verbose = 0});
    std::string predicted;
    for (int64_t t = 0; t < steps; ++t) {
        const float* row = probs.data<float>() + t * classes;
        predicted += chars[std::max_element(row, row + classes) - row];
    }
    const auto result = model.evaluate(x, y, {.verbose = 0});
    fmt::print("input:     {}\npredicted: {}\nexpected:  {}\nloss {:.4f}, accuracy {:.2f}\n", text.substr(0, steps),
               predicted, text.substr(1), result.loss(), result["accuracy"]);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "hello_lstm: " << e.what() << "\n";
    return 1;
}
