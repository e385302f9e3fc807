#include "saving/h5_file.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "keras/errors.hpp"
#include "keras/tensor.hpp"
#include "saving/h5_heap_check.hpp"

namespace keras::saving {

namespace {

// The innermost message of HDF5's error stack ("truncated file: eof = ..."), for our messages.
std::string hdf5_error_detail() {
    std::string detail;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD,
             [](unsigned n, const H5E_error2_t* err, void* out) -> herr_t {
                 if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
                 return 0;
             },
             &detail);
    H5Eclear2(H5E_DEFAULT);
    return detail.empty() ? std::string("unknown HDF5 error") : detail;
}

template <typename F> H5Handle checked(hid_t id, F&& describe) {
    if (id < 0) {
        const std::string detail = hdf5_error_detail();
        runtime_error("{} ({})", describe(), detail);
    }
    return H5Handle(id);
}

void check_status(herr_t status, const std::string& what) {
    if (status < 0) runtime_error("{} ({})", what, hdf5_error_detail());
}

std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        const size_t slash = path.find('/', start);
        const size_t end = slash == std::string::npos ? path.size() : slash;
        if (end > start) parts.push_back(path.substr(start, end - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return parts;
}

// Number of elements of a scalar or simple dataspace.
hsize_t element_count(hid_t space) {
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    return n < 0 ? 0 : static_cast<hsize_t>(n);
}

}  // namespace

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

H5Handle& H5Handle::operator=(H5Handle&& other) noexcept {
    if (this != &other) {
        close();
        id_ = other.id_;
        other.id_ = H5I_INVALID_HID;
    }
    return *this;
}

void H5Handle::close() {
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
        case H5I_FILE: H5Fclose(id_); break;
        case H5I_GROUP: H5Gclose(id_); break;
        case H5I_DATASET: H5Dclose(id_); break;
        case H5I_ATTR: H5Aclose(id_); break;
        case H5I_DATATYPE: H5Tclose(id_); break;
        case H5I_DATASPACE: H5Sclose(id_); break;
        case H5I_GENPROP_LST: H5Pclose(id_); break;
        default: break;
    }
    id_ = H5I_INVALID_HID;
}

std::string H5Group::where(const std::string& name) const {
    std::string path = path_;
    if (!name.empty()) path = (path == "/" ? "/" : path + "/") + name;
    return fmt::format("'{}' in file '{}'", path, file_);
}

namespace {

// The type of the object at `name` (H5O_INFO_BASIC: nothing else is read). HDF5 1.12 changed the
// info struct and the call; both forms are here so kerascpp also builds against a newer libhdf5
// (scripts/build_hdf5.sh), which fixes faults of Debian 12's 1.10.8 (docs/security.md).
H5O_type_t object_type(hid_t loc, const std::string& name) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info_by_name3(loc, name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
#else
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
#endif
    return info.type;
}

}  // namespace

bool H5Group::has_group(const std::string& name) const {
    if (H5Lexists(id(), name.c_str(), H5P_DEFAULT) <= 0) return false;
    return object_type(id(), name) == H5O_TYPE_GROUP;
}

H5Group H5Group::group(const std::string& name) const {
    if (!has_group(name)) value_error("Group {} is missing.", where(name));
    H5Handle h = checked(H5Gopen2(id(), name.c_str(), H5P_DEFAULT),
                         [&] { return fmt::format("Cannot open group {}", where(name)); });
    return H5Group(std::move(h), file_, (path_ == "/" ? "/" : path_ + "/") + name);
}

H5Group H5Group::create_group(const std::string& name) const {
    H5Handle h = checked(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         [&] { return fmt::format("Cannot create group {}", where(name)); });
    return H5Group(std::move(h), file_, (path_ == "/" ? "/" : path_ + "/") + name);
}

bool H5Group::has_attr(const std::string& name) const { return H5Aexists(id(), name.c_str()) > 0; }

namespace {

// A variable-length string takes at least this many bytes of the file (its descriptor: length, heap
// address, index); a fixed-length one its size.
constexpr uint64_t kVariableStringBytes = 16;

// Reads every string of a string attribute (scalar -> one string). A count of strings the file cannot
// hold is refused before anything is allocated or read.
std::vector<std::string> read_strings(hid_t attr, const std::string& what, const std::string& file) {
    H5Handle type(H5Aget_type(attr));
    H5Handle space(H5Aget_space(attr));
    if (!type.valid() || !space.valid()) runtime_error("Cannot read attribute {} ({})", what, hdf5_error_detail());
    const hsize_t n = element_count(space.get());
    std::error_code ec;
    const uint64_t file_bytes = std::filesystem::file_size(file, ec);
    const uint64_t per_string = H5Tis_variable_str(type.get()) > 0 ? kVariableStringBytes
                                                                   : std::max<size_t>(H5Tget_size(type.get()), 1);
    if (!ec && n > file_bytes / per_string)
        value_error("Attribute {} declares {} strings, more than the file ({} bytes) can hold: the file is corrupt.",
                    what, n, file_bytes);
    if (H5Tget_class(type.get()) != H5T_STRING) {
        if (n == 0) return {};   // Keras writes an empty list as an empty float64 array
        value_error("Attribute {} is not a string (HDF5 type class {}).", what,
                    static_cast<int>(H5Tget_class(type.get())));
    }
    H5Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<std::string> out;
    if (H5Tis_variable_str(type.get()) > 0) {
        H5Tset_size(mem.get(), H5T_VARIABLE);
        std::vector<char*> ptrs(n, nullptr);
        if (n > 0) check_status(H5Aread(attr, mem.get(), ptrs.data()), "Cannot read attribute " + what);
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        if (n > 0) H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
        return out;
    }
    const size_t size = H5Tget_size(type.get());
    H5Tset_size(mem.get(), size);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buffer(size * n);
    if (n > 0) check_status(H5Aread(attr, mem.get(), buffer.data()), "Cannot read attribute " + what);
    for (hsize_t i = 0; i < n; ++i) {
        const char* p = buffer.data() + i * size;
        out.emplace_back(p, strnlen(p, size));
    }
    return out;
}

}  // namespace

std::string H5Group::string_attr(const std::string& name) const {
    if (!has_attr(name)) value_error("Attribute '{}' of {} is missing.", name, where());
    H5Handle attr(H5Aopen(id(), name.c_str(), H5P_DEFAULT));
    const std::string what = fmt::format("'{}' of {}", name, where());
    if (!attr.valid()) runtime_error("Cannot open attribute {} ({})", what, hdf5_error_detail());
    auto strings = read_strings(attr.get(), what, file_);
    if (strings.size() != 1)
        value_error("Attribute {} should hold one string, found {}.", what, strings.size());
    return strings[0];
}

bool H5Group::has_string_array_attr(const std::string& name) const {
    return has_attr(name) || has_attr(name + "0");
}

std::vector<std::string> H5Group::string_array_attr(const std::string& name) const {
    auto read_one = [&](const std::string& attr_name) {
        H5Handle attr(H5Aopen(id(), attr_name.c_str(), H5P_DEFAULT));
        const std::string what = fmt::format("'{}' of {}", attr_name, where());
        if (!attr.valid()) runtime_error("Cannot open attribute {} ({})", what, hdf5_error_detail());
        return read_strings(attr.get(), what, file_);
    };
    if (has_attr(name)) return read_one(name);
    if (!has_attr(name + "0")) value_error("Attribute '{}' of {} is missing.", name, where());
    std::vector<std::string> all;
    for (int chunk = 0; has_attr(name + std::to_string(chunk)); ++chunk) {
        auto part = read_one(name + std::to_string(chunk));
        all.insert(all.end(), part.begin(), part.end());
    }
    return all;
}

void H5Group::write_string_attr(const std::string& name, const std::string& value) const {
    H5Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    H5Handle space(H5Screate(H5S_SCALAR));
    const std::string what = fmt::format("Cannot write attribute '{}' of {}", name, where());
    H5Handle attr = checked(H5Acreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                            [&] { return what; });
    const char* p = value.c_str();
    check_status(H5Awrite(attr.get(), type.get(), &p), what);
}

namespace {

void write_fixed_strings(hid_t location, const std::string& name, const std::vector<std::string>& values,
                         size_t begin, size_t end, size_t itemsize, const std::string& what) {
    const hsize_t n = end - begin;
    H5Handle space(H5Screate_simple(1, &n, nullptr));
    H5Handle type;
    std::vector<char> buffer;
    if (values.empty()) {
        type = H5Handle(H5Tcopy(H5T_IEEE_F64LE));   // numpy's np.asarray([]) is float64
    } else {
        type = H5Handle(H5Tcopy(H5T_C_S1));
        H5Tset_size(type.get(), itemsize);
        H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
        buffer.assign(n * itemsize, '\0');
        for (size_t i = begin; i < end; ++i)
            std::memcpy(buffer.data() + (i - begin) * itemsize, values[i].data(), values[i].size());
    }
    H5Handle attr = checked(H5Acreate2(location, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                            [&] { return what; });
    if (n > 0) check_status(H5Awrite(attr.get(), type.get(), buffer.data()), what);
}

}  // namespace

void H5Group::write_string_array_attr(const std::string& name, const std::vector<std::string>& values) const {
    const std::string what = fmt::format("Cannot write attribute '{}' of {}", name, where());
    size_t itemsize = 1;
    for (const auto& v : values) {
        if (v.size() > kH5AttributeLimit)
            value_error("The following attributes cannot be saved to HDF5 file because they are larger than "
                        "{} bytes: {}", kH5AttributeLimit, v.substr(0, 80));
        itemsize = std::max(itemsize, v.size());
    }
    // Keras's rule: split into the fewest chunks (numpy array_split: the first n % k chunks one longer)
    // whose byte size each fits the limit.
    const size_t n = values.size();
    size_t chunks = 1;
    while (((n + chunks - 1) / chunks) * itemsize > kH5AttributeLimit) ++chunks;
    if (chunks == 1) return write_fixed_strings(id(), name, values, 0, n, itemsize, what);
    size_t begin = 0;
    for (size_t c = 0; c < chunks; ++c) {
        const size_t len = n / chunks + (c < n % chunks ? 1 : 0);
        write_fixed_strings(id(), name + std::to_string(c), values, begin, begin + len, itemsize, what);
        begin += len;
    }
}

bool H5Group::has_dataset(const std::string& path) const {
    std::string prefix;
    for (const auto& part : split_path(path)) {
        prefix += (prefix.empty() ? "" : "/") + part;
        if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (prefix.empty()) return false;
    return object_type(id(), prefix) == H5O_TYPE_DATASET;
}

std::vector<int64_t> H5Group::dataset_shape(const std::string& path) const {
    if (!has_dataset(path)) value_error("Dataset {} is missing.", where(path));
    H5Handle dset = checked(H5Dopen2(id(), path.c_str(), H5P_DEFAULT),
                            [&] { return fmt::format("Cannot open dataset {}", where(path)); });
    H5Handle space(H5Dget_space(dset.get()));
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) runtime_error("Cannot read the shape of dataset {} ({})", where(path), hdf5_error_detail());
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    for (hsize_t d : dims)
        if (d > static_cast<hsize_t>(INT64_MAX)) value_error("Dataset {} declares a dimension of {}.", where(path), d);
    return std::vector<int64_t>(dims.begin(), dims.end());
}

namespace {

// Deflate cannot shrink data by more than about 1032:1, so a compressed dataset claiming more is forged.
constexpr uint64_t kMaxCompressionRatio = 1032;

// The element count of a declared shape, refused when the product overflows.
uint64_t declared_elements(const std::vector<int64_t>& shape, const std::string& what) {
    uint64_t n = 1;
    for (int64_t d : shape)
        if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
            value_error("Dataset {} declares shape {}, too many elements to be a weight.", what, shape_str(shape));
    return n;
}

// A dataset declaring more bytes than its file could hold (uncompressed, or at deflate's best ratio) is
// corrupt or hostile: refuse it before allocating its buffer.
void check_fits_in_file(hid_t dset, uint64_t elements, const std::string& file, const std::string& what) {
    H5Handle type(H5Dget_type(dset));
    H5Handle plist(H5Dget_create_plist(dset));
    const uint64_t element_bytes = std::max<uint64_t>(H5Tget_size(type.get()), 1);
    const int filters = plist.valid() ? H5Pget_nfilters(plist.get()) : 0;
    std::error_code ec;
    const uint64_t file_bytes = std::filesystem::file_size(file, ec);
    if (ec) return;   // not a plain file (HDF5 opened it anyway): HDF5's own checks apply
    const uint64_t limit = filters > 0 ? file_bytes * kMaxCompressionRatio : file_bytes;
    uint64_t needed = 0;
    if (__builtin_mul_overflow(elements, element_bytes, &needed) || needed > limit)
        value_error("Dataset {} declares {} elements of {} bytes, more than the file ({} bytes) can hold: the file is "
                    "corrupt or truncated.", what, elements, element_bytes, file_bytes);
}

}  // namespace

H5Array H5Group::read_dataset(const std::string& path, const ShapeCheck& check_shape) const {
    H5Array array;
    array.shape = dataset_shape(path);
    check_shape(array.shape);
    const uint64_t elements = declared_elements(array.shape, where(path));
    H5Handle dset(H5Dopen2(id(), path.c_str(), H5P_DEFAULT));
    H5Handle type(H5Dget_type(dset.get()));
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        value_error("Dataset {} is not numeric (HDF5 type class {}).", where(path), static_cast<int>(cls));
    check_fits_in_file(dset.get(), elements, file_, where(path));
    array.values.resize(static_cast<size_t>(elements));
    if (!array.values.empty())
        check_status(H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, array.values.data()),
                     fmt::format("Cannot read dataset {} (is the file truncated?)", where(path)));
    return array;
}

void H5Group::write_dataset(const std::string& path, const std::vector<int64_t>& shape, const float* values) const {
    const std::string what = fmt::format("Cannot write dataset {}", where(path));
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    H5Handle links(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(links.get(), 1);
    H5Handle dset = checked(H5Dcreate2(id(), path.c_str(), H5T_IEEE_F32LE, space.get(), links.get(),
                                       H5P_DEFAULT, H5P_DEFAULT),
                            [&] { return what; });
    if (num_elements(shape) > 0)
        check_status(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), what);
}

void H5Group::write_scalar_int64(const std::string& path, int64_t value) const {
    const std::string what = fmt::format("Cannot write dataset {}", where(path));
    H5Handle space(H5Screate(H5S_SCALAR));
    H5Handle links(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(links.get(), 1);
    H5Handle dset = checked(H5Dcreate2(id(), path.c_str(), H5T_STD_I64LE, space.get(), links.get(), H5P_DEFAULT,
                                       H5P_DEFAULT),
                            [&] { return what; });
    check_status(H5Dwrite(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value), what);
}

int64_t H5Group::read_scalar_int64(const std::string& path) const {
    const std::vector<int64_t> shape = dataset_shape(path);
    if (declared_elements(shape, where(path)) != 1)
        value_error("Dataset {} should hold one number, its shape is {}.", where(path), shape_str(shape));
    H5Handle dset(H5Dopen2(id(), path.c_str(), H5P_DEFAULT));
    int64_t value = 0;
    check_status(H5Dread(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value),
                 fmt::format("Cannot read dataset {}", where(path)));
    return value;
}

H5File::H5File(H5Handle handle, std::string filepath) : H5Group(std::move(handle), std::move(filepath), "/") {}

H5File H5File::open(const std::string& filepath) {
    silence_hdf5_errors();
    std::error_code ec;
    if (std::filesystem::is_directory(filepath, ec))
        value_error("'{}' is a directory, not an HDF5 file.", filepath);
    if (!std::filesystem::is_regular_file(filepath, ec))
        value_error("No file or directory found at {}", filepath);
    const htri_t is_hdf5 = H5Fis_hdf5(filepath.c_str());
    if (is_hdf5 <= 0) {
        H5Eclear2(H5E_DEFAULT);
        value_error("File '{}' is not an HDF5 file (no HDF5 signature).", filepath);
    }
    check_global_heaps(filepath);   // before libhdf5 reads one (docs/security.md)
    const hid_t id = H5Fopen(filepath.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0)
        value_error("Cannot open HDF5 file '{}': {} (is it truncated or corrupt?)", filepath, hdf5_error_detail());
    return H5File(H5Handle(id), filepath);
}

H5File H5File::create(const std::string& filepath) {
    silence_hdf5_errors();
    const hid_t id = H5Fcreate(filepath.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0) runtime_error("Cannot create HDF5 file '{}' ({})", filepath, hdf5_error_detail());
    return H5File(H5Handle(id), filepath);
}

void H5File::close() {
    if (id() < 0) return;
    check_status(H5Fflush(id(), H5F_SCOPE_GLOBAL), fmt::format("Cannot write HDF5 file '{}'", file()));
    check_status(H5Fclose(handle().release()), fmt::format("Cannot close HDF5 file '{}'", file()));
}

}  // namespace keras::saving
