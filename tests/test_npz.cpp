// The readers behind imdb.npz: zip (libzip), .npy headers and arrays, the strict pickle decoder,
// and numpy's legacy shuffle. References: files written by numpy itself and numpy's own shuffles
// (tests/fixtures/gen_imdb_fixtures.py), plus hand-assembled bytes for every way a file can be bad.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "imdb/raw_reviews.hpp"
#include "io/npy.hpp"
#include "io/pickle.hpp"
#include "io/zip_archive.hpp"
#include "numpy_random_state.hpp"
#include "test_helpers.hpp"

using namespace keras;
using namespace std::string_literals;
using test_helpers::message_of;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = fs::path(KERASCPP_TESTS_DIR) / "fixtures" / "imdb";

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

// A .npy file: magic, version, header length, the dict padded with spaces and '\n' to 64 bytes, data.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
    const size_t len_bytes = major == 1 ? 2 : 4;
    std::string header = dict;
    while ((6 + 2 + len_bytes + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY"s + static_cast<char>(major) + '\0';
    for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return out + header + data;
}

std::string int64_bytes(std::initializer_list<int64_t> values) {
    std::string out;
    for (int64_t v : values)
        for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    return out;
}

std::string pickle_error(const std::string& bytes) {
    return message_of<RuntimeError>([&] { io::pickle::loads(bytes, "test.pkl"); });
}

std::vector<int64_t> ints_of(const io::pickle::Value& v) {
    const auto& list = *std::get<std::shared_ptr<io::pickle::List>>(v);
    CHECK(list.items.empty());   // a list of ints only is stored compactly
    return list.ints;
}

// The x_train.npy payload of a fixture, the pickle part only.
std::string fixture_pickle(const std::string& npz) {
    const std::string npy_file = io::ZipArchive(kFixtures / npz).read("x_train.npy", UINT64_MAX);
    return npy_file.substr(io::npy::parse_header(npy_file, npz).data_offset);
}
}  // namespace

TEST_CASE("pickle: the opcodes of plain data decode to the values Python wrote") {
    // pickle.dumps([1, 256, -1], protocol=3)
    CHECK(ints_of(io::pickle::loads("\x80\x03]q\x00(K\x01M\x00\x01J\xff\xff\xff\xff" "e."s, "t")) ==
          std::vector<int64_t>{1, 256, -1});
    // pickle.dumps(2**40, 2) and pickle.dumps(-2**40, 2): LONG1
    CHECK(std::get<int64_t>(io::pickle::loads("\x80\x02\x8a\x06\x00\x00\x00\x00\x00\x01."s, "t")) == (int64_t{1} << 40));
    CHECK(std::get<int64_t>(io::pickle::loads("\x80\x02\x8a\x06\x00\x00\x00\x00\x00\xff."s, "t")) == -(int64_t{1} << 40));
    // pickle.dumps([True, None, 'ab', b'c'], 4) without its FRAME: APPEND, NEWTRUE, NONE, strings, MEMOIZE
    const auto v = io::pickle::loads("\x80\x04]\x94(\x88N\x8c\x02" "ab\x94" "C\x01" "c\x94" "e."s, "t");
    const auto& items = std::get<std::shared_ptr<io::pickle::List>>(v)->items;
    REQUIRE(items.size() == 4);
    CHECK(std::get<bool>(items[0]));
    CHECK(std::holds_alternative<io::pickle::None>(items[1]));
    CHECK(*std::get<std::shared_ptr<const std::string>>(items[2]) == "ab");
    CHECK(*std::get<std::shared_ptr<const std::string>>(items[3]) == "c");
    // Ints first, then something else: the ints move to the general form, in order.
    const auto mixed = io::pickle::loads("\x80\x03](K\x05K\x06NK\x07" "e."s, "t");
    const auto& m = *std::get<std::shared_ptr<io::pickle::List>>(mixed);
    REQUIRE(m.items.size() == 4);
    CHECK(m.ints.empty());
    CHECK(std::get<int64_t>(m.items[0]) == 5);
    CHECK(std::get<int64_t>(m.items[1]) == 6);
    CHECK(std::holds_alternative<io::pickle::None>(m.items[2]));
    CHECK(std::get<int64_t>(m.items[3]) == 7);
}

TEST_CASE("pickle: forbidden globals and opcodes are named, never executed") {
    // class E: __reduce__ = lambda self: (os.system, ('ls',)); pickle.dumps(E(), 3)
    CHECK(pickle_error("\x80\x03" "cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."s) ==
          "test.pkl: bad pickle at byte 2: forbidden global posix.system (only numpy's array reconstruction globals are allowed)");
    CHECK(pickle_error("\x80\x03" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R."s).find("forbidden global os.system") != std::string::npos);
    CHECK(pickle_error("\x80\x03" "cbuiltins\neval\nX\x03\x00\x00\x00" "1+1\x85R."s).find("forbidden global builtins.eval") !=
          std::string::npos);
    CHECK(pickle_error("\x80\x04\x8c\x02os\x8c\x06system\x93."s).find("forbidden global os.system") != std::string::npos);
    CHECK(pickle_error("\x80\x03" "c_codecs\nencode\n."s).find("forbidden global _codecs.encode") != std::string::npos);
    CHECK(pickle_error("\x80\x03" "cnumpy.core.multiarray\nscalar\n."s).find("forbidden global numpy.core.multiarray.scalar") !=
          std::string::npos);
    // INST (protocol 0's class call), with a forbidden class
    CHECK(pickle_error("\x80\x02(X\x02\x00\x00\x00lsios\nsystem\n."s) ==
          "test.pkl: bad pickle at byte 10: forbidden opcode INST (0x69); only the opcodes of numpy object arrays are allowed");
    CHECK(pickle_error("\x80\x03}."s).find("forbidden opcode EMPTY_DICT") != std::string::npos);
    CHECK(pickle_error("\x80\x03G@\x09!\xfbTD-\x18."s).find("forbidden opcode BINFLOAT") != std::string::npos);
    CHECK(pickle_error("\x80\x03\x81."s).find("forbidden opcode NEWOBJ") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01\x32."s).find("forbidden opcode DUP") != std::string::npos);
    CHECK(pickle_error("\x80\x03\xff."s).find("unknown opcode 0xff") != std::string::npos);
}

TEST_CASE("pickle: malformed streams are clear errors") {
    CHECK(pickle_error("").find("empty pickle") != std::string::npos);
    CHECK(pickle_error("(lp0\n.").find("not a pickle of protocol 2 or later") != std::string::npos);
    CHECK(pickle_error("\x80\x06."s).find("pickle protocol 6") != std::string::npos);
    CHECK(pickle_error("\x80\x03X\xff\xff\xff\x7f" "ab."s).find("truncated") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01").find("truncated") != std::string::npos);   // no STOP
    CHECK(pickle_error("\x80\x03h\x05."s).find("memo entry 5 was never stored") != std::string::npos);
    CHECK(pickle_error("\x80\x03" "a."s).find("stack underflow") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01K\x02."s).find("STOP with 2 values") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01.K"s).find("1 bytes after STOP") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01)R."s).find("REDUCE needs a global and a tuple, got a int and a tuple") != std::string::npos);
    CHECK(pickle_error("\x80\x03K\x01K\x02" "b."s).find("BUILD on a int") != std::string::npos);
    // A list appended into itself would be a cycle; a deep nest would recurse without bound.
    CHECK(pickle_error("\x80\x03]q\x00h\x00" "a."s).find("already inside another value") != std::string::npos);
    CHECK(pickle_error("\x80\x03" + std::string(40, ']') + std::string(39, 'a') + ".").find("nested deeper than 32") !=
          std::string::npos);
}

TEST_CASE("pickle: every truncation of a real numpy object-array pickle is an error, never a crash") {
    for (const std::string npz : {"tiny_p3.npz", "tiny_p5.npz", "tiny_numpy1.npz"}) {
        const std::string full = fixture_pickle(npz);
        CHECK_NOTHROW(io::pickle::loads(full, npz));
        for (size_t n = 0; n < full.size(); ++n) {
            const std::string message = pickle_error(full.substr(0, n));
            CHECK_MESSAGE(message.starts_with("test.pkl: "), npz, " cut at ", n, ": ", message);
        }
    }
}

TEST_CASE("pickle and npz: randomly damaged files decode or fail cleanly, nothing else") {
    // Fixed-seed mutations (byte flips, overwrites, cuts) of real numpy output. Each one must either
    // decode or throw keras::RuntimeError; a crash or another exception fails the suite (and the
    // sanitizer build, see docs/imdb.md, catches out-of-bounds reads).
    std::mt19937 rng(20261123);
    auto mutate = [&](std::string bytes) {
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !bytes.empty(); ++e) {
            const size_t at = rng() % bytes.size();
            switch (rng() % 3) {
                case 0: bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8))); break;
                case 1: bytes[at] = static_cast<char>(rng()); break;
                default: bytes.resize(at); break;
            }
        }
        return bytes;
    };
    int decoded = 0, rejected = 0;
    for (const std::string npz : {"tiny_p3.npz", "tiny_p5.npz", "tiny_numpy1.npz"}) {
        const std::string npy_file = io::ZipArchive(kFixtures / npz).read("x_train.npy", UINT64_MAX);
        for (int i = 0; i < 1500; ++i) {
            try {
                io::npy::read_int_list_array(mutate(npy_file), "m.npy");
                ++decoded;
            } catch (const RuntimeError&) {
                ++rejected;
            }
        }
    }
    std::ifstream in(kFixtures / "tiny_p3.npz", std::ios::binary);
    const std::string zip_bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const fs::path damaged = fs::temp_directory_path() / ("kerascpp_test_mutant_" + std::to_string(::getpid()) + ".npz");
    for (int i = 0; i < 300; ++i) {
        std::ofstream(damaged, std::ios::binary) << mutate(zip_bytes);
        try {
            datasets::imdb::read_npz(damaged);
            ++decoded;
        } catch (const RuntimeError&) {
            ++rejected;
        }
    }
    fs::remove(damaged);
    MESSAGE(decoded << " mutants decoded, " << rejected << " rejected");
    CHECK(rejected > 0);
}

TEST_CASE("npy: headers of versions 1, 2 and 3 and the integer dtypes numpy writes") {
    const std::string data = int64_bytes({5, -1, 70000});
    for (int major : {1, 2, 3}) {
        const auto a = io::npy::read_int_array(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", data, major), "a.npy");
        CHECK(a.shape == std::vector<int64_t>{3});
        CHECK(a.values == std::vector<int64_t>{5, -1, 70000});
    }
    CHECK(io::npy::read_int_array(npy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", "\xff\xff\xff\xfe\x00\x01\x00\x00"s), "b")
              .values == std::vector<int64_t>{-2, 65536});
    CHECK(io::npy::read_int_array(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", "\xff\x01"s), "c").values ==
          std::vector<int64_t>{255, 1});
    CHECK(io::npy::read_int_array(npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x01\x00"s), "d").values ==
          std::vector<int64_t>{1, 0});
    // np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype='<i2') stores 1 4 2 5 3 6
    const auto f = io::npy::read_int_array(
        npy("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", "\x01\x00\x04\x00\x02\x00\x05\x00\x03\x00\x06\x00"s), "f");
    CHECK(f.shape == std::vector<int64_t>{2, 3});
    CHECK(f.values == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
    // Zero-size arrays are fine.
    CHECK(io::npy::read_int_array(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", ""), "z").values.empty());
}

TEST_CASE("npy: wrong headers are clear errors") {
    const std::string data = int64_bytes({1, 2});
    auto error = [](const std::string& file) { return message_of<RuntimeError>([&] { io::npy::read_int_array(file, "x.npy"); }); };
    CHECK(error("PK\x03\x04 not an npy file") == "x.npy: not a .npy file (no \\x93NUMPY magic)");
    CHECK(error("") == "x.npy: not a .npy file (no \\x93NUMPY magic)");
    std::string v4 = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data);
    v4[6] = 4;
    CHECK(error(v4) == "x.npy: unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are read)");
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data).substr(0, 40))
              .find("truncated in its header") != std::string::npos);
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), 'extra': 1}", data)).find("unexpected key 'extra'") !=
          std::string::npos);
    CHECK(error(npy("{'descr': '<i8', 'shape': (2,), }", data)).find("needs the keys 'descr', 'fortran_order' and 'shape'") !=
          std::string::npos);
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': maybe, 'shape': (2,), }", data)).find("fortran_order must be True or False") !=
          std::string::npos);
    CHECK(error(npy("['descr', '<i8']", data)).find("bad .npy header (expected '{' at character 0)") != std::string::npos);
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (-2,), }", data)).find("shape must be a tuple of non-negative ints") !=
          std::string::npos);
    CHECK(error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", data)) ==
          "x.npy: unsupported .npy dtype '<f4' (expected an integer or bool array)");
    CHECK(error(npy("{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (2,), }", data)).find("expected a string") !=
          std::string::npos);
    CHECK(error(npy("{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", data)) == "x.npy: .npy dtype '<u8' does not fit in int64");
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", data)) ==
          "x.npy: .npy shape (3,) with dtype '<i8' needs 24 bytes of data, the file has 16");
    CHECK(error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", data)) ==
          "x.npy: .npy shape is too large");

    auto list_error = [](const std::string& file) {
        return message_of<RuntimeError>([&] { io::npy::read_int_list_array(file, "x.npy"); });
    };
    CHECK(list_error(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data)) ==
          "x.npy: .npy dtype is '<i8', expected an object array ('|O') of lists");
    CHECK(list_error(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1, 1), }", "")) ==
          "x.npy: object array has shape (1, 1), expected one dimension");
    // A valid pickle that is not an ndarray, and a real array whose header claims another length.
    CHECK(list_error(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "\x80\x03]q\x00."s)) ==
          "x.npy: the pickled object array is not what numpy writes (no numpy _reconstruct call)");
    CHECK(list_error(npy("{'descr': '|O', 'fortran_order': False, 'shape': (5,), }", fixture_pickle("tiny_p3.npz"))) ==
          "x.npy: .npy shape (5,) but the pickled array holds 12 elements");
}

TEST_CASE("npz: numpy-written files with pickle protocols 3, 4, 5 and a Python-2-style 2 read exactly") {
    const auto expected = read_json(kFixtures / "tiny.json");
    for (const std::string name : {"tiny_p3.npz", "tiny_p4.npz", "tiny_p5.npz", "tiny_numpy1.npz"}) {
        CAPTURE(name);
        const auto [train, test] = datasets::imdb::read_npz(kFixtures / name);
        CHECK(train.x == expected["x_train"].get<std::vector<std::vector<int64_t>>>());
        CHECK(train.y == expected["y_train"].get<std::vector<int64_t>>());
        CHECK(test.x == expected["x_test"].get<std::vector<std::vector<int64_t>>>());
        CHECK(test.y == expected["y_test"].get<std::vector<int64_t>>());
    }
    // Python 3's protocol 2 builds bytes by calling _codecs.encode: not an allowed global.
    CHECK(message_of<RuntimeError>([] { datasets::imdb::read_npz(kFixtures / "tiny_p2.npz"); })
              .find("x_train.npy: bad pickle at byte 63: forbidden global _codecs.encode") != std::string::npos);
}

TEST_CASE("npz: damaged zip files are clear errors") {
    auto error = [](const fs::path& path) { return message_of<RuntimeError>([&] { datasets::imdb::read_npz(path); }); };
    CHECK(error(kFixtures / "truncated.npz").starts_with("Cannot read zip file " + (kFixtures / "truncated.npz").string() + ": "));
    CHECK(error(kFixtures / "corrupt_deflate.npz").find("corrupt_deflate.npz: member 'x_train.npy' is corrupt") != std::string::npos);
    CHECK(error(kFixtures / "tiny.json").starts_with("Cannot read zip file"));
    CHECK(error(kFixtures / "no_such_file.npz").starts_with("Cannot read zip file"));
    const fs::path empty = fs::temp_directory_path() / "kerascpp_test_empty.npz";
    std::ofstream(empty).close();
    CHECK(error(empty).starts_with("Cannot read zip file " + empty.string()));
    fs::remove(empty);
    CHECK(message_of<RuntimeError>([] { io::ZipArchive(kFixtures / "tiny_p3.npz").read("x_val.npy", UINT64_MAX); }) ==
          fmt::format("{}: no member 'x_val.npy' in the zip file (it holds: x_train.npy, y_train.npy, x_test.npy, y_test.npy)",
                      (kFixtures / "tiny_p3.npz").string()));
}

TEST_CASE("numpy's legacy RandomState(seed).shuffle, bit for bit") {
    const auto fixture = read_json(kFixtures / "numpy_shuffle.json");
    for (const auto& c : fixture["cases"]) {
        std::vector<int64_t> values(c["n"].get<size_t>());
        for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i);
        datasets::NumpyRandomState rng(c["seed"].get<uint32_t>());
        rng.shuffle(values);
        CHECK_MESSAGE(values == c["permutation"].get<std::vector<int64_t>>(), "seed ", c["seed"], " n ", c["n"]);
    }
    // Keras's imdb: one generator shuffles the train indices, then the test indices.
    const auto& k = fixture["keras_imdb"];
    datasets::NumpyRandomState rng(113);
    for (const std::string split : {"train", "test"}) {
        std::vector<int64_t> values(25000);
        for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i);
        rng.shuffle(values);
        int64_t weighted = 0;
        for (size_t i = 0; i < values.size(); ++i) weighted += static_cast<int64_t>(i) * values[i];
        CHECK(std::vector<int64_t>(values.begin(), values.begin() + 40) == k[split + "_head"].get<std::vector<int64_t>>());
        CHECK(weighted == k[split + "_weighted_sum"].get<int64_t>());
    }
}
