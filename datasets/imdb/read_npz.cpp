#include "imdb/raw_reviews.hpp"

#include "io/npy.hpp"
#include "io/zip_archive.hpp"
#include "keras/errors.hpp"

namespace keras::datasets::imdb {

namespace {
RawSplit read_split(const io::ZipArchive& zip, const std::filesystem::path& path, const std::string& split) {
    const std::string x_name = "x_" + split + ".npy", y_name = "y_" + split + ".npy";
    RawSplit out;
    out.x = io::npy::read_int_list_array(zip.read(x_name), path.string() + ":" + x_name);
    const io::npy::IntArray y = io::npy::read_int_array(zip.read(y_name), path.string() + ":" + y_name);
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
