// The pictures of docs/plots.md: plot_model of the IMDb model and of a functional model of two
// inputs, and fastai's learning-rate finder on the IMDb model (Model::lr_find: an exponential sweep
// of the learning rate over 100 batches, fastai's smoothed loss and its three suggestions) drawn by
// plot_lr_find.
// (The training curves come from imdb_sentiment --plot-history.)
//
// Usage: plots --data imdb.npz --out DIR   (--help lists the defaults)
#include <algorithm>
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
    const LRFinderResult found = model->lr_find(x, train.y, {.batch_size = std::min<int64_t>(64, x.dim(0) / 2)});
    fmt::print("valley: {:.3g}\nsteepest: {:.3g}\nminimum/10: {:.3g}\n", found.valley, found.steepest, found.minimum);
    utils::plot_lr_find(found, out + "/lr_find.svg", {.title = "lr_find: IMDb SimpleRNN"});
    fmt::print("{}\n", out + "/lr_find.svg");
    return 0;
} catch (const std::exception& e) {
    std::cerr << "plots: " << e.what() << "\n";
    return 1;
}
