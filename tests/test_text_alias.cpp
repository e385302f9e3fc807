// What docs/text_and_data.md does, word for word, at namespace scope beside `using namespace keras;`:
// `namespace text = keras::preprocessing::text;` used to be ambiguous with keras::text (text
// generation) and did not compile. keras::text is now the same namespace, so both spellings work.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <keras/keras.hpp>

using namespace keras;
namespace text = keras::preprocessing::text;

TEST_CASE("the docs' `namespace text = keras::preprocessing::text;` compiles beside `using namespace keras;`") {
    CHECK(text::text_to_word_sequence("Hello, World!") == std::vector<std::string>{"hello", "world"});
    CHECK(text::text_to_word_sequence("a<>b", {.split = "<>"}) == std::vector<std::string>{"a", "b"});
    const std::vector<std::string> reviews = {"a good film", "a bad film", "good"};
    text::Tokenizer tok({.num_words = 1000, .oov_token = "<OOV>"});
    tok.fit_on_texts(reviews);
    const auto ids = tok.texts_to_sequences(reviews);
    CHECK(ids.size() == 3);
    const auto x = utils::pad_sequences(ids, {.maxlen = 4});
    CHECK(x.shape() == Shape{3, 4});
    // The text-generation helpers are reachable through every spelling.
    CHECK(text::join_words({"one", ","}) == "one ,");
    CHECK(keras::text::join_words({"two"}) == "two");
    CHECK(preprocessing::text::join_words({"a", "b"}) == "a b");
}
