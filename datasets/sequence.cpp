#include "keras/utils/sequence.hpp"

#include <algorithm>

#include "keras/errors.hpp"

namespace keras::utils {

namespace {
template <typename Out, typename In>
void write_rows(Tensor& out, const std::vector<std::vector<In>>& sequences, int64_t maxlen, bool pre_pad,
                bool pre_truncate) {
    Out* data = out.data<Out>();
    for (size_t i = 0; i < sequences.size(); ++i) {
        const auto& s = sequences[i];
        const int64_t len = std::min<int64_t>(static_cast<int64_t>(s.size()), maxlen);
        // "pre" truncation keeps the last maxlen items, "post" the first.
        auto begin = pre_truncate ? s.end() - len : s.begin();
        Out* row = data + static_cast<int64_t>(i) * maxlen + (pre_pad ? maxlen - len : 0);
        std::transform(begin, begin + len, row, [](In v) { return static_cast<Out>(v); });
    }
}

// Keras checks the truncating string before the padding string (both only when it meets a non-empty
// sequence); here both are checked up front, truncating first, with Keras's messages.
void check_pad_options(const PadSequencesOptions& options) {
    if (options.truncating != "pre" && options.truncating != "post")
        value_error("Truncating type \"{}\" not understood", options.truncating);
    if (options.padding != "pre" && options.padding != "post")
        value_error("Padding type \"{}\" not understood", options.padding);
    if (options.maxlen && *options.maxlen < 0)
        value_error("pad_sequences: maxlen must be >= 0 (or unset), got {}", *options.maxlen);
}

template <typename In>
int64_t resolve_maxlen(const std::vector<std::vector<In>>& sequences, const PadSequencesOptions& options) {
    if (!options.maxlen) {
        // Keras takes np.max of the lengths, which fails on an empty list.
        if (sequences.empty())
            value_error("pad_sequences: cannot infer maxlen from an empty list of sequences; pass maxlen");
        int64_t longest = 0;
        for (const auto& s : sequences) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
        return longest;
    }
    // Keras's 'pre' truncation is s[-maxlen:], and s[-0:] is the whole sequence, which cannot fit in
    // zero columns: Keras fails there (numpy "could not broadcast"), so this does too, saying why.
    if (*options.maxlen == 0 && options.truncating == "pre")
        for (size_t i = 0; i < sequences.size(); ++i)
            if (!sequences[i].empty())
                value_error("pad_sequences: maxlen=0 with truncating=\"pre\" keeps all {} items of the sequence at "
                            "position {} (Python's s[-0:]); they cannot fit in 0 columns. Use truncating=\"post\"",
                            sequences[i].size(), i);
    return *options.maxlen;
}

template <typename In>
Tensor pad(const std::vector<std::vector<In>>& sequences, const PadSequencesOptions& options) {
    check_pad_options(options);
    const int64_t maxlen = resolve_maxlen(sequences, options);
    Tensor out({static_cast<int64_t>(sequences.size()), maxlen}, options.dtype);
    const bool pre_pad = options.padding == "pre", pre_truncate = options.truncating == "pre";
    switch (options.dtype) {
        case DType::int32:
            std::fill_n(out.data<int32_t>(), out.numel(), static_cast<int32_t>(options.value));
            write_rows<int32_t>(out, sequences, maxlen, pre_pad, pre_truncate);
            break;
        case DType::int64:
            std::fill_n(out.data<int64_t>(), out.numel(), static_cast<int64_t>(options.value));
            write_rows<int64_t>(out, sequences, maxlen, pre_pad, pre_truncate);
            break;
        case DType::float32:
            out.fill(options.value);
            write_rows<float>(out, sequences, maxlen, pre_pad, pre_truncate);
            break;
    }
    return out;
}
}  // namespace

Tensor pad_sequences(const std::vector<std::vector<int64_t>>& sequences, const PadSequencesOptions& options) {
    return pad(sequences, options);
}
Tensor pad_sequences(const std::vector<std::vector<int32_t>>& sequences, const PadSequencesOptions& options) {
    return pad(sequences, options);
}

// Keras 3: labels of any shape (a trailing axis of 1 is dropped) -> shape + (num_classes,), one-hot.
Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes) {
    if (num_classes && *num_classes < 0) value_error("to_categorical: num_classes must be >= 0, got {}", *num_classes);
    // Keras casts the labels to int64 (truncating floats) and treats num_classes 0 like None.
    std::vector<int64_t> ids(static_cast<size_t>(labels.numel()));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(labels.item(static_cast<int64_t>(i)));
    int64_t classes = num_classes.value_or(0);
    if (classes == 0) {
        if (ids.empty()) value_error("to_categorical: cannot infer num_classes from empty labels; pass num_classes");
        classes = *std::max_element(ids.begin(), ids.end()) + 1;
    }
    Shape shape = labels.shape();
    if (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    shape.push_back(classes);
    Tensor out = Tensor::zeros(shape);
    float* p = out.data<float>();
    for (size_t i = 0; i < ids.size(); ++i) {
        // numpy would wrap a negative label around to the last classes; that is never meant, so it is an error.
        if (ids[i] < 0 || ids[i] >= classes)
            value_error("to_categorical: label {} at index {} is outside [0, {}) (num_classes={})", ids[i], i, classes,
                        classes);
        p[static_cast<int64_t>(i) * classes + ids[i]] = 1.0f;
    }
    return out;
}

}  // namespace keras::utils
