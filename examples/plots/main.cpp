// The pictures of docs/plots.md: plot_model of the IMDb model and of a functional model of two
// inputs, and fastai's learning-rate finder on the IMDb model (an exponential sweep of the learning
// rate over 100 batches, fastai's smoothed loss and its three suggestions) drawn by plot_lr_find.
// (The training curves come from imdb_sentiment --plot-history.)
//
// Usage: plots --data imdb.npz --out DIR   (--help lists the defaults)
#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

namespace {

using namespace keras;

std::unique_ptr<Sequential> imdb_model() {
    auto model = std::make_unique<Sequential>("imdb_sentiment");
    model->add(layers::Input({130}));
    model->add(layers::Embedding(6000, 100));
    model->add(layers::SimpleRNN(16));
    model->add(layers::Dense(1, "sigmoid"));
    model->compile(optimizers::Adam(0.001), "binary_crossentropy", {"accuracy"});
    return model;
}

Model two_input_model() {
    auto review = keras::Input({130}, {.name = "review"}), stars = keras::Input({5}, {.name = "stars"});
    auto words = (*share(layers::Embedding(6000, 32)))(review);
    auto summary = (*share(layers::LSTM(16)))(words);
    auto both = (*share(layers::Concatenate()))({summary, stars});
    auto hidden = (*share(layers::Dense(8, "relu")))(both);
    auto out = (*share(layers::Dense(1, {.activation = "sigmoid", .name = "positive"})))(hidden);
    return Model({review, stars}, {out}, "review_and_stars");
}

struct Sweep {
    std::vector<double> lrs, losses;
};

// fastai's LRFinder: the learning rate grows from 1e-7 to 10 over `steps` batches; the loss kept is
// the bias-corrected moving average (beta 0.98), and the sweep stops once it exceeds 4x its minimum.
Sweep lr_sweep(Model& model, const Tensor& x, const Tensor& y, int steps, int64_t batch) {
    Sweep sweep;
    double average = 0, best = INFINITY;
    for (int i = 0; i < steps; ++i) {
        const double lr = 1e-7 * std::pow(10.0 / 1e-7, double(i) / (steps - 1));
        model.optimizer().learning_rate = static_cast<float>(lr);
        const int64_t start = (i * batch) % (x.dim(0) - batch);
        const Logs logs = model.train_on_batch(x.slice_rows(start, start + batch), y.slice_rows(start, start + batch));
        const double loss = logs.at("loss");
        average = 0.98 * average + 0.02 * loss;
        const double smoothed = average / (1 - std::pow(0.98, i + 1));
        sweep.lrs.push_back(lr);
        sweep.losses.push_back(smoothed);
        best = std::min(best, smoothed);
        if (!std::isfinite(smoothed) || smoothed > 4 * best) break;
    }
    return sweep;
}

// fastai's suggestions: valley (halfway along the longest decreasing subsequence of the losses),
// steepest (the most negative slope against log lr) and minimum / 10.
// As fastai, over the sweep less its first tenth and last 5 steps.
std::vector<std::pair<std::string, double>> suggestions(const Sweep& sweep) {
    const size_t size = sweep.lrs.size(), first = size / 10, last = size > first + 8 ? size - 5 : size;
    const Sweep s{{sweep.lrs.begin() + first, sweep.lrs.begin() + last},
                  {sweep.losses.begin() + first, sweep.losses.begin() + last}};
    const size_t n = s.losses.size();
    std::vector<int> lds(n, 1);
    size_t max_start = 0, max_end = 0;
    for (size_t i = 1; i < n; ++i)
        for (size_t j = 0; j < i; ++j) {
            if (s.losses[i] < s.losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) max_end = i, max_start = max_end - lds[max_end];
        }
    const double sections = (max_end - max_start) / 3.0;
    const size_t valley = max_start + size_t(sections) + size_t(sections / 2);
    size_t steepest = 1, minimum = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
        // np.gradient(losses, log(lrs)) at an inner point: the central difference.
        const auto slope = [&](size_t k) {
            return (s.losses[k + 1] - s.losses[k - 1]) / std::log(s.lrs[k + 1] / s.lrs[k - 1]);
        };
        if (slope(i) < slope(steepest)) steepest = i;
    }
    for (size_t i = 0; i < n; ++i)
        if (s.losses[i] < s.losses[minimum]) minimum = i;
    return {{"valley", s.lrs[std::min(valley, n - 1)]},
            {"steepest", s.lrs[steepest]},
            {"minimum/10", s.lrs[minimum] / 10}};
}

}  // namespace

int main(int argc, char** argv) try {
    std::string data = "imdb.npz", out = ".";
    CLI::App app{"Draws docs/plots.md's pictures: plot_model of two models and an lr_find sweep on IMDb."};
    app.add_option("--data", data, "Keras's imdb.npz (or an aclImdb folder or tarball)")->capture_default_str();
    app.add_option("--out", out, "the folder the pictures go to")->capture_default_str()->check(CLI::ExistingDirectory);
    CLI11_PARSE(app, argc, argv);

    utils::set_random_seed(42);
    auto model = imdb_model();
    fmt::print("{}\n", utils::plot_model(*model, out + "/imdb_model.png", {.show_shapes = true}));
    Model functional = two_input_model();
    fmt::print("{}\n", utils::plot_model(functional, out + "/two_inputs.png",
                                         {.show_shapes = true, .show_layer_activations = true}));

    auto [train, test] = datasets::imdb::load_data({.path = data, .num_words = 6000});
    const Tensor x = utils::pad_sequences(train.x, {.maxlen = 130});
    const Sweep sweep = lr_sweep(*model, x, train.y, 100, std::min<int64_t>(64, x.dim(0) / 2));
    const auto suggested = suggestions(sweep);
    for (const auto& [name, lr] : suggested) fmt::print("{}: {:.3g}\n", name, lr);
    utils::plot_lr_find(sweep.lrs, sweep.losses, suggested, out + "/lr_find.svg",
                        {.title = "lr_find: IMDb SimpleRNN"});
    fmt::print("{}\n", out + "/lr_find.svg");
    return 0;
} catch (const std::exception& e) {
    std::cerr << "plots: " << e.what() << "\n";
    return 1;
}
