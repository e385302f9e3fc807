// Masks in Keras's sense: Embedding(mask_zero) and Masking make a (batch, steps) mask, layers with
// supports_masking (Dense, Dropout, Activation) pass it on through Sequential and functional models,
// other layers drop it, and layers that cannot honour it yet refuse it with a clear error.
// Expected masks and outputs are computed here by naive loops over the inputs.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "keras/errors.hpp"
#include "keras/keras.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;
using test_helpers::values_of;
using keras::CallContext;

namespace {

// Identity layer that records the mask it receives (what the next layer of a model would see).
class MaskProbe : public Layer {
public:
    explicit MaskProbe(std::shared_ptr<std::vector<Tensor>> seen) : Layer("MaskProbe", ""), seen_(std::move(seen)) {
        supports_masking = true;
    }
    Shape compute_output_shape(const Shape& s) const override { return s; }
    Tensor call(const Tensor& x, CallContext& ctx) override {
        seen_->push_back(ctx.mask);
        return x;
    }
    Tensor backward(const Tensor& dy, CallContext&) override { return dy; }

private:
    std::shared_ptr<std::vector<Tensor>> seen_;
};

const std::vector<std::vector<int32_t>> kIds = {{0, 0, 3, 1}, {2, 5, 0, 0}, {4, 1, 2, 3}};

// ids != 0, row by row.
std::vector<double> naive_mask(const std::vector<std::vector<int32_t>>& ids) {
    std::vector<double> m;
    for (const auto& row : ids)
        for (int32_t id : row) m.push_back(id != 0 ? 1.0 : 0.0);
    return m;
}

}  // namespace

TEST_CASE("Embedding(mask_zero) makes the mask ids != 0; without mask_zero there is none") {
    const Tensor ids = Tensor::from_rows(kIds);
    layers::Embedding masked(6, 2, {.mask_zero = true});
    const Tensor mask = masked.compute_mask(ids, {});
    CHECK(mask.shape() == Shape{3, 4});
    CHECK(values_of(mask) == naive_mask(kIds));
    CHECK(masked.get_config()["mask_zero"] == true);
    layers::Embedding plain(6, 2);
    CHECK_FALSE(plain.compute_mask(ids, mask).defined());
    CHECK(plain.get_config()["mask_zero"] == false);
}

TEST_CASE("Masking zeroes and masks the steps whose features all equal mask_value; gradients stop there") {
    const std::vector<double> v = {-1, -1, 2, -1, 0, 0, -1, -1,    // sample 0: steps 0 and 3 are padding
                                   5, -1, -1, -1, -1, -1, 7, 8};   // sample 1: steps 1 and 2
    const Tensor x = floats(v, {2, 4, 2});
    layers::Masking masking(-1.0f);
    CallContext ctx;
    const Tensor y = masking.call(x, ctx);
    std::vector<double> want_y(v.size()), want_mask;
    for (size_t s = 0; s < 8; ++s) {
        const bool real = v[2 * s] != -1 || v[2 * s + 1] != -1;
        want_mask.push_back(real ? 1 : 0);
        for (size_t f = 0; f < 2; ++f) want_y[2 * s + f] = real ? v[2 * s + f] : 0.0;
    }
    CHECK(values_of(y) == want_y);
    CHECK(masking.compute_mask(x, {}).shape() == Shape{2, 4});
    CHECK(values_of(masking.compute_mask(x, {})) == want_mask);
    std::vector<double> dy(v.size()), want_dx(v.size());
    for (size_t i = 0; i < dy.size(); ++i) {
        dy[i] = 0.5 + static_cast<double>(i);
        want_dx[i] = want_mask[i / 2] * dy[i];
    }
    CHECK(values_of(masking.backward(floats(dy, {2, 4, 2}), ctx)) == want_dx);
    CHECK(masking.get_config()["mask_value"] == -1.0);
}

TEST_CASE("Sequential passes the mask through Dense, Dropout and Activation; Flatten drops it") {
    auto seen = std::make_shared<std::vector<Tensor>>();
    Sequential model;
    model.add(layers::Input({4}, {.dtype = DType::int32}));
    model.add(std::make_shared<layers::Embedding>(6, 3, layers::EmbeddingOptions{.mask_zero = true}));
    model.add(std::make_shared<layers::Dense>(2));
    model.add(std::make_shared<layers::Dropout>(0.5f));
    model.add(std::make_shared<layers::Activation>("tanh"));
    model.add(std::make_shared<MaskProbe>(seen));
    model.add(std::make_shared<layers::Flatten>());
    model.add(std::make_shared<MaskProbe>(seen));
    model.predict(Tensor::from_rows(kIds), {.verbose = 0});
    REQUIRE(seen->size() == 2);
    REQUIRE((*seen)[0].defined());
    CHECK(values_of((*seen)[0]) == naive_mask(kIds));
    CHECK_FALSE((*seen)[1].defined());
}

TEST_CASE("a functional graph carries the mask from Masking to the layers that read it") {
    auto seen = std::make_shared<std::vector<Tensor>>();
    const auto inp = Input({3, 2});
    auto h = (*share(layers::Masking(0.0f)))(inp);
    h = (*share(layers::Dense(2)))(h);
    Model model(inp, (*std::make_shared<MaskProbe>(seen))(h));
    model.predict(floats({0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 2, 2}, {2, 3, 2}), {.verbose = 0});
    REQUIRE(seen->size() == 1);
    CHECK(values_of((*seen)[0]) == std::vector<double>{0, 1, 0, 1, 0, 1});
}

TEST_CASE("GlobalAveragePooling1D with a mask averages the real steps only; gradients reach only them") {
    // Left-padded, right-padded and unpadded samples; expectations by a naive loop.
    const std::vector<double> m = {0, 1, 1, 1, 1, 0, 1, 1, 1};
    std::vector<double> v;
    for (int i = 0; i < 18; ++i) v.push_back(0.25 * i - 1.5);
    layers::GlobalAveragePooling1D pool;
    CallContext ctx;
    ctx.mask = floats(m, {3, 3});
    const Tensor y = pool.call(floats(v, {3, 3, 2}), ctx);
    std::vector<double> want(6, 0.0), len(3, 0.0);
    for (int n = 0; n < 3; ++n)
        for (int t = 0; t < 3; ++t) {
            len[n] += m[n * 3 + t];
            for (int c = 0; c < 2; ++c) want[n * 2 + c] += m[n * 3 + t] * v[(n * 3 + t) * 2 + c];
        }
    for (int i = 0; i < 6; ++i) want[i] /= len[i / 2];
    const auto got = values_of(y);
    REQUIRE(got.size() == 6);
    for (int i = 0; i < 6; ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
    CHECK_FALSE(pool.compute_mask(floats(v, {3, 3, 2}), ctx.mask).defined());

    const std::vector<double> dy = {1, -2, 0.5, 3, -1, 4};
    const auto dx = values_of(pool.backward(floats(dy, {3, 2}), ctx));
    for (int n = 0; n < 3; ++n)
        for (int t = 0; t < 3; ++t)
            for (int c = 0; c < 2; ++c)
                CHECK(dx[(n * 3 + t) * 2 + c] == doctest::Approx(m[n * 3 + t] * dy[n * 2 + c] / len[n]).epsilon(1e-6));

    CallContext bad;
    bad.mask = floats({1, 1}, {1, 2});
    CHECK(message_of<ValueError>([&] { pool.call(floats(v, {3, 3, 2}), bad); }) ==
          "Layer \"" + pool.name() + "\": the mask has shape (1, 2), expected (3, 3) for an input of shape (3, 3, 2)");
}

TEST_CASE("Embedding(mask_zero) -> GlobalAveragePooling1D: the mean of the embeddings of the non-zero ids") {
    Sequential model;
    model.add(layers::Input({4}, {.dtype = DType::int32}));
    auto embedding = std::make_shared<layers::Embedding>(6, 3, layers::EmbeddingOptions{.mask_zero = true});
    model.add(embedding);
    model.add(std::make_shared<layers::GlobalAveragePooling1D>());
    const auto table = values_of(embedding->weights()[0]->value);
    const auto got = values_of(model.predict(Tensor::from_rows(kIds), {.verbose = 0}));
    REQUIRE(got.size() == 9);
    for (size_t n = 0; n < kIds.size(); ++n)
        for (int c = 0; c < 3; ++c) {
            double sum = 0, count = 0;
            for (int32_t id : kIds[n])
                if (id != 0) sum += table[id * 3 + c], count += 1;
            CHECK(got[n * 3 + c] == doctest::Approx(sum / count).epsilon(1e-6));
        }
}

TEST_CASE("Masking and Embedding(mask_zero) survive save and load_model, masks included") {
    const std::string path = (std::filesystem::temp_directory_path() / "kerascpp_test_masking.h5").string();
    Sequential model;
    model.add(layers::Input({3, 2}));
    auto masking = std::make_shared<layers::Masking>(-1.0f);
    model.add(masking);
    model.add(std::make_shared<layers::GlobalAveragePooling1D>());
    model.add(std::make_shared<layers::Dense>(2));
    model.save(path);
    const auto loaded = models::load_model(path, {.compile = false});
    CHECK(loaded->get_layer(masking->name())->get_config()["mask_value"] == -1.0);
    const Tensor x = floats({-1, -1, 1, 2, 3, 4, 5, 6, -1, -1, -1, -1}, {2, 3, 2});
    CHECK(values_of(loaded->predict(x, {.verbose = 0})) == values_of(model.predict(x, {.verbose = 0})));
    std::filesystem::remove(path);
}
