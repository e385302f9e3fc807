// fastai's lesson in kerascpp: find a learning rate, then train with the one-cycle policy.
// Returns the rate it trained at.
inline double train_with_fastai_tools(keras::Model& model, const keras::Tensor& x, const keras::Tensor& y) {
    // An exponential sweep of the rate over 100 batches; the model is left as it was.
    const keras::LRFinderResult found = model.lr_find(x, y, {.batch_size = 16});
    std::cout << "valley " << found.valley << ", steepest " << found.steepest
              << ", minimum/10 " << found.minimum << "\n";

    // Three epochs of one cycle peaking at the valley's rate: the rate warms up from lr/25 over the
    // first quarter of the batches and anneals to lr/1e5, Adam's beta_1 going 0.95 -> 0.85 -> 0.95.
    const double lr = std::isfinite(found.valley) ? found.valley : 1e-3;
    keras::callbacks::History history = model.fit_one_cycle(x, y, 3, lr, {.batch_size = 16, .verbose = 0});
    std::cout << "last epoch: loss " << history["loss"].back() << " at lr " << history["learning_rate"].back() << "\n";
    return lr;
}
