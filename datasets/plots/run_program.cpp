#include "plots/run_program.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "keras/errors.hpp"

extern char** environ;

namespace keras::plots {

namespace {

// A temporary file for the child's stderr (a file, not a pipe: a chatty child can never block on it).
struct TempFile {
    std::string path;
    int fd = -1;
    TempFile() {
        const char* dir = std::getenv("TMPDIR");
        path = fmt::format("{}/kerascpp-stderr-XXXXXX", dir && *dir ? dir : "/tmp");
        fd = ::mkstemp(path.data());
        if (fd < 0) runtime_error("Cannot create a temporary file '{}': {}", path, std::strerror(errno));
    }
    ~TempFile() {
        ::close(fd);
        ::unlink(path.c_str());
    }
    std::string read(size_t limit) const {
        std::string text(limit, '\0');
        const ssize_t n = ::pread(fd, text.data(), limit, 0);
        text.resize(n > 0 ? n : 0);
        return text;
    }
};

struct SpawnActions {
    posix_spawn_file_actions_t actions;
    SpawnActions() { posix_spawn_file_actions_init(&actions); }
    ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
};

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) runtime_error("waitpid failed: {}", std::strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::optional<std::string> find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (!path || !*path) return std::nullopt;
    const std::string folders = path;
    for (size_t start = 0; start <= folders.size();) {
        size_t end = folders.find(':', start);
        if (end == std::string::npos) end = folders.size();
        const std::string folder = end == start ? "." : folders.substr(start, end - start);   // "" is the cwd, as in sh
        const std::string candidate = folder + "/" + name;
        struct stat info {};
        if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return std::nullopt;
}

ProgramResult run_program(const std::vector<std::string>& argv) {
    if (argv.empty()) runtime_error("run_program: no program given");
    TempFile errors;
    SpawnActions spawn;
    posix_spawn_file_actions_addopen(&spawn.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&spawn.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&spawn.actions, errors.fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    if (const int err = ::posix_spawn(&pid, argv[0].c_str(), &spawn.actions, nullptr, args.data(), environ))
        runtime_error("Cannot run '{}': {}", argv[0], std::strerror(err));
    ProgramResult result;
    result.exit_code = wait_for(pid);
    result.errors = errors.read(64 * 1024);
    return result;
}

}  // namespace keras::plots
