// callbacks::CallbackList: the training loop's one call per hook, forwarded to every callback in order.
#include "keras/callbacks.hpp"

namespace keras::callbacks {

CallbackList::CallbackList(const std::vector<CallbackPtr>& callbacks, const CallbackListOptions& options) {
    if (options.add_progbar) callbacks_.push_back(std::make_shared<ProgbarLogger>());
    for (const auto& c : callbacks)
        if (c) callbacks_.push_back(c);
    if (options.add_history) {
        history_ = std::make_shared<History>();
        callbacks_.push_back(history_);
    }
    if (options.model) attach(options.model, options.params);
}

void CallbackList::attach(Model* model, const Params& params) {
    set_model(model);
    set_params(params);
    for (const auto& c : callbacks_) {
        c->set_model(model);
        c->set_params(params);
    }
}

// Each hook passes the same Logs on, so a callback sees what the ones before it changed.
void CallbackList::on_train_begin(Logs& logs) {
    for (const auto& c : callbacks_) c->on_train_begin(logs);
}
void CallbackList::on_train_end(Logs& logs) {
    for (const auto& c : callbacks_) c->on_train_end(logs);
}
void CallbackList::on_epoch_begin(int epoch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_epoch_begin(epoch, logs);
}
void CallbackList::on_epoch_end(int epoch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_epoch_end(epoch, logs);
}
void CallbackList::on_batch_begin(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_batch_begin(batch, logs);
}
void CallbackList::on_batch_end(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_batch_end(batch, logs);
}
void CallbackList::on_train_batch_begin(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_train_batch_begin(batch, logs);
}
void CallbackList::on_train_batch_end(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_train_batch_end(batch, logs);
}
void CallbackList::on_test_begin(Logs& logs) {
    for (const auto& c : callbacks_) c->on_test_begin(logs);
}
void CallbackList::on_test_end(Logs& logs) {
    for (const auto& c : callbacks_) c->on_test_end(logs);
}
void CallbackList::on_test_batch_begin(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_test_batch_begin(batch, logs);
}
void CallbackList::on_test_batch_end(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_test_batch_end(batch, logs);
}
void CallbackList::on_predict_begin(Logs& logs) {
    for (const auto& c : callbacks_) c->on_predict_begin(logs);
}
void CallbackList::on_predict_end(Logs& logs) {
    for (const auto& c : callbacks_) c->on_predict_end(logs);
}
void CallbackList::on_predict_batch_begin(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_predict_batch_begin(batch, logs);
}
void CallbackList::on_predict_batch_end(int64_t batch, Logs& logs) {
    for (const auto& c : callbacks_) c->on_predict_batch_end(batch, logs);
}

}  // namespace keras::callbacks
