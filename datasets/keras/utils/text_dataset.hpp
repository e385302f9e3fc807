// keras.utils.text_dataset_from_directory: the .txt files of a folder (or of a folder inside a tar
// archive such as aclImdb_v1.tar.gz) as texts with labels inferred from the class sub-folders.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keras/tensor.hpp"

namespace keras::utils {

// text_dataset_from_directory's keyword arguments.
struct KERAS_API TextDatasetOptions {
    // "int" (class index), "binary" (exactly 2 classes), "categorical" (one-hot) or "none" (texts
    // only, Keras's label_mode=None or labels=None: every .txt file under the folder, no classes).
    std::string label_mode = "int";
    // Empty: every sub-folder not starting with '.', sorted. Else these classes in this order; other
    // sub-folders (aclImdb/train's "unsup") are left out.
    std::vector<std::string> class_names = {};
    // Keep at most this many characters (UTF-8 code points) of each text.
    std::optional<int64_t> max_length = std::nullopt;
    bool shuffle = true;
    // The shuffle's seed (numpy RandomState, as Keras); none: a random one. Needed with validation_split.
    std::optional<uint32_t> seed = std::nullopt;
    double validation_split = 0.0;   // 0: no split; else in (0, 1)
    // "training" or "validation" with validation_split; "both": text_dataset_split_from_directory.
    std::string subset = "";
    bool follow_links = false;       // descend into symbolic links to folders
    // When `directory` is an archive (.tar.gz, .tar, ...): the folder inside it, e.g. "aclImdb/train".
    std::string archive_directory = "";
    bool verbose = true;             // Keras's "Found N files belonging to K classes." lines
};

// The texts, their labels and the class names text_dataset_from_directory found.
struct KERAS_API TextDataset {
    std::vector<std::string> texts = {};
    std::vector<int32_t> labels = {};            // class index of each text; empty for label_mode "none"
    std::vector<std::string> class_names = {};   // empty for label_mode "none"
    std::string label_mode = "int";

    // The labels as Keras's dataset yields them: int32 (n,) for "int", float32 (n, 1) for "binary",
    // float32 one-hot (n, classes) for "categorical". A ValueError for "none".
    Tensor label_tensor() const;
};

// The files of `directory` in Keras's order: class by class, each class's files sorted by folder then
// name, then (shuffle) permuted by numpy's RandomState(seed), then the last validation_split of them
// are the validation subset. Errors (keras::ValueError, Keras's messages where it has them): missing
// folder, no files, unknown class_names, bad label_mode / validation_split / subset, a split
// without a seed while shuffling.
KERAS_API TextDataset text_dataset_from_directory(const std::filesystem::path& directory,
                                                  const TextDatasetOptions& options = {});

// Keras's subset="both": {training, validation} from one indexing and one shuffle. options.subset
// must be "both" or empty; validation_split is required.
KERAS_API std::pair<TextDataset, TextDataset> text_dataset_split_from_directory(
    const std::filesystem::path& directory, const TextDatasetOptions& options);

}  // namespace keras::utils
