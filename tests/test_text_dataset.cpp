// utils::text_dataset_from_directory against Keras 3: the file order, labels, seeded shuffle and
// validation split on tests/fixtures/text_dataset are what Keras's own index_directory and
// get_training_or_validation_split give (tests/fixtures/text_dataset_oracle.py prints them); the same
// folder packed at run time into a .tar.gz gives the same datasets; Keras's errors.
// The real aclImdb tarball (../shared/data/imdb) is read when present, else that case skips, saying so.
#include <doctest/doctest.h>

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "keras/utils/text_dataset.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::captured;
using test_helpers::message_of;
namespace fs = std::filesystem;

namespace {

const fs::path kFolder = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "text_dataset";

using Files = std::vector<std::pair<std::string, int>>;   // (path relative to kFolder, label)

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The dataset Keras would give for these files: their texts and labels, in this order.
void check_dataset(const utils::TextDataset& ds, const Files& expected) {
    REQUIRE(ds.texts.size() == expected.size());
    REQUIRE(ds.labels.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        INFO("file " << i << ": " << expected[i].first);
        CHECK(ds.texts[i] == read_text(kFolder / expected[i].first));
        CHECK(ds.labels[i] == expected[i].second);
    }
}

utils::TextDatasetOptions quiet(utils::TextDatasetOptions options) {
    options.verbose = false;
    return options;
}

// The oracle's outputs (tests/fixtures/text_dataset_oracle.py, Keras 3.15.1).
const std::vector<std::string> kAllClasses = {"neg", "pos", "unsup"};
const Files kUnshuffled = {{"neg/4_2.txt", 0}, {"neg/5_1.txt", 0}, {"neg/UPPER.TXT", 0}, {"pos/10_8.txt", 1},
                           {"pos/1_9.txt", 1}, {"pos/2_10.txt", 1}, {"pos/more/3_7.txt", 1},
                           {"unsup/6_0.txt", 2}, {"unsup/7_0.txt", 2}};
const Files kPosNegSeed1337 = {{"neg/UPPER.TXT", 1}, {"pos/2_10.txt", 0}, {"pos/1_9.txt", 0},
                               {"pos/more/3_7.txt", 0}, {"pos/10_8.txt", 0}, {"neg/4_2.txt", 1},
                               {"neg/5_1.txt", 1}};
const Files kSeed42 = {{"unsup/6_0.txt", 2}, {"neg/5_1.txt", 0}, {"pos/2_10.txt", 1}, {"neg/4_2.txt", 0},
                       {"unsup/7_0.txt", 2}, {"neg/UPPER.TXT", 0}, {"pos/1_9.txt", 1}, {"pos/10_8.txt", 1},
                       {"pos/more/3_7.txt", 1}};
const Files kSeed42Training(kSeed42.begin(), kSeed42.begin() + 7);   // validation_split=0.3: 2 of 9
const Files kSeed42Validation(kSeed42.begin() + 7, kSeed42.end());
const std::vector<std::string> kUnlabelledSeed7 = {
    "pos/more/3_7.txt", "pos/10_8.txt", "README.txt", "neg/4_2.txt", ".hidden/8.txt", "unsup/7_0.txt",
    "pos/2_10.txt", "neg/5_1.txt", "pos/1_9.txt", "unsup/6_0.txt", "neg/UPPER.TXT"};

// kFolder packed as <prefix>/<file> into a .tar.gz (one folder entry, <prefix>/pos/; the other classes
// must be found from the file paths), plus members outside the prefix.
fs::path make_tarball(const fs::path& tarball, const std::string& prefix) {
    archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    REQUIRE(archive_write_open_filename(a, tarball.c_str()) == ARCHIVE_OK);
    auto add = [&](const std::string& name, const std::string& data) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
        REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
        archive_write_data(a, data.data(), data.size());
        archive_entry_free(e);
    };
    archive_entry* folder = archive_entry_new();   // a folder entry, as tar writes them
    archive_entry_set_pathname(folder, (prefix + "/pos/").c_str());
    archive_entry_set_filetype(folder, AE_IFDIR);
    archive_entry_set_perm(folder, 0755);
    REQUIRE(archive_write_header(a, folder) == ARCHIVE_OK);
    archive_entry_free(folder);
    add("aclImdb/README", "not a review");
    add("aclImdb/test/pos/99_9.txt", "a test review, outside the train folder");
    for (const auto& item : fs::recursive_directory_iterator(kFolder))
        if (item.is_regular_file())
            add(prefix + "/" + item.path().lexically_relative(kFolder).generic_string(), read_text(item.path()));
    archive_write_close(a);
    archive_write_free(a);
    return tarball;
}

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("kerascpp_text_dataset_" + std::to_string(getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("the files in Keras's order with labels from the sorted sub-folders") {
    const auto ds = utils::text_dataset_from_directory(kFolder, quiet({.shuffle = false}));
    CHECK(ds.class_names == kAllClasses);
    CHECK(ds.label_mode == "int");
    check_dataset(ds, kUnshuffled);   // .TXT counts, notes.md, README.txt and .hidden/ do not
}

TEST_CASE("class_names restricts and orders the classes; the seeded shuffle is numpy's, as Keras's") {
    const auto ds = utils::text_dataset_from_directory(kFolder, quiet({.class_names = {"pos", "neg"}, .seed = 1337}));
    CHECK(ds.class_names == std::vector<std::string>{"pos", "neg"});
    check_dataset(ds, kPosNegSeed1337);
    check_dataset(utils::text_dataset_from_directory(kFolder, quiet({.seed = 42})), kSeed42);
}

TEST_CASE("validation_split: the last files after the shuffle are the validation subset") {
    const utils::TextDatasetOptions split = {.seed = 42, .validation_split = 0.3};
    auto training = split, validation = split;
    training.subset = "training";
    validation.subset = "validation";
    check_dataset(utils::text_dataset_from_directory(kFolder, quiet(training)), kSeed42Training);
    check_dataset(utils::text_dataset_from_directory(kFolder, quiet(validation)), kSeed42Validation);

    std::pair<utils::TextDataset, utils::TextDataset> both;
    const std::string printed =
        captured(std::cout, [&] { both = utils::text_dataset_split_from_directory(kFolder, split); });
    check_dataset(both.first, kSeed42Training);
    check_dataset(both.second, kSeed42Validation);
    CHECK(both.second.class_names == kAllClasses);
    CHECK(printed == "Found 9 files belonging to 3 classes.\nUsing 7 files for training.\nUsing 2 files for validation.\n");
}

TEST_CASE("label_mode none: every .txt file under the folder, no classes") {
    const auto ds = utils::text_dataset_from_directory(kFolder, quiet({.label_mode = "none", .seed = 7}));
    CHECK(ds.labels.empty());
    CHECK(ds.class_names.empty());
    REQUIRE(ds.texts.size() == kUnlabelledSeed7.size());
    for (size_t i = 0; i < ds.texts.size(); ++i) CHECK(ds.texts[i] == read_text(kFolder / kUnlabelledSeed7[i]));
    CHECK(message_of<ValueError>([&] { (void)ds.label_tensor(); }).find("has no labels") != std::string::npos);
}

TEST_CASE("max_length keeps that many characters, not bytes") {
    const auto ds = utils::text_dataset_from_directory(kFolder, quiet({.max_length = 4, .shuffle = false}));
    CHECK(ds.texts[5] == "Café");   // pos/2_10.txt: "Café crème: très bon."
    CHECK(ds.texts[0] == "Dull");
    const auto none = utils::text_dataset_from_directory(kFolder, quiet({.max_length = 0, .shuffle = false}));
    CHECK(none.texts[0].empty());
}

TEST_CASE("label tensors as Keras's label modes yield them") {
    const auto ints = utils::text_dataset_from_directory(kFolder, quiet({.shuffle = false})).label_tensor();
    CHECK(ints.dtype() == DType::int32);
    CHECK(ints.shape() == Shape{9});
    CHECK(ints.to_vector<int32_t>() == std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1, 2, 2});

    const auto binary = utils::text_dataset_from_directory(
        kFolder, quiet({.label_mode = "binary", .class_names = {"pos", "neg"}, .shuffle = false}));
    const Tensor y = binary.label_tensor();
    CHECK(y.shape() == Shape{7, 1});
    CHECK(y.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 1, 1, 1});

    const Tensor one_hot =
        utils::text_dataset_from_directory(kFolder, quiet({.label_mode = "categorical", .shuffle = false})).label_tensor();
    CHECK(one_hot.shape() == Shape{9, 3});
    CHECK(one_hot.to_vector<float>()[8 * 3 + 2] == 1.0f);
}

TEST_CASE("an aclImdb-shaped .tar.gz gives what the folder gives") {
    TempDir dir;
    const fs::path tarball = make_tarball(dir.path / "aclImdb_v1.tar.gz", "aclImdb/train");
    const utils::TextDatasetOptions options = {.seed = 42, .archive_directory = "aclImdb/train"};
    check_dataset(utils::text_dataset_from_directory(tarball, quiet(options)), kSeed42);

    auto pos_neg = options;
    pos_neg.class_names = {"pos", "neg"};
    pos_neg.seed = 1337;
    check_dataset(utils::text_dataset_from_directory(tarball, quiet(pos_neg)), kPosNegSeed1337);

    auto split = options;
    split.validation_split = 0.3;
    const auto [training, validation] = utils::text_dataset_split_from_directory(tarball, quiet(split));
    check_dataset(training, kSeed42Training);
    check_dataset(validation, kSeed42Validation);

    auto unlabelled = options;
    unlabelled.label_mode = "none";
    unlabelled.seed = 7;
    const auto texts = utils::text_dataset_from_directory(tarball, quiet(unlabelled)).texts;
    REQUIRE(texts.size() == kUnlabelledSeed7.size());
    for (size_t i = 0; i < texts.size(); ++i) CHECK(texts[i] == read_text(kFolder / kUnlabelledSeed7[i]));

    // The whole archive: its top folder "aclImdb" is the only class.
    const auto whole = utils::text_dataset_from_directory(tarball, quiet({.shuffle = false}));
    CHECK(whole.class_names == std::vector<std::string>{"aclImdb"});
    CHECK(whole.texts.size() == 12);   // 11 .txt files + test/pos/99_9.txt
}

TEST_CASE("links to folders: a linked class folder is a class, links inside one are followed only with follow_links") {
    TempDir dir;
    fs::create_directories(dir.path / "data" / "neg");
    fs::copy(kFolder / "neg", dir.path / "data" / "neg");
    fs::create_directory_symlink(kFolder / "pos", dir.path / "data" / "pos");            // a class, as os.path.isdir
    fs::create_directory_symlink(kFolder / "unsup", dir.path / "data" / "neg" / "more");  // inside a class
    const auto plain = utils::text_dataset_from_directory(dir.path / "data", quiet({.shuffle = false}));
    CHECK(plain.class_names == std::vector<std::string>{"neg", "pos"});
    check_dataset(plain, Files(kUnshuffled.begin(), kUnshuffled.begin() + 7));
    const auto followed =
        utils::text_dataset_from_directory(dir.path / "data", quiet({.shuffle = false, .follow_links = true}));
    CHECK(followed.texts.size() == 9);
    CHECK(followed.texts[3] == read_text(kFolder / "unsup" / "6_0.txt"));   // neg/more/6_0.txt after neg's own files
}

TEST_CASE("archive member names with ./ and folder entries") {
    TempDir dir;
    const fs::path tarball = make_tarball(dir.path / "dot.tar.gz", "./aclImdb/train");
    check_dataset(utils::text_dataset_from_directory(tarball, quiet({.seed = 42, .archive_directory = "aclImdb/train/"})),
                  kSeed42);
}

TEST_CASE("Keras's errors for bad arguments and folders without files") {
    auto error = [](const fs::path& path, utils::TextDatasetOptions options) {
        return message_of<ValueError>([&] { (void)utils::text_dataset_from_directory(path, quiet(options)); });
    };
    auto has = [](const std::string& message, const std::string& part) {
        INFO(message);
        CHECK(message.find(part) != std::string::npos);
    };
    has(error(kFolder / "missing", {}), "missing does not exist");
    has(error(kFolder / "pos" / "more", {}), "No text files found in directory");   // no class sub-folders
    has(error(kFolder, {.label_mode = "sparse"}), "`label_mode` argument must be one of");
    has(error(kFolder, {.seed = 1, .validation_split = 1.5, .subset = "training"}),
        "`validation_split` must be between 0 and 1, received: 1.5");
    has(error(kFolder, {.seed = 1, .subset = "training"}), "If `subset` is set, `validation_split` must be set");
    has(error(kFolder, {.seed = 1, .validation_split = 0.2}), "If `subset` is set, `validation_split` must be set");
    has(error(kFolder, {.seed = 1, .validation_split = 0.2, .subset = "test"}), "`subset` must be either");
    has(error(kFolder, {.validation_split = 0.2, .subset = "training"}), "you must provide a `seed` argument");
    has(error(kFolder, {.seed = 1, .validation_split = 0.2, .subset = "both"}), "text_dataset_split_from_directory");
    has(error(kFolder, {.seed = 1, .validation_split = 0.05, .subset = "training"}), "leaves no file for validation");
    has(error(kFolder, {.class_names = {"pos", "bad"}}), "Expected: [neg, pos, unsup] (or a subset of it)");
    has(error(kFolder, {.label_mode = "binary"}), "there must be exactly 2 class_names");
    has(error(kFolder, {.label_mode = "none", .class_names = {"pos"}}), "`class_names` cannot be specified");
    has(error(kFolder, {.max_length = -1}), "`max_length` must be >= 0");
    has(error(kFolder, {.archive_directory = "aclImdb/train"}), "is for an archive");

    TempDir dir;
    const fs::path tarball = make_tarball(dir.path / "t.tar.gz", "aclImdb/train");
    has(error(tarball, {.archive_directory = "aclImdb/dev"}), "the archive has no folder aclImdb/dev");
    std::ofstream(dir.path / "junk.tar.gz") << "not an archive";
    const std::string junk = message_of<RuntimeError>(
        [&] { (void)utils::text_dataset_from_directory(dir.path / "junk.tar.gz", quiet({})); });
    has(junk, "junk.tar.gz: ");
}

TEST_CASE("the real aclImdb tarball: train/pos and train/neg, 12500 each") {
    const char* env = std::getenv("KERASCPP_IMDB_DATA");
    const fs::path tarball = fs::path(env != nullptr ? env : KERASCPP_IMDB_DATA_DIR) / "aclImdb_v1_labeled.tar.gz";
    if (!fs::exists(tarball)) {
        MESSAGE("SKIPPED: no " << tarball << " (set KERASCPP_IMDB_DATA to the folder that holds it)");
        return;
    }
    const auto [training, validation] = utils::text_dataset_split_from_directory(
        tarball, quiet({.class_names = {"neg", "pos"}, .seed = 1337, .validation_split = 0.2,
                        .archive_directory = "aclImdb/train"}));
    CHECK(training.texts.size() == 20000);
    CHECK(validation.texts.size() == 5000);
    int64_t positives = 0;
    for (int32_t y : training.labels) positives += y;
    for (int32_t y : validation.labels) positives += y;
    CHECK(positives == 12500);
}
