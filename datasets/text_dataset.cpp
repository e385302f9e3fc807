// text_dataset_from_directory after Keras 3 (keras/src/utils/text_dataset_utils.py and
// dataset_utils.py: check_validation_split_arg, index_directory, get_training_or_validation_split).
// The file order and the shuffle are Keras's exactly (numpy's RandomState), so a seed picks the same
// training and validation files as Keras; the extra tf.data buffer shuffle Keras applies to the
// training files afterwards is not reproduced (fit shuffles every epoch anyway).
#include "keras/utils/text_dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <tuple>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string_view>

#include "keras/errors.hpp"
#include "keras/utils/sequence.hpp"
#include "io/tar_archive.hpp"
#include "numpy_random_state.hpp"

namespace keras::utils {

namespace fs = std::filesystem;

namespace {

// One .txt file: its class, where it sorts (folder relative to the class folder, then name) and its
// text (read at once from an archive, after the split from a folder).
struct Entry {
    std::string class_name = "";
    std::string folder = "";
    std::string name = "";
    fs::path file = {};
    std::string text = "";
    bool in_memory = false;   // read from an archive; else read `file` after the split
};

struct Index {
    std::vector<Entry> entries;             // in Keras's order
    std::vector<std::string> class_names;   // empty when unlabelled
};

bool is_text_file(std::string_view name) {
    if (name.size() < 4) return false;
    std::string ext(name.substr(name.size() - 4));
    for (char& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return ext == ".txt";   // Keras: fname.lower().endswith(".txt")
}

// "a, b, c", for the messages (fmt::join trips a false GCC -Wstringop-overflow in fmt 9).
template <typename Names>
std::string join_names(const Names& names) {
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

bool labelled(const TextDatasetOptions& options) { return options.label_mode != "none"; }

void check_options(const TextDatasetOptions& o) {
    static const std::set<std::string> modes = {"int", "categorical", "binary", "none"};
    if (!modes.contains(o.label_mode))
        value_error("`label_mode` argument must be one of \"int\", \"categorical\", \"binary\", or \"none\". "
                    "Received: label_mode={}", o.label_mode);
    if (!labelled(o) && !o.class_names.empty())
        value_error("When `label_mode=\"none\"` (no labels), argument `class_names` cannot be specified.");
    const double split = o.validation_split;
    if (split != 0.0 && !(split > 0.0 && split < 1.0))
        value_error("`validation_split` must be between 0 and 1, received: {}", split);
    if ((split != 0.0) != !o.subset.empty())
        value_error("If `subset` is set, `validation_split` must be set, and inversely.");
    if (!o.subset.empty() && o.subset != "training" && o.subset != "validation" && o.subset != "both")
        value_error("`subset` must be either \"training\", \"validation\" or \"both\", received: {}", o.subset);
    if (split != 0.0 && o.shuffle && !o.seed)
        value_error("If using `validation_split` and shuffling the data, you must provide a `seed` argument, to "
                    "make sure that there is no overlap between the training and validation subset.");
    if (o.max_length && *o.max_length < 0) value_error("`max_length` must be >= 0, received: {}", *o.max_length);
}

// The classes in Keras's order: every non-hidden sub-folder sorted, or class_names (a subset, in its order).
std::vector<std::string> choose_classes(const std::set<std::string>& folders, const TextDatasetOptions& o) {
    if (o.class_names.empty()) return {folders.begin(), folders.end()};
    for (const std::string& name : o.class_names)
        if (!folders.contains(name))
            value_error("The `class_names` passed did not match the names of the subdirectories of the target "
                        "directory. Expected: [{}] (or a subset of it), but received: class_names=[{}]",
                        join_names(folders), join_names(o.class_names));
    return o.class_names;
}

// Class by class in `classes` order, each class's files sorted by folder, then name (os.walk sorted by
// root, files sorted), as Keras indexes them.
Index order_entries(std::vector<Entry> entries, std::vector<std::string> classes) {
    std::map<std::string, size_t> rank;
    for (size_t i = 0; i < classes.size(); ++i) rank[classes[i]] = i;
    std::erase_if(entries, [&](const Entry& e) { return !rank.contains(e.class_name); });
    std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
        return std::tie(rank[a.class_name], a.folder, a.name) < std::tie(rank[b.class_name], b.folder, b.name);
    });
    return {std::move(entries), std::move(classes)};
}

// ---- a folder on disk ----

void index_folder_files(const fs::path& class_dir, const std::string& class_name, bool follow_links,
                        std::vector<Entry>& out) {
    const auto walk = follow_links ? fs::directory_options::follow_directory_symlink : fs::directory_options::none;
    for (const auto& item : fs::recursive_directory_iterator(class_dir, walk)) {
        const std::string name = item.path().filename().string();
        if (!item.is_regular_file() || !is_text_file(name)) continue;
        const std::string folder = item.path().parent_path().lexically_relative(class_dir).generic_string();
        out.push_back({class_name, folder, name, item.path(), ""});
    }
}

Index index_folder(const fs::path& directory, const TextDatasetOptions& o) {
    if (!labelled(o)) {
        std::vector<Entry> entries;
        index_folder_files(directory, "", o.follow_links, entries);
        return {order_entries(std::move(entries), {""}).entries, {}};
    }
    std::set<std::string> folders;
    for (const auto& item : fs::directory_iterator(directory)) {
        const std::string name = item.path().filename().string();
        if (item.is_directory() && !name.starts_with(".")) folders.insert(name);
    }
    std::vector<std::string> classes = choose_classes(folders, o);
    std::vector<Entry> entries;
    for (const std::string& name : classes) index_folder_files(directory / name, name, o.follow_links, entries);
    return order_entries(std::move(entries), std::move(classes));
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) runtime_error("text_dataset_from_directory: cannot open {}", path.string());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) runtime_error("text_dataset_from_directory: cannot read {}", path.string());
    return text;
}

// ---- a tar archive ----

// One text read from an archive is refused beyond this (a small .tar.gz can inflate to gigabytes);
// files in a folder are read whole, as Keras does.
constexpr uint64_t kMaxArchiveTextBytes = uint64_t{1} << 28;

// "./aclImdb/train/" -> "aclImdb/train"
std::string clean_member(std::string path) {
    while (path.starts_with("./")) path.erase(0, 2);
    while (path.starts_with("/")) path.erase(0, 1);
    while (path.ends_with("/")) path.pop_back();
    return path;
}

// A member at `rel` under the archive's root: its class ("" when unlabelled), its folder inside the
// class and its name. None: part of no class (a file directly under the root, a hidden class).
std::optional<Entry> place_member(const std::string& rel, bool is_dir, bool labelled) {
    const size_t slash = rel.find('/');
    if (!labelled) return Entry{"", fs::path(rel).parent_path().generic_string(), fs::path(rel).filename().string()};
    if (slash == std::string::npos && !is_dir) return std::nullopt;   // as Keras, which indexes sub-folders only
    const std::string class_name = rel.substr(0, slash);
    if (class_name.empty() || class_name.starts_with(".")) return std::nullopt;   // "root//x", hidden folders
    const fs::path in_class = slash == std::string::npos ? fs::path() : fs::path(rel.substr(slash + 1));
    return Entry{class_name, in_class.parent_path().generic_string(), in_class.filename().string()};
}

// One pass over the archive: the classes are the first path components under archive_directory
// (folder entries or not); only the regular .txt files of the wanted classes are read. Links are not
// followed (an archive's links point at other members, indexed as themselves when under the root).
Index index_archive(const fs::path& tarball, const TextDatasetOptions& o) {
    io::TarArchive archive(tarball);
    const std::string root = clean_member(o.archive_directory);
    const std::set<std::string> wanted(o.class_names.begin(), o.class_names.end());
    std::set<std::string> folders;
    std::vector<Entry> entries;
    bool root_seen = root.empty();
    while (archive.next()) {
        const std::string path = clean_member(archive.path());
        if (path.empty() || (!root.empty() && path != root && !path.starts_with(root + "/"))) continue;
        root_seen = true;
        if (path == root) continue;
        const std::string rel = root.empty() ? path : path.substr(root.size() + 1);
        std::optional<Entry> entry = place_member(rel, archive.is_folder(), labelled(o));
        if (!entry) continue;
        if (labelled(o)) folders.insert(entry->class_name);
        if (!archive.is_file() || !is_text_file(entry->name)) continue;
        if (!wanted.empty() && !wanted.contains(entry->class_name)) continue;
        entry->file = tarball / path;
        entry->text = archive.read(kMaxArchiveTextBytes);
        entry->in_memory = true;
        entries.push_back(std::move(*entry));
    }
    if (!root_seen) value_error("{}: the archive has no folder {} (archive_directory)", tarball.string(), root);
    if (!labelled(o)) return {order_entries(std::move(entries), {""}).entries, {}};
    return order_entries(std::move(entries), choose_classes(folders, o));
}

// ---- after indexing ----

// Keras's get_training_or_validation_split: the last int(split * n) files are the validation ones.
std::vector<Entry> take_subset(std::vector<Entry> entries, double split, const std::string& subset) {
    if (split == 0.0) return entries;
    const auto n = static_cast<int64_t>(entries.size());
    const auto num_val = static_cast<int64_t>(split * static_cast<double>(n));
    // Keras's samples[:-0] / samples[-0:] would give no training files / all files as validation.
    if (num_val == 0)
        value_error("validation_split={} of {} files leaves no file for validation", split, n);
    if (subset == "training") entries.resize(static_cast<size_t>(n - num_val));
    else entries.erase(entries.begin(), entries.end() - num_val);
    return entries;
}

// The first max_length code points of a UTF-8 text (a byte that is not a continuation byte starts one).
void truncate(std::string& text, int64_t max_length) {
    int64_t count = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
        if (count++ == max_length) {
            text.resize(i);
            return;
        }
    }
}

TextDataset make_dataset(std::vector<Entry> entries, const Index& index, const TextDatasetOptions& o,
                         const fs::path& directory, const std::string& subset) {
    if (entries.empty())
        value_error("No {}text files found in directory {}. Allowed format: .txt",
                    subset.empty() ? "" : subset + " ", directory.string());
    if (!subset.empty() && o.verbose) std::cout << fmt::format("Using {} files for {}.\n", entries.size(), subset);
    TextDataset out{.label_mode = o.label_mode};
    if (labelled(o)) out.class_names = index.class_names;
    std::map<std::string, int32_t> label_of;
    for (size_t i = 0; i < index.class_names.size(); ++i) label_of[index.class_names[i]] = static_cast<int32_t>(i);
    for (Entry& e : entries) {
        std::string text = e.in_memory ? std::move(e.text) : read_file(e.file);
        if (o.max_length) truncate(text, *o.max_length);
        out.texts.push_back(std::move(text));
        if (labelled(o)) out.labels.push_back(label_of.at(e.class_name));
    }
    return out;
}

Index index_and_shuffle(const fs::path& directory, const TextDatasetOptions& o) {
    check_options(o);
    if (!fs::exists(directory)) value_error("text_dataset_from_directory: {} does not exist", directory.string());
    if (!o.archive_directory.empty() && fs::is_directory(directory))
        value_error("archive_directory=\"{}\" is for an archive, but {} is a folder", o.archive_directory,
                    directory.string());
    Index index;
    try {
        index = fs::is_directory(directory) ? index_folder(directory, o) : index_archive(directory, o);
    } catch (const fs::filesystem_error& e) {
        runtime_error("text_dataset_from_directory: cannot list {}: {}", directory.string(), e.what());
    }
    if (labelled(o) && o.label_mode == "binary" && index.class_names.size() != 2)
        value_error("When passing `label_mode=\"binary\"`, there must be exactly 2 class_names. Received: "
                    "class_names=[{}]", join_names(index.class_names));
    if (o.verbose) {
        if (labelled(o)) std::cout << fmt::format("Found {} files belonging to {} classes.\n", index.entries.size(), index.class_names.size());
        else std::cout << fmt::format("Found {} files.\n", index.entries.size());
    }
    if (o.shuffle) {
        // Keras shuffles the paths and the labels with two RandomState(seed): one permutation.
        const uint32_t seed = o.seed ? *o.seed : std::random_device{}() % 1000000;
        std::vector<int64_t> order(index.entries.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
        datasets::NumpyRandomState(seed).shuffle(order);
        std::vector<Entry> shuffled;
        shuffled.reserve(order.size());
        for (int64_t i : order) shuffled.push_back(std::move(index.entries[static_cast<size_t>(i)]));
        index.entries = std::move(shuffled);
    }
    return index;
}

}  // namespace

Tensor TextDataset::label_tensor() const {
    const auto n = static_cast<int64_t>(labels.size());
    if (label_mode == "int") {
        Tensor out({n}, DType::int32);
        std::copy(labels.begin(), labels.end(), out.data<int32_t>());
        return out;
    }
    if (label_mode == "binary") {
        Tensor out({n, 1}, DType::float32);
        std::transform(labels.begin(), labels.end(), out.data<float>(), [](int32_t y) { return static_cast<float>(y); });
        return out;
    }
    if (label_mode == "categorical") {
        Tensor ids({n}, DType::int32);
        std::copy(labels.begin(), labels.end(), ids.data<int32_t>());
        return to_categorical(ids, static_cast<int64_t>(class_names.size()));
    }
    value_error("label_tensor: a dataset with label_mode=\"{}\" has no labels", label_mode);
}

TextDataset text_dataset_from_directory(const fs::path& directory, const TextDatasetOptions& options) {
    if (options.subset == "both")
        value_error("subset=\"both\" gives two datasets: call text_dataset_split_from_directory");
    Index index = index_and_shuffle(directory, options);
    std::vector<Entry> entries = take_subset(std::move(index.entries), options.validation_split, options.subset);
    return make_dataset(std::move(entries), index, options, directory, options.subset);
}

std::pair<TextDataset, TextDataset> text_dataset_split_from_directory(const fs::path& directory,
                                                                      const TextDatasetOptions& options) {
    if (!options.subset.empty() && options.subset != "both")
        value_error("text_dataset_split_from_directory gives both subsets; received subset=\"{}\"", options.subset);
    TextDatasetOptions both = options;
    both.subset = "both";
    if (both.validation_split == 0.0)
        value_error("text_dataset_split_from_directory needs a validation_split in (0, 1)");
    Index index = index_and_shuffle(directory, both);
    std::vector<Entry> entries = std::move(index.entries);
    TextDataset training = make_dataset(take_subset(entries, both.validation_split, "training"), index, both,
                                        directory, "training");
    TextDataset validation = make_dataset(take_subset(std::move(entries), both.validation_split, "validation"),
                                          index, both, directory, "validation");
    return {std::move(training), std::move(validation)};
}

}  // namespace keras::utils
