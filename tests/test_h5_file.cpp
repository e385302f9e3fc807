// The internal HDF5 wrapper: what it writes is read back by the raw HDF5 C API (an independent
// reader), what the raw API writes (fixed-length strings, split attributes) is read by the wrapper,
// and bad files give clear errors.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keras/errors.hpp"
#include "saving/atomic_write.hpp"
#include "saving/h5_file.hpp"
#include "saving/stale_temp_files.hpp"

using namespace keras;
using namespace keras::saving;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / "kerascpp_test_h5_file";
    fs::create_directories(dir);
    return (dir / name).string();
}

// Raw API: the class, size and variable-length flag of an attribute's type, and its element count.
struct RawAttr {
    H5T_class_t cls;
    bool variable;
    size_t size;
    hssize_t count;
};
RawAttr raw_attr(hid_t loc, const char* name) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    REQUIRE(a >= 0);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    RawAttr r{H5Tget_class(t), H5Tis_variable_str(t) > 0, H5Tget_size(t), H5Sget_simple_extent_npoints(s)};
    H5Sclose(s); H5Tclose(t); H5Aclose(a);
    return r;
}

void write_raw_fixed_string(hid_t loc, const char* name, const std::string& value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, value.size());
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, value.data());
    H5Aclose(a); H5Sclose(s); H5Tclose(t);
}

}  // namespace

TEST_CASE("strings and datasets written by the wrapper read back through the raw HDF5 API") {
    const std::string path = temp_path("roundtrip.h5");
    {
        auto f = H5File::create(path);
        f.write_string_attr("keras_version", "3.15.1");
        auto g = f.create_group("model_weights");
        g.write_string_array_attr("layer_names", {"dense", "lstm_1"});
        g.write_string_array_attr("empty", {});
        const float values[6] = {1, 2, 3, 4, 5, -6.5f};
        g.write_dataset("dense/sequential/dense/kernel", {2, 3}, values);
        f.close();
    }
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(file >= 0);
    const RawAttr version = raw_attr(file, "keras_version");
    CHECK(version.cls == H5T_STRING);
    CHECK(version.variable);
    CHECK(version.count == 1);
    hid_t g = H5Gopen2(file, "model_weights", H5P_DEFAULT);
    const RawAttr names = raw_attr(g, "layer_names");
    CHECK(names.cls == H5T_STRING);
    CHECK_FALSE(names.variable);
    CHECK(names.size == 6);   // numpy 'S6': the longest name
    CHECK(names.count == 2);
    const RawAttr empty = raw_attr(g, "empty");
    CHECK(empty.cls == H5T_FLOAT);
    CHECK(empty.count == 0);
    hid_t d = H5Dopen2(g, "dense/sequential/dense/kernel", H5P_DEFAULT);
    REQUIRE(d >= 0);
    float read[6] = {};
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, read);
    CHECK(read[5] == -6.5f);
    hid_t s = H5Dget_space(d);
    hsize_t dims[2] = {};
    CHECK(H5Sget_simple_extent_ndims(s) == 2);
    H5Sget_simple_extent_dims(s, dims, nullptr);
    CHECK(dims[0] == 2);
    CHECK(dims[1] == 3);
    H5Sclose(s); H5Dclose(d); H5Gclose(g); H5Fclose(file);

    auto f = H5File::open(path);
    CHECK(f.string_attr("keras_version") == "3.15.1");
    auto mw = f.group("model_weights");
    CHECK(mw.string_array_attr("layer_names") == std::vector<std::string>{"dense", "lstm_1"});
    CHECK(mw.string_array_attr("empty").empty());
    CHECK(mw.has_dataset("dense/sequential/dense/kernel"));
    CHECK_FALSE(mw.has_dataset("dense/nothing/kernel"));
    const H5Array a = mw.read_dataset("dense/sequential/dense/kernel", [](const auto&) {});
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(a.values == std::vector<float>{1, 2, 3, 4, 5, -6.5f});
}

TEST_CASE("fixed-length string attributes (old Keras files) are read") {
    const std::string path = temp_path("fixed.h5");
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_raw_fixed_string(file, "keras_version", "2.0.8");
    H5Fclose(file);
    auto f = H5File::open(path);
    CHECK(f.string_attr("keras_version") == "2.0.8");
}

TEST_CASE("string arrays over 64512 bytes are split like Keras (name0, name1, ...) and joined on read") {
    // 3000 names of 30 bytes = 90000 bytes: numpy.array_split into 2 chunks of 1500 (45000 bytes each).
    std::vector<std::string> names;
    for (int i = 0; i < 3000; ++i) names.push_back(fmt::format("layer_{:024d}", i));
    const std::string path = temp_path("split.h5");
    {
        auto f = H5File::create(path);
        f.write_string_array_attr("layer_names", names);
        f.close();
    }
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(H5Aexists(file, "layer_names") == 0);
    CHECK(raw_attr(file, "layer_names0").count == 1500);
    CHECK(raw_attr(file, "layer_names1").count == 1500);
    CHECK(H5Aexists(file, "layer_names2") == 0);
    H5Fclose(file);
    auto f = H5File::open(path);
    CHECK(f.string_array_attr("layer_names") == names);
    CHECK_THROWS_WITH_AS(f.string_array_attr("weight_names"),
                         doctest::Contains("Attribute 'weight_names' of '/' in file"), ValueError);
}

TEST_CASE("bad files give clear errors") {
    CHECK_THROWS_WITH_AS(H5File::open(temp_path("does_not_exist.h5")),
                         doctest::Contains("No file or directory found at"), ValueError);
    const std::string text = temp_path("text.h5");
    std::ofstream(text) << "not an hdf5 file at all\n";
    CHECK_THROWS_WITH_AS(H5File::open(text), doctest::Contains("is not an HDF5 file"), ValueError);

    const std::string full = temp_path("full.h5");
    {
        auto f = H5File::create(full);
        std::vector<float> big(4096, 1.0f);
        f.write_dataset("w", {4096}, big.data());
        f.write_string_attr("keras_version", "3.15.1");
        f.close();
    }
    const std::string cut = temp_path("cut.h5");
    fs::copy_file(full, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, fs::file_size(full) / 2);
    CHECK_THROWS_WITH_AS(H5File::open(cut), doctest::Contains("truncated"), ValueError);

    auto f = H5File::open(full);
    CHECK_THROWS_WITH_AS(f.group("model_weights"),
                         doctest::Contains("Group '/model_weights' in file"), ValueError);
    CHECK_THROWS_WITH_AS(f.string_attr("model_config"),
                         doctest::Contains("Attribute 'model_config' of '/' in file"), ValueError);
    CHECK_THROWS_WITH_AS(f.read_dataset("nothing/here", [](const auto&) {}),
                         doctest::Contains("Dataset '/nothing/here' in file"), ValueError);
}

TEST_CASE("atomic_write replaces the file only when the writer finishes") {
    const std::string path = temp_path("atomic.txt");
    atomic_write(path, [](const std::string& tmp) { std::ofstream(tmp) << "old"; });
    CHECK_THROWS_WITH_AS(atomic_write(path, [](const std::string& tmp) {
                             std::ofstream(tmp) << "half";
                             runtime_error("disk full");
                         }),
                         "disk full", RuntimeError);
    std::string content;
    std::ifstream(path) >> content;
    CHECK(content == "old");
    for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
        CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
    CHECK_THROWS_WITH_AS(atomic_write(path, [](const std::string&) {}, /*overwrite=*/false),
                         doctest::Contains("already exists"), ValueError);
}

TEST_CASE("atomic_write gives the saved file the permissions a new file gets, not mkstemp's 0600") {
    const std::string path = temp_path("permissions.txt");
    const mode_t old_mask = ::umask(022);
    atomic_write(path, [](const std::string& tmp) { std::ofstream(tmp) << "x"; });
    ::umask(old_mask);
    const auto perms = fs::status(path).permissions();
    CHECK((perms & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write |
                                       fs::perms::group_read | fs::perms::others_read));
}

namespace {

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

void touch(const fs::path& path, std::chrono::hours age = std::chrono::hours(0)) {
    std::ofstream(path) << "partial";
    fs::last_write_time(path, fs::file_time_type::clock::now() - age);
}

}  // namespace

TEST_CASE("atomic_write removes the temporaries of dead savers, and only those") {
    const fs::path dir = fs::path(temp_path("stale_temps"));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string self = temp_owner_tag();                              // "<host>-<pid>"
    const std::string host = self.substr(0, self.rfind('-'));
    const std::vector<std::string> stale = {
        fmt::format(".m.h5.tmp-{}-{}-AbC123", host, dead_pid()),   // killed on this host
        ".m.h5.tmp-Xy12Zq",                                        // an older kerascpp's, a day old
        ".m.h5.tmp-otherhost-12-AbC123",                           // another host's, a day old
    };
    const std::vector<std::string> kept = {
        fmt::format(".m.h5.tmp-{}-AbC123", self),                  // a save in progress in this process
        fmt::format(".m.h5.tmp-{}-1-AbC123", host),                // pid 1 lives
        ".m.h5.tmp-otherhost-12-XyZ987",                           // another host's, recent
        ".m.h5.tmp-Qw34Er",                                        // an older kerascpp's, recent
        fmt::format(".other.h5.tmp-{}-{}-AbC123", host, dead_pid()),   // another file's
        "m.h5.tmp-notours",
    };
    touch(dir / stale[0]);
    touch(dir / stale[1], std::chrono::hours(25));
    touch(dir / stale[2], std::chrono::hours(25));
    for (const auto& name : kept) touch(dir / name);
    atomic_write((dir / "m.h5").string(), [](const std::string& tmp) { std::ofstream(tmp) << "model"; });
    for (const auto& name : stale) CHECK_MESSAGE(!fs::exists(dir / name), name);
    for (const auto& name : kept) CHECK_MESSAGE(fs::exists(dir / name), name);
    CHECK(fs::exists(dir / "m.h5"));
    fs::remove_all(dir);
}
