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

template <typename In>
Tensor pad(const std::vector<std::vector<In>>& sequences, const PadSequencesOptions& options) {
    if (options.padding != "pre" && options.padding != "post")
        value_error("Padding type \"{}\" not understood", options.padding);
    if (options.truncating != "pre" && options.truncating != "post")
        value_error("Truncating type \"{}\" not understood", options.truncating);
    int64_t maxlen = 0;
    if (options.maxlen) {
        if (*options.maxlen < 0) value_error("pad_sequences: maxlen must be >= 0, got {}", *options.maxlen);
        maxlen = *options.maxlen;
    } else {
        for (const auto& s : sequences) maxlen = std::max<int64_t>(maxlen, static_cast<int64_t>(s.size()));
    }
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

Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes) {
    int64_t classes = num_classes.value_or(0);
    if (!num_classes)
        for (int64_t i = 0; i < labels.numel(); ++i) classes = std::max<int64_t>(classes, static_cast<int64_t>(labels.item(i)) + 1);
    Tensor out = Tensor::zeros({labels.numel(), classes});
    float* p = out.data<float>();
    for (int64_t i = 0; i < labels.numel(); ++i) {
        const auto c = static_cast<int64_t>(labels.item(i));
        if (c < 0 || c >= classes)
            value_error("to_categorical: label {} at index {} is outside [0, {})", c, i, classes);
        p[i * classes + c] = 1.0f;
    }
    return out;
}

}  // namespace keras::utils
