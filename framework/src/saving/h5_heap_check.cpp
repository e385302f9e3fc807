#include "saving/h5_heap_check.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "keras/errors.hpp"

namespace keras::saving {

namespace {

// The HDF5 file format, "Global Heap": a collection is "GCOL", version 1, three reserved bytes, its
// size (8 bytes, at least 4096), then objects: index (2 bytes), reference count (2), reserved (4),
// size (8), data padded to 8 bytes. Index 0 is the free space, normally the last object. (8-byte lengths:
// what every Keras writer uses.)
constexpr uint64_t kMinCollectionSize = 4096;
constexpr size_t kObjectHeader = 16;

uint64_t le(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}

class FileReader {
public:
    FileReader(const std::string& path) : in_(path, std::ios::binary) {
        in_.seekg(0, std::ios::end);
        size_ = static_cast<uint64_t>(in_.tellg());
    }
    bool ok() const { return static_cast<bool>(in_); }
    uint64_t size() const { return size_; }
    bool read(uint64_t at, char* out, size_t n) {
        if (at > size_ || n > size_ - at) return false;
        in_.seekg(static_cast<std::streamoff>(at));
        in_.read(out, static_cast<std::streamsize>(n));
        return static_cast<bool>(in_);
    }

private:
    std::ifstream in_;
    uint64_t size_ = 0;
};

// What is wrong with the collection at `at`, or nullopt when its objects tile it.
std::optional<std::string> collection_problem(FileReader& file, uint64_t at) {
    char header[16];
    if (!file.read(at, header, sizeof(header))) return "it is cut off by the end of the file";
    const uint64_t size = le(header + 8, 8);
    if (size < kMinCollectionSize || size > file.size() - at)
        return "its size (" + std::to_string(size) + " bytes) does not fit in the file";
    const uint64_t end = at + size;
    std::set<uint64_t> indices;
    for (uint64_t object = at + 16; object + kObjectHeader <= end;) {
        char h[kObjectHeader];
        if (!file.read(object, h, sizeof(h))) return "an object is cut off by the end of the file";
        const uint64_t index = le(h, 2), length = le(h + 8, 8);
        if (index == 0) {
            // libhdf5 1.10.8 walks on past the free space by its size (which counts its own header): a
            // size of 0 makes it loop for ever on the same bytes, so this walk does the same checks.
            if (length == 0) return "its free space has size 0";
            if (length > end - object) return "its free space overruns it";
            object += length;
            continue;
        }
        if (!indices.insert(index).second) return "object " + std::to_string(index) + " appears twice";
        const uint64_t padded = (length + 7) / 8 * 8;
        if (length > end - object || padded > end - object - kObjectHeader)
            return "object " + std::to_string(index) + " (" + std::to_string(length) + " bytes) overruns it";
        object += kObjectHeader + padded;
    }
    return std::nullopt;
}

}  // namespace

void check_global_heaps(const std::string& filepath) {
    FileReader file(filepath);
    std::ifstream scan(filepath, std::ios::binary);
    if (!file.ok() || !scan) return;   // HDF5's own open reports unreadable files
    // "GCOL" followed by version 1 and three zero bytes; found at any offset (chunks overlap by 7 bytes).
    static constexpr std::string_view kSignature("GCOL\x01\x00\x00\x00", 8);
    std::vector<char> buffer(1 << 20);
    uint64_t base = 0;
    for (;;) {
        scan.seekg(static_cast<std::streamoff>(base));
        scan.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        const size_t got = static_cast<size_t>(scan.gcount());
        if (got < kSignature.size()) break;
        const std::string_view chunk(buffer.data(), got);
        for (size_t hit = chunk.find(kSignature); hit != std::string_view::npos; hit = chunk.find(kSignature, hit + 1))
            if (auto problem = collection_problem(file, base + hit))
                value_error("File '{}' is corrupt: the HDF5 global heap collection at byte {} is damaged ({}); "
                            "it is not read, as libhdf5 could hang or crash on it.", filepath, base + hit, *problem);
        if (got < buffer.size()) break;
        base += got - (kSignature.size() - 1);
        scan.clear();
    }
}

}  // namespace keras::saving
