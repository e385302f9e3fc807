// keras::datasets::imdb against real Keras: load_data's arrays (Keras 3's own load_data run on the
// same files by tests/fixtures/gen_imdb_fixtures.py), the known facts of the real data, the aclImdb
// route giving exactly the npz's arrays, the cache lookup, and bad input.
// Tests on the real data (../shared/data/imdb next to the repository) skip, saying so, without it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "imdb/raw_reviews.hpp"
#include "keras/datasets/imdb.hpp"
#include "keras/datasets/imdb_or_generated.hpp"
#include "test_helpers.hpp"

using namespace keras;
using namespace keras::datasets;
using test_helpers::message_of;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "imdb";

fs::path real_data_dir() {
    const char* env = std::getenv("KERASCPP_IMDB_DATA");
    return env != nullptr ? fs::path(env) : fs::path(KERASCPP_IMDB_DATA_DIR);
}
bool have_real_data() {
    const fs::path d = real_data_dir();
    return fs::exists(d / "imdb.npz") && fs::exists(d / "aclImdb_v1_labeled.tar.gz") && fs::exists(d / "imdb_word_index.json");
}
#define SKIP_WITHOUT_REAL_DATA()                                                                                   \
    if (!have_real_data()) {                                                                                       \
        MESSAGE("SKIPPED: the real IMDb data is not at " << real_data_dir() << " (set KERASCPP_IMDB_DATA to a folder " \
                "with imdb.npz, aclImdb_v1_labeled.tar.gz and imdb_word_index.json)");                            \
        return;                                                                                                    \
    }

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int64_t> labels(const imdb::Split& s) {
    std::vector<int64_t> out;
    for (float y : s.y.to_vector<float>()) out.push_back(static_cast<int64_t>(y));
    return out;
}
std::vector<std::vector<int64_t>> sequences(const imdb::Split& s) {
    std::vector<std::vector<int64_t>> out;
    for (const auto& x : s.x) out.emplace_back(x.begin(), x.end());
    return out;
}

// The same 64-bit polynomial hash as digest() in gen_imdb_fixtures.py.
std::string digest(const imdb::Split& s) {
    uint64_t h = 0;
    const auto ys = labels(s);
    for (size_t i = 0; i < s.x.size(); ++i) {
        auto add = [&](int64_t v) { h = h * 1000003u + static_cast<uint64_t>(v); };
        add(static_cast<int64_t>(s.x[i].size()));
        add(ys[i]);
        for (int32_t w : s.x[i]) add(w);
    }
    return std::to_string(h);
}

// Keras's keyword arguments (from the fixture) as our options.
imdb::LoadDataOptions options_from(const nlohmann::json& settings, const std::string& path) {
    imdb::LoadDataOptions o{.path = path};
    if (settings.contains("num_words")) o.num_words = settings["num_words"].get<int64_t>();
    if (settings.contains("skip_top")) o.skip_top = settings["skip_top"].get<int64_t>();
    if (settings.contains("maxlen")) o.maxlen = settings["maxlen"].get<int64_t>();
    if (settings.contains("seed")) o.seed = settings["seed"].get<uint32_t>();
    if (settings.contains("index_from")) o.index_from = settings["index_from"].get<int64_t>();
    for (auto [key, field] : {std::pair{"start_char", &o.start_char}, std::pair{"oov_char", &o.oov_char}})
        if (settings.contains(key))
            *field = settings[key].is_null() ? std::nullopt : std::optional<int64_t>(settings[key].get<int64_t>());
    return o;
}

// A temporary folder, removed afterwards.
struct TempDir {
    fs::path root;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "kerascpp_imdb_XXXXXX").string();
        root = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(root); }
};

// KERAS_HOME pointed at `root` for the scope's lifetime.
struct ScopedKerasHome {
    std::optional<std::string> saved;
    explicit ScopedKerasHome(const fs::path& root) {
        if (const char* old = std::getenv("KERAS_HOME")) saved = old;
        ::setenv("KERAS_HOME", root.c_str(), 1);
    }
    ~ScopedKerasHome() {
        if (saved) ::setenv("KERAS_HOME", saved->c_str(), 1);
        else ::unsetenv("KERAS_HOME");
    }
};

void write_file(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

// A small aclImdb folder and its word index; reviews hold the cases the tokenisation must get right.
fs::path make_aclimdb(const fs::path& root) {
    write_file(root / "imdb_word_index.json",
               R"({"the": 1, "movie": 2, "was": 3, "great": 4, "br": 5, "bad": 6, "it's": 7, "Ünïcode": 8, "caf\u00e9": 9, "a\u00a0b": 10})");
    const fs::path acl = root / "aclImdb";
    write_file(acl / "train/pos/10_9.txt", "The MOVIE was GREAT!<br /><br />unknownword");
    write_file(acl / "train/pos/2_8.txt", "It's Ünïcode, café... a\xc2\xa0" "b");
    write_file(acl / "train/neg/0_1.txt", "bad bad\tbad\nthe-movie");
    write_file(acl / "train/neg/notes.md", "not a review: ignored");
    write_file(acl / "test/pos/0_10.txt", "");
    write_file(acl / "test/neg/1_2.txt", "BAD.");
    write_file(acl / "README", "ignored");
    return acl;
}
}  // namespace

TEST_CASE("load_data equals real Keras's load_data on a small imdb.npz, for several settings") {
    const auto oracle = read_json(kFixtures / "keras_load_data.json");
    const std::string path = (kFixtures / "tiny_p3.npz").string();
    for (const auto& c : oracle["tiny"]) {
        CAPTURE(c["settings"].dump());
        const auto options = options_from(c["settings"], path);
        if (c.contains("error")) {
            CHECK(message_of<ValueError>([&] { imdb::load_data(options); }).find(c["error"].get<std::string>()) !=
                  std::string::npos);
            continue;
        }
        const auto [train, test] = imdb::load_data(options);
        CHECK(sequences(train) == c["x_train"].get<std::vector<std::vector<int64_t>>>());
        CHECK(labels(train) == c["y_train"].get<std::vector<int64_t>>());
        CHECK(sequences(test) == c["x_test"].get<std::vector<std::vector<int64_t>>>());
        CHECK(labels(test) == c["y_test"].get<std::vector<int64_t>>());
    }
    // get<std::string>(): clang 16 finds no operator== between doctest's Expression_lhs and a json value.
    CHECK(message_of<ValueError>([&] { imdb::load_data({.path = path, .maxlen = 1}); }) ==
          oracle["tiny_maxlen_error"].get<std::string>());
}

TEST_CASE("load_data finds imdb.npz in Keras's cache, $KERAS_HOME/datasets") {
    TempDir home;
    fs::create_directories(home.root / "datasets");
    fs::copy_file(kFixtures / "tiny_p4.npz", home.root / "datasets" / "imdb.npz");
    fs::copy_file(kFixtures / "tiny_p3.npz", home.root / "datasets" / "other.npz");
    const ScopedKerasHome scoped(home.root);
    const auto expected = imdb::load_data({.path = (kFixtures / "tiny_p3.npz").string()});
    const auto cached = imdb::load_data();                            // "imdb.npz", found in the cache
    const auto named = imdb::load_data({.path = "other.npz"});       // any bare file name
    CHECK(sequences(cached.first) == sequences(expected.first));
    CHECK(labels(cached.second) == labels(expected.second));
    CHECK(sequences(named.second) == sequences(expected.second));
}

TEST_CASE("load_data_or_generated: the named file or the cache, then the first `limit` reviews") {
    const std::string path = (kFixtures / "tiny_p3.npz").string();
    const auto all = imdb::load_data({.path = path, .num_words = 500});
    const auto first = imdb::load_data_or_generated({.path = path, .num_words = 500, .limit = 3});
    REQUIRE(first.first.x.size() == 3);
    REQUIRE(first.second.x.size() == 3);
    CHECK(first.first.y.shape() == Shape{3});
    for (size_t i = 0; i < 3; ++i) {
        CHECK(first.first.x[i] == all.first.x[i]);
        CHECK(labels(first.second)[i] == labels(all.second)[i]);
    }
    // No limit, or one beyond the data: everything, as load_data gives it.
    CHECK(sequences(imdb::load_data_or_generated({.path = path, .num_words = 500}).first) == sequences(all.first));
    CHECK(imdb::load_data_or_generated({.path = path, .num_words = 500, .limit = 1 << 20}).second.x.size() ==
          all.second.x.size());
    // A file the caller named that cannot be read is an error, never the generated corpus instead.
    CHECK_THROWS(imdb::load_data_or_generated({.path = "/nonexistent/imdb.npz"}));
    // No path: Keras's cache first.
    TempDir home;
    fs::create_directories(home.root / "datasets");
    fs::copy_file(kFixtures / "tiny_p3.npz", home.root / "datasets" / "imdb.npz");
    const ScopedKerasHome scoped(home.root);
    CHECK(sequences(imdb::load_data_or_generated({.num_words = 500}).second) == sequences(all.second));
}

TEST_CASE("keep_first keeps the first reviews and their labels, or all of them for 0") {
    imdb::Split split{{{1, 2}, {3}, {4, 5, 6}}, Tensor(std::vector<float>{1, 0, 1}, Shape{3})};
    imdb::keep_first(split, 0);
    CHECK(split.x.size() == 3);
    imdb::keep_first(split, 2);
    REQUIRE(split.x.size() == 2);
    CHECK(split.x[1] == std::vector<int32_t>{3});
    CHECK(split.y.shape() == Shape{2});
    CHECK(labels(split) == std::vector<int64_t>{1, 0});
}

TEST_CASE("get_word_index() looks beside the local data load_data read, before the cache or a download") {
    TempDir dir, home;
    const ScopedKerasHome scoped(home.root);   // an empty cache: not finding the file would mean a download
    fs::copy_file(kFixtures / "tiny_p3.npz", dir.root / "imdb.npz");
    write_file(dir.root / "imdb_word_index.json", R"({"the": 1, "film": 2})");
    imdb::load_data({.path = (dir.root / "imdb.npz").string()});
    const imdb::WordIndex index = imdb::get_word_index();
    CHECK(index == imdb::WordIndex{{"the", 1}, {"film", 2}});
    // A local aclImdb folder: the index may sit in it or beside it, as for its tokenisation.
    TempDir other;
    make_aclimdb(other.root);
    imdb::load_data({.path = (other.root / "aclImdb").string()});
    CHECK(imdb::get_word_index().size() == 10);
}

TEST_CASE("encode_review numbers raw text as load_data numbers the reviews") {
    TempDir dir;
    const fs::path acl = make_aclimdb(dir.root);
    const imdb::WordIndex index = imdb::get_word_index((dir.root / "imdb_word_index.json").string());
    // Each training review's text, encoded, is one of load_data's training sequences.
    const imdb::LoadDataOptions load{.path = acl.string(), .num_words = 9, .skip_top = 4};
    const auto loaded = sequences(imdb::load_data(load).first);
    const imdb::EncodeReviewOptions encode{.num_words = 9, .skip_top = 4};
    for (const char* file : {"train/pos/10_9.txt", "train/pos/2_8.txt", "train/neg/0_1.txt"}) {
        CAPTURE(file);
        std::ifstream in(acl / file, std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto ids = imdb::encode_review(text, index, encode);
        CHECK(std::count(loaded.begin(), loaded.end(), std::vector<int64_t>(ids.begin(), ids.end())) == 1);
    }
    // By hand: the=1 -> 4, movie -> 5, was -> 6, great -> 7, br -> 8, it's=7 -> 10 (>= num_words: oov 2);
    // start_char 1 < skip_top 4 becomes oov too, as in Keras; "Unknown" is dropped.
    const std::string review = "The MOVIE was GREAT!<br />It's Unknown";
    CHECK(imdb::encode_review(review, index, encode) == std::vector<int32_t>{2, 4, 5, 6, 7, 8, 2});
    CHECK(imdb::encode_review(review, index) == std::vector<int32_t>{1, 4, 5, 6, 7, 8, 10});
    CHECK(imdb::encode_review(review, index, {.oov_char = std::nullopt, .unknown_as_oov = true}) ==
          std::vector<int32_t>{1, 4, 5, 6, 7, 8, 10});
    CHECK(imdb::encode_review(review, index, {.start_char = std::nullopt, .index_from = 0, .unknown_as_oov = true}) ==
          std::vector<int32_t>{1, 2, 3, 4, 5, 7, 2});
    // Without an index: get_word_index()'s, here the one beside the data load_data read.
    CHECK(imdb::encode_review(review) == std::vector<int32_t>{1, 4, 5, 6, 7, 8, 10});
}

TEST_CASE("aclImdb: tokenised as the npz was built, in the npz's order") {
    TempDir dir;
    const fs::path acl = make_aclimdb(dir.root);
    const imdb::WordIndex index = imdb::get_word_index((dir.root / "imdb_word_index.json").string());
    CHECK(index.size() == 10);
    const auto [train, test] = imdb::read_aclimdb(acl, index);
    // pos before neg; "10_9.txt" < "2_8.txt" as strings. ASCII-only lowercasing keeps "Ünïcode";
    // "\xa0" is not a separator; "<br />" leaves "br"; words not in the index vanish.
    CHECK(train.x == std::vector<std::vector<int64_t>>{{1, 2, 3, 4, 5, 5}, {7, 8, 9, 10}, {6, 6, 6, 1, 2}});
    CHECK(train.y == std::vector<int64_t>{1, 1, 0});
    CHECK(test.x == std::vector<std::vector<int64_t>>{{}, {6}});
    CHECK(test.y == std::vector<int64_t>{1, 0});
    // The folder itself, or the one holding it; the word index is found beside it.
    const auto [a_train, a_test] = imdb::load_data({.path = acl.string(), .seed = 3});
    const auto [b_train, b_test] = imdb::load_data({.path = dir.root.string(), .seed = 3});
    CHECK(sequences(a_train) == sequences(b_train));
    CHECK(sequences(a_test) == sequences(b_test));
    CHECK(a_train.x.size() == 3);
}

TEST_CASE("aclImdb and other inputs: bad files are clear errors") {
    TempDir dir;
    const fs::path acl = make_aclimdb(dir.root);
    const imdb::WordIndex index = imdb::get_word_index((dir.root / "imdb_word_index.json").string());

    write_file(acl / "train/neg/5_3.txt", "caf\xe9 latin-1");
    CHECK(message_of<ValueError>([&] { imdb::read_aclimdb(acl, index); })
              .starts_with((acl / "train/neg/5_3.txt").string() + ": review text is not valid UTF-8"));
    fs::remove(acl / "train/neg/5_3.txt");

    // A tarball of it, whole, then cut short.
    const fs::path tarball = dir.root / "acl.tar.gz";
    REQUIRE(std::system(("tar -czf " + tarball.string() + " -C " + dir.root.string() + " aclImdb").c_str()) == 0);
    CHECK(imdb::read_aclimdb(tarball, index).first.x == imdb::read_aclimdb(acl, index).first.x);
    const auto size = fs::file_size(tarball);
    for (const auto cut : {size / 2, size - 9, uintmax_t{10}}) {   // inside the data, the gzip trailer, the gzip header
        fs::resize_file(tarball, cut);
        const std::string message = message_of<RuntimeError>([&] { imdb::read_aclimdb(tarball, index); });
        CHECK_MESSAGE(message.starts_with(tarball.string() + ": "), message);
    }

    fs::remove_all(acl / "test/neg");
    CHECK(message_of<RuntimeError>([&] { imdb::read_aclimdb(acl, index); }) ==
          acl.string() + ": missing folder test/neg (an aclImdb folder needs train/pos, train/neg, test/pos and test/neg)");
    REQUIRE(std::system(("tar -czf " + tarball.string() + " -C " + dir.root.string() + " aclImdb").c_str()) == 0);
    CHECK(message_of<RuntimeError>([&] { imdb::read_aclimdb(tarball, index); }) ==
          tarball.string() + ": no reviews in test/neg (an aclImdb folder needs train/pos, train/neg, test/pos and "
                             "test/neg with <id>_<rating>.txt files)");

    const fs::path empty = dir.root / "empty.npz";
    write_file(empty, "");
    CHECK(message_of<RuntimeError>([&] { imdb::load_data({.path = empty.string()}); }) ==
          empty.string() + " is empty (expected imdb.npz, aclImdb_v1.tar.gz or an aclImdb folder)");
    const fs::path text = dir.root / "imdb.txt";
    write_file(text, "hello");
    CHECK(message_of<RuntimeError>([&] { imdb::load_data({.path = text.string()}); }) ==
          text.string() + " is neither a zip file (imdb.npz) nor a tar archive (aclImdb_v1.tar.gz)");
    CHECK(message_of<RuntimeError>([&] { imdb::load_data({.path = (dir.root / "nope" / "imdb.npz").string()}); }) ==
          (dir.root / "nope" / "imdb.npz").string() + " does not exist (give imdb.npz, aclImdb_v1.tar.gz or an aclImdb folder)");
    CHECK(message_of<RuntimeError>([&] { imdb::load_data({.path = (kFixtures / "truncated.npz").string()}); })
              .starts_with("Cannot read zip file"));

    write_file(dir.root / "bad_index.json", "{\"the\": 1, \"movie\": ");
    CHECK(message_of<RuntimeError>([&] { imdb::get_word_index((dir.root / "bad_index.json").string()); })
              .starts_with((dir.root / "bad_index.json").string() + ": not valid JSON"));
    write_file(dir.root / "bad_index.json", "{\"the\": \"one\"}");
    CHECK(message_of<RuntimeError>([&] { imdb::get_word_index((dir.root / "bad_index.json").string()); }) ==
          (dir.root / "bad_index.json").string() + ": the index of 'the' is \"one\", expected a positive integer");
}

TEST_CASE("decode_review: Keras's idiom, '?' for ids without a word") {
    const imdb::WordIndex index = {{"the", 1}, {"movie", 2}, {"good", 3}};
    CHECK(imdb::decode_review({1, 4, 5, 6, 2, 0, 99}, index) == "? the movie good ? ? ?");
    CHECK(imdb::decode_review({1, 2}, index, 0) == "the movie");
    CHECK(imdb::decode_review({}, index).empty());
}

TEST_CASE("real data: Keras's known facts, and Keras's own load_data results") {
    SKIP_WITHOUT_REAL_DATA();
    const fs::path npz = real_data_dir() / "imdb.npz";
    const auto start = std::chrono::steady_clock::now();
    const auto [train, test] = imdb::load_data({.path = npz.string()});
    MESSAGE("full imdb.npz read + load_data: " << seconds_since(start) << " s");
    REQUIRE(train.x.size() == 25000);
    REQUIRE(test.x.size() == 25000);
    const auto y_train = labels(train);
    CHECK(std::vector<int64_t>(y_train.begin(), y_train.begin() + 10) == std::vector<int64_t>{1, 0, 0, 1, 0, 0, 1, 0, 1, 0});
    CHECK(train.x[0].size() == 218);
    CHECK(std::vector<int32_t>(train.x[0].begin(), train.x[0].begin() + 14) ==
          std::vector<int32_t>{1, 14, 22, 16, 43, 530, 973, 1622, 1385, 65, 458, 4468, 66, 3941});

    // Keras's word index from the cache: its md5 is the one Keras checks, so no download is tried.
    TempDir home;
    fs::create_directories(home.root / "datasets");
    fs::copy_file(real_data_dir() / "imdb_word_index.json", home.root / "datasets" / "imdb_word_index.json");
    const imdb::WordIndex index = [&] {
        const ScopedKerasHome scoped(home.root);
        return imdb::get_word_index();
    }();
    CHECK(index.size() == 88584);
    CHECK(index.at("the") == 1);
    CHECK(imdb::decode_review(train.x[0], index).starts_with(
        "? this film was just brilliant casting location scenery story direction everyone's really suited the part they played"));

    // Keras 3's load_data on this very file, for several settings (digests of every array).
    const auto oracle = read_json(kFixtures / "keras_load_data.json");
    REQUIRE(oracle["real"].size() == 5);
    const auto raw = imdb::read_npz(npz);
    for (const auto& c : oracle["real"]) {
        CAPTURE(c["settings"].dump());
        const auto [tr, te] = imdb::apply_load_data_steps(raw.first, raw.second, options_from(c["settings"], ""));
        CHECK(tr.x.size() == c["num_train"].get<size_t>());
        CHECK(te.x.size() == c["num_test"].get<size_t>());
        CHECK(digest(tr) == c["train"].get<std::string>());
        CHECK(digest(te) == c["test"].get<std::string>());
    }
}

TEST_CASE("real data: aclImdb_v1.tar.gz gives exactly the npz's arrays") {
    SKIP_WITHOUT_REAL_DATA();
    const fs::path tarball = real_data_dir() / "aclImdb_v1_labeled.tar.gz";
    const auto npz_raw = imdb::read_npz(real_data_dir() / "imdb.npz");
    auto start = std::chrono::steady_clock::now();
    const auto tar_raw = imdb::read_aclimdb(tarball, imdb::get_word_index((real_data_dir() / "imdb_word_index.json").string()));
    MESSAGE("aclImdb_v1.tar.gz read + tokenise (50,000 reviews): " << seconds_since(start) << " s");
    CHECK(tar_raw.first.x == npz_raw.first.x);
    CHECK(tar_raw.first.y == npz_raw.first.y);
    CHECK(tar_raw.second.x == npz_raw.second.x);
    CHECK(tar_raw.second.y == npz_raw.second.y);

    // Through the public entry point (word index found beside the tarball), several settings.
    start = std::chrono::steady_clock::now();
    const auto [train, test] = imdb::load_data({.path = tarball.string(), .num_words = 6000, .maxlen = 130});
    MESSAGE("load_data(aclImdb_v1.tar.gz): " << seconds_since(start) << " s");
    const auto [n_train, n_test] = imdb::apply_load_data_steps(npz_raw.first, npz_raw.second, {.num_words = 6000, .maxlen = 130});
    CHECK(train.x == n_train.x);
    CHECK(labels(test) == labels(n_test));
    CHECK(test.x == n_test.x);
    for (const imdb::LoadDataOptions& o : {imdb::LoadDataOptions{.num_words = 500, .skip_top = 20, .maxlen = 300},
                                          imdb::LoadDataOptions{.num_words = 20000, .oov_char = std::nullopt}}) {
        const auto [a_train, a_test] = imdb::apply_load_data_steps(tar_raw.first, tar_raw.second, o);
        const auto [b_train, b_test] = imdb::apply_load_data_steps(npz_raw.first, npz_raw.second, o);
        CHECK(a_train.x == b_train.x);
        CHECK(a_test.x == b_test.x);
        CHECK(labels(a_train) == labels(b_train));
    }
}
