#include "imdb/raw_reviews.hpp"

#include <algorithm>

#include "io/npy.hpp"
#include "io/zip_archive.hpp"
#include "keras/errors.hpp"

namespace keras::datasets::imdb {

namespace {

// A .npy header is at most 64 KiB (numpy's own limit is 10 KB): reading this much of a member is
// enough to know what it declares.
constexpr size_t kNpyHeaderBytes = (size_t{1} << 16) + 16;
// An object array's pickled size is not in its header. Pickled word ids compress about 1.6:1 (imdb.npz);
// beyond 32:1 a member is a decompression bomb, not data. Small members are always allowed.
constexpr uint64_t kMaxObjectArrayRatio = 32;
constexpr uint64_t kAlwaysAllowedBytes = uint64_t{64} << 20;

// A .npy member's bytes, inflated no further than its header says it can be: its first bytes are
// checked first, so a bomb of zeros (no .npy magic) stops after 64 KiB.
std::string read_npy_member(const io::ZipArchive& zip, const std::string& name, const std::string& where) {
    const io::npy::Header header = io::npy::parse_header(zip.read_prefix(name, kNpyHeaderBytes), where);
    const std::optional<uint64_t> declared = io::npy::declared_file_size(header, where);
    const uint64_t limit = declared ? *declared
                                    : std::max(kAlwaysAllowedBytes, zip.compressed_size(name) * kMaxObjectArrayRatio);
    return zip.read(name, limit);
}

RawSplit read_split(const io::ZipArchive& zip, const std::filesystem::path& path, const std::string& split) {
    const std::string x_name = "x_" + split + ".npy", y_name = "y_" + split + ".npy";
    RawSplit out;
    out.x = io::npy::read_int_list_array(read_npy_member(zip, x_name, path.string() + ":" + x_name),
                                              path.string() + ":" + x_name);
    const io::npy::IntArray y = io::npy::read_int_array(read_npy_member(zip, y_name, path.string() + ":" + y_name),
                                                              path.string() + ":" + y_name);
    if (y.shape.size() != 1 || y.values.size() != out.x.size())
        runtime_error("{}: {} has {} labels for {} reviews in {}", path.string(), y_name, y.values.size(), out.x.size(),
                      x_name);
    out.y = y.values;
    return out;
}
}  // namespace

std::pair<RawSplit, RawSplit> read_npz(const std::filesystem::path& path) {
    const io::ZipArchive zip(path);
    RawSplit train = read_split(zip, path, "train");
    RawSplit test = read_split(zip, path, "test");
    return {std::move(train), std::move(test)};
}

}  // namespace keras::datasets::imdb
