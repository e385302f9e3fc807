// keras::preprocessing::text against REAL tf-keras: text_to_word_sequence and Tokenizer outputs on
// tricky inputs (Unicode case rules, separators, filters, oov_token, num_words, ties) are read from
// tests/fixtures/text_fixtures.json and must match exactly; plus the error paths.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "keras/preprocessing/text.hpp"
#include "test_helpers.hpp"
#include "text_fixtures.hpp"

using keras::preprocessing::text::text_to_word_sequence;
using keras::preprocessing::text::TextToWordSequenceOptions;
using keras::preprocessing::text::Tokenizer;
using keras::preprocessing::text::TokenizerOptions;
using nlohmann::json;
using test_helpers::message_of;

namespace {

TextToWordSequenceOptions word_options(const json& c) {
    TextToWordSequenceOptions o;
    if (c.contains("filters")) o.filters = c["filters"];
    if (c.contains("lower")) o.lower = c["lower"];
    if (c.contains("split")) o.split = c["split"];
    return o;
}

TokenizerOptions tokenizer_options(const json& o) {
    TokenizerOptions t;
    if (o.contains("num_words")) t.num_words = o["num_words"].get<int64_t>();
    if (o.contains("filters")) t.filters = o["filters"];
    if (o.contains("lower")) t.lower = o["lower"];
    if (o.contains("split")) t.split = o["split"];
    if (o.contains("char_level")) t.char_level = o["char_level"];
    if (o.contains("oov_token")) t.oov_token = o["oov_token"].get<std::string>();
    return t;
}

}  // namespace

TEST_CASE("text_to_word_sequence matches tf-keras on every fixture case") {
    const json& cases = text_fixtures().at("text_to_word_sequence");
    REQUIRE(cases.size() >= 20);
    for (const auto& c : cases) {
        CAPTURE(c.dump());
        const auto words = text_to_word_sequence(c["text"].get<std::string>(), word_options(c));
        CHECK(words == c["expected"].get<std::vector<std::string>>());
    }
}

TEST_CASE("text_to_word_sequence: defaults are Keras's") {
    const TextToWordSequenceOptions o;
    CHECK(o.filters == "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n");
    CHECK(o.lower);
    CHECK(o.split == " ");
}

TEST_CASE("text_to_word_sequence: invalid UTF-8 and an empty split are clear errors") {
    using keras::ValueError;
    CHECK(message_of<ValueError>([] { text_to_word_sequence("ok \xC3\x28 bad"); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0x28 at offset 4");
    // Overlong "/" (0xC0 0xAF), a UTF-16 surrogate, a code point above U+10FFFF, a cut-off character.
    CHECK(message_of<ValueError>([] { text_to_word_sequence("\xC0\xAF"); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0xC0 at offset 0");
    CHECK(message_of<ValueError>([] { text_to_word_sequence("a\xED\xA0\x80"); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0xED at offset 1");
    CHECK(message_of<ValueError>([] { text_to_word_sequence("\xF4\x90\x80\x80"); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0xF4 at offset 0");
    CHECK(message_of<ValueError>([] { text_to_word_sequence("ab\xE2\x82"); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0xE2 at offset 2");
    CHECK(message_of<ValueError>([] { text_to_word_sequence("x", {.filters = "\xFF"}); }) ==
          "text_to_word_sequence: `filters` is not valid UTF-8: byte 0xFF at offset 0");
    CHECK(message_of<ValueError>([] { text_to_word_sequence("x", {.split = ""}); }) ==
          "text_to_word_sequence: `split` must not be empty (Python: empty separator)");
}

TEST_CASE("Tokenizer matches tf-keras on every fixture case") {
    const json& cases = text_fixtures().at("tokenizer");
    REQUIRE(cases.size() >= 8);
    for (const auto& c : cases) {
        CAPTURE(c["name"].get<std::string>());
        Tokenizer tok(tokenizer_options(c["options"]));
        for (const auto& texts : c["fits"]) tok.fit_on_texts(texts.get<std::vector<std::string>>());

        std::vector<std::pair<std::string, int64_t>> counts;
        for (const auto& wc : c["word_counts"]) counts.emplace_back(wc[0].get<std::string>(), wc[1].get<int64_t>());
        CHECK(tok.word_counts() == counts);   // same order: Keras's OrderedDict
        CHECK(tok.word_index() == c["word_index"].get<std::unordered_map<std::string, int64_t>>());
        std::map<int64_t, std::string> index_word;
        for (const auto& [k, v] : c["index_word"].items()) index_word[std::stoll(k)] = v.get<std::string>();
        CHECK(tok.index_word() == index_word);
        CHECK(tok.word_docs() == c["word_docs"].get<std::unordered_map<std::string, int64_t>>());
        std::map<int64_t, int64_t> index_docs;
        for (const auto& [k, v] : c["index_docs"].items()) index_docs[std::stoll(k)] = v.get<int64_t>();
        CHECK(tok.index_docs() == index_docs);
        CHECK(tok.document_count() == c["document_count"].get<int64_t>());
        CHECK(tok.texts_to_sequences(c["texts"].get<std::vector<std::string>>()) ==
              c["texts_to_sequences"].get<std::vector<std::vector<int64_t>>>());
        CHECK(tok.sequences_to_texts(c["sequences"].get<std::vector<std::vector<int64_t>>>()) ==
              c["sequences_to_texts"].get<std::vector<std::string>>());
    }
}

TEST_CASE("Tokenizer: fit_on_sequences counts documents per index, each index once per sequence") {
    Tokenizer tok;
    tok.fit_on_sequences({{1, 2, 2, 5}, {2}, {}});
    CHECK(tok.document_count() == 3);
    CHECK(tok.index_docs() == std::map<int64_t, int64_t>{{1, 1}, {2, 2}, {5, 1}});
    CHECK(tok.word_index().empty());
}

TEST_CASE("Tokenizer: bad options and bad text are clear errors") {
    using keras::ValueError;
    CHECK(message_of<ValueError>([] { Tokenizer({.num_words = -1}); }) ==
          "Tokenizer: num_words must be >= 0 (or unset), got -1");
    CHECK(message_of<ValueError>([] { Tokenizer({.split = ""}); }) == "Tokenizer: `split` must not be empty");
    Tokenizer tok;
    CHECK(message_of<ValueError>([&] { tok.fit_on_texts({"fine", "caf\xE9"}); }) ==
          "text_to_word_sequence: the text is not valid UTF-8: byte 0xE9 at offset 3");
    Tokenizer chars({.char_level = true});
    CHECK(message_of<ValueError>([&] { chars.fit_on_texts({"\x80"}); }) ==
          "Tokenizer: the text is not valid UTF-8: byte 0x80 at offset 0");
}

TEST_CASE("UTF-8 validity is Python's: valid byte strings tokenize as tf-keras does, the others are ValueErrors") {
    const json& cases = text_fixtures().at("utf8");
    REQUIRE(cases.size() >= 100);
    for (const auto& c : cases) {
        const std::string hex = c["hex"];
        CAPTURE(hex);
        std::string bytes;
        for (size_t i = 0; i < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
        if (c["expected"].is_null())
            CHECK(message_of<keras::ValueError>([&] { text_to_word_sequence(bytes); })
                      .starts_with("text_to_word_sequence: the text is not valid UTF-8: byte 0x"));
        else
            CHECK(text_to_word_sequence(bytes) == c["expected"].get<std::vector<std::string>>());
    }
}
