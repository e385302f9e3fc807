// keras::utils::get_file against a local HTTP server (tests/fixtures/http_test_server.py, started here
// on 127.0.0.1): success with md5 and sha256 checks (digests from Python's hashlib, contents from the
// formula the server uses), the cache hit, force_download, an outdated cached copy, HTTP 404, a
// connection cut halfway, a wrong checksum, a refused connection. After every failure the cache holds
// nothing: no file, no temporary.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "keras/errors.hpp"
#include "keras/utils/data_utils.hpp"
#include "test_helpers.hpp"

extern char** environ;

namespace fs = std::filesystem;
using keras::RuntimeError;
using keras::ValueError;
using keras::utils::get_file;
using keras::utils::hash_file;
using test_helpers::captured;
using test_helpers::message_of;

namespace {

// The server process: started with pipes on stdin (closing it stops the server) and stdout (the port).
class HttpServer {
public:
    HttpServer() {
        int in[2], out[2];
        REQUIRE(::pipe(in) == 0);
        REQUIRE(::pipe(out) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_addclose(&actions, in[1]);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        const std::string script = std::string(KERASCPP_TESTS_DIR) + "/fixtures/http_test_server.py";
        const std::string python = python3();
        char* argv[] = {const_cast<char*>(python.c_str()), const_cast<char*>(script.c_str()), nullptr};
        const int rc = posix_spawnp(&pid_, python.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(in[0]);
        ::close(out[1]);
        stdin_ = in[1];
        REQUIRE_MESSAGE(rc == 0, "cannot start " << python << " " << script);
        port_ = read_port(out[0]);
        ::close(out[0]);
        REQUIRE_MESSAGE(port_ > 0, "the test HTTP server did not report its port");
    }
    ~HttpServer() {
        ::close(stdin_);   // the server exits on EOF
        for (int i = 0; i < 50; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

private:
    // The system's interpreter when there is one: a python3 found first on PATH may be a wrapper
    // (pyenv shims, virtualenvs) that is slow to start or not a plain Python at all.
    static std::string python3() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

    // "PORT <n>\n", waiting at most 20 s: a broken server fails the test instead of hanging it.
    static int read_port(int fd) {
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            char buf[64];
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<size_t>(n));
        }
        int port = 0;
        std::sscanf(line.c_str(), "PORT %d", &port);
        return port;
    }

    pid_t pid_ = -1;
    int stdin_ = -1;
    int port_ = 0;
};

// Started once for the whole file; if it cannot start, every test that needs it fails at once
// instead of trying (and waiting) again.
HttpServer& server() {
    static std::unique_ptr<HttpServer> s;
    static bool tried = false;
    if (!s) {
        REQUIRE_MESSAGE(!tried, "the test HTTP server failed to start earlier");
        tried = true;
        s = std::make_unique<HttpServer>();
    }
    return *s;
}

// What the server sends for /blob/<n>.
std::string body(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + 7) % 256);
    return s;
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// The text of a small server answer (/count, /hash/...), fetched with get_file into a throwaway folder.
std::string fetch(const std::string& path) {
    const fs::path dir = fs::temp_directory_path() / ("kerascpp_fetch_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::string text;
    captured(std::cout, [&] {
        text = read_all(get_file("answer.txt", server().url(path), {.cache_dir = dir.string(), .force_download = true}));
    });
    fs::remove_all(dir);
    return text;
}

int served() { return std::stoi(fetch("/count")); }

// A fresh KERAS_HOME for each test, removed afterwards.
struct TempKerasHome {
    fs::path root;
    TempKerasHome() {
        char pattern[] = "/tmp/kerascpp_get_file_XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        root = pattern;
        ::setenv("KERAS_HOME", root.c_str(), 1);
    }
    ~TempKerasHome() {
        ::unsetenv("KERAS_HOME");
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    fs::path datasets() const { return root / "datasets"; }
    std::vector<std::string> cached() const {
        std::vector<std::string> names;
        if (fs::is_directory(datasets()))
            for (const auto& e : fs::directory_iterator(datasets())) names.push_back(e.path().filename().string());
        return names;
    }
};

// A port on 127.0.0.1 that nothing listens on: bound, then closed.
int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("hash_file: known digests (RFC 1321 / FIPS 180-2 test vectors)") {
    TempKerasHome home;
    const fs::path p = home.root / "abc.txt";
    write_file(p, "abc");
    CHECK(hash_file(p, "md5") == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(hash_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    write_file(p, "");
    CHECK(hash_file(p, "md5") == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(hash_file(p, "sha256") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(message_of<ValueError>([&] { hash_file(p, "sha1"); }) ==
          "hash_file: unknown hash algorithm \"sha1\" (expected \"sha256\" or \"md5\")");
    CHECK(message_of<RuntimeError>([&] { hash_file(home.root / "missing"); }) ==
          "hash_file: cannot open " + (home.root / "missing").string());
}

TEST_CASE("keras_home: KERAS_HOME, else ~/.keras") {
    TempKerasHome home;
    CHECK(keras::utils::keras_home() == home.root);
    ::unsetenv("KERAS_HOME");
    const std::string old_home = std::getenv("HOME") ? std::getenv("HOME") : "";
    ::setenv("HOME", home.root.c_str(), 1);
    CHECK(keras::utils::keras_home() == home.root / ".keras");
    ::setenv("HOME", old_home.c_str(), 1);
}

TEST_CASE("get_file downloads once, checks the hash, and then uses the cache") {
    TempKerasHome home;
    const size_t n = 300000;
    const std::string sha256 = fetch("/hash/sha256/300000");
    const std::string url = server().url("/blob/300000");
    const int before = served();
    fs::path path;
    const std::string out = captured(std::cout, [&] { path = get_file("data.bin", url, {.file_hash = sha256}); });
    CHECK(path == home.datasets() / "data.bin");
    CHECK(read_all(path) == body(n));
    CHECK(home.cached() == std::vector<std::string>{"data.bin"});   // no temporary left over
    CHECK(served() == before + 1);
    // Keras's messages: the URL, then the progress bar, ending on the full count. Standard output is
    // not a terminal here, so the bar is its final line only (no '\r' redraws in a log).
    CHECK(out.starts_with("Downloading data from " + url + "\n"));
    CHECK(out.find("\n300000/300000 [==============================] - ") != std::string::npos);
    CHECK(out.find('\r') == std::string::npos);
    CHECK(out.ends_with("/step\n"));

    // Second call: found in the cache and verified, nothing downloaded, nothing printed.
    const std::string again = captured(std::cout, [&] { CHECK(get_file("data.bin", url, {.file_hash = sha256}) == path); });
    CHECK(again.empty());
    CHECK(served() == before + 1);

    // An md5 (32 digits: "auto" picks md5) works the same way.
    const std::string md5 = fetch("/hash/md5/300000");
    captured(std::cout, [&] { CHECK(get_file("data.bin", url, {.file_hash = md5}) == path); });
    CHECK(served() == before + 1);
}

TEST_CASE("get_file: a cached copy is used as is without a hash, re-downloaded when it mismatches or when forced") {
    TempKerasHome home;
    const std::string url = server().url("/blob/5000");
    fs::create_directories(home.datasets());
    write_file(home.datasets() / "f.bin", "old contents");
    const int before = served();
    captured(std::cout, [&] { CHECK(read_all(get_file("f.bin", url)) == "old contents"); });
    CHECK(served() == before);

    const std::string md5 = fetch("/hash/md5/5000");
    const std::string out = captured(std::cout, [&] { get_file("f.bin", url, {.file_hash = md5}); });
    CHECK(out.starts_with("A local file was found, but it seems to be incomplete or outdated because the md5 file hash "
                          "does not match the original value of " + md5 + " so we will re-download the data.\n"
                          "Downloading data from " + url + "\n"));
    CHECK(read_all(home.datasets() / "f.bin") == body(5000));
    CHECK(served() == before + 1);

    write_file(home.datasets() / "f.bin", "stale");
    captured(std::cout, [&] { get_file("f.bin", url, {.force_download = true}); });
    CHECK(read_all(home.datasets() / "f.bin") == body(5000));
    CHECK(served() == before + 2);
    CHECK(home.cached() == std::vector<std::string>{"f.bin"});
}

TEST_CASE("get_file: name from the URL, cache_dir and cache_subdir, a length the server does not announce") {
    TempKerasHome home;
    const fs::path elsewhere = home.root / "elsewhere";
    fs::path path;
    const std::string out = captured(std::cout, [&] {
        path = get_file("", server().url("/nolength/777/archive.tar.gz?token=1#frag"),
                        {.cache_subdir = "sub", .cache_dir = elsewhere.string()});
    });
    CHECK(path == elsewhere / "sub" / "archive.tar.gz");
    CHECK(read_all(path) == body(777));
    // The unknown length becomes the count seen, in the final line (standard output is no terminal here).
    CHECK(out.find("777/777 [==============================] - ") != std::string::npos);
    CHECK(out.find('\r') == std::string::npos);
}

TEST_CASE("get_file failures leave nothing behind and say what went wrong, for which URL, and where to put the file") {
    TempKerasHome home;
    const fs::path target = home.datasets() / "f.bin";
    const std::string by_hand = "Nothing was saved. To use a copy you already have, put it at " + target.string();
    std::string message;

    SUBCASE("HTTP 404") {
        const std::string url = server().url("/missing/f.bin");
        captured(std::cout, [&] { message = message_of<RuntimeError>([&] { get_file("f.bin", url); }); });
        CHECK(message == "URL fetch failure on " + url + ": HTTP status 404. " + by_hand);
    }
    SUBCASE("connection cut halfway") {
        const std::string url = server().url("/cut/200000");
        captured(std::cout, [&] { message = message_of<RuntimeError>([&] { get_file("f.bin", url); }); });
        CHECK(message.starts_with("URL fetch failure on " + url + ": Transferred a partial file ("));
        CHECK(message.find("100000 bytes received). " + by_hand) != std::string::npos);
    }
    SUBCASE("wrong checksum") {
        const std::string url = server().url("/blob/1000");
        const std::string wrong(64, '0');
        captured(std::cout, [&] { message = message_of<RuntimeError>([&] { get_file("f.bin", url, {.file_hash = wrong}); }); });
        CHECK(message == "Incomplete or corrupted file detected from " + url + ": its sha256 file hash is " +
                             fetch("/hash/sha256/1000") + ", expected " + wrong + ". " + by_hand);
    }
    SUBCASE("nothing listening (offline)") {
        const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/f.bin";
        captured(std::cout, [&] { message = message_of<RuntimeError>([&] { get_file("f.bin", url); }); });
        CHECK(message.starts_with("URL fetch failure on " + url + ": Couldn't connect to server ("));
        CHECK(message.ends_with(by_hand));
    }
    CHECK(home.cached().empty());
}

TEST_CASE("get_file: bad arguments are Keras's ValueErrors") {
    TempKerasHome home;
    CHECK(message_of<ValueError>([] { get_file("x", ""); }) ==
          "Please specify the \"origin\" argument (URL of the file to download).");
    CHECK(message_of<ValueError>([] { get_file("", "http://127.0.0.1/dir/"); }) ==
          "Can't parse the file name from the origin provided: 'http://127.0.0.1/dir/'.Please specify the `fname` "
          "argument.");
    CHECK(message_of<ValueError>([] { get_file("a/b.bin", "http://127.0.0.1/b.bin"); }) ==
          "Paths are no longer accepted as the `fname` argument. To specify the file's parent directory, use the "
          "`cache_dir` argument. Received: fname=a/b.bin");
    CHECK(message_of<ValueError>([] { get_file("b.bin", "http://127.0.0.1/b.bin", {.hash_algorithm = "sha1"}); }) ==
          "get_file: hash_algorithm must be \"auto\", \"sha256\" or \"md5\", got \"sha1\"");
}

TEST_CASE("get_file removes the downloads a killed process left in the cache, and only those") {
    TempKerasHome home;
    const std::string url = server().url("/blob/1000");
    captured(std::cout, [&] { get_file("data.bin", url); });
    // What an interrupted get_file leaves: a hidden .download beside the file. A pid no process has:
    // a child that has exited and been reaped.
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    char raw_host[256] = {};
    ::gethostname(raw_host, sizeof(raw_host) - 1);
    std::string host = raw_host;   // as kerascpp writes it: only letters, digits and dots
    for (char& c : host)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
    const fs::path dir = home.datasets();
    const auto touch = [&](const std::string& name, int hours_old) {
        std::ofstream(dir / name) << "partial";
        fs::last_write_time(dir / name, fs::file_time_type::clock::now() - std::chrono::hours(hours_old));
    };
    const std::string killed = fmt::format(".data.bin.{}-{}-0badf00d.download", host, dead);
    const std::string old_version = ".data.bin.4242-0badf00d.download";   // before pids and hosts: age decides
    const std::string recent_old_version = ".data.bin.4243-0badf00d.download";
    const std::string live = fmt::format(".data.bin.{}-{}-0badf00d.download", host, ::getpid());
    touch(killed, 0);
    touch(old_version, 25);
    touch(recent_old_version, 0);
    touch(live, 0);
    captured(std::cout, [&] { get_file("data.bin", url); });   // cached: nothing downloaded, leftovers cleaned
    CHECK_FALSE(fs::exists(dir / killed));
    CHECK_FALSE(fs::exists(dir / old_version));
    CHECK(fs::exists(dir / recent_old_version));
    CHECK(fs::exists(dir / live));
}
