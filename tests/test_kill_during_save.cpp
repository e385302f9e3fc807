// A process killed with SIGKILL while it saves never costs the previous file: after every kill the
// file loads and holds one complete save (all weights one value, never older than the last seen),
// and what a killed save leaves behind is a hidden temporary that cannot be taken for a model file,
// which the next save to the same path removes (its process is gone).
#include <doctest/doctest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <vector>
#include <thread>

#include <keras/keras.hpp>

#include "save_loop_model.hpp"

extern char** environ;

using namespace keras;
namespace fs = std::filesystem;

namespace {

// The single value all weights of the file hold; fails the test if they differ.
float file_value(const std::string& path) {
    auto model = models::load_model(path);
    const auto weights = model->get_weights();
    const float value = weights.at(0).data<float>()[0];
    size_t mixed = 0;
    for (const auto& w : weights)
        for (float v : w.to_vector<float>()) mixed += v != value;
    REQUIRE(mixed == 0);
    return value;
}

// Starts the helper with its stdout on a pipe; returns its pid and the pipe's read end.
std::pair<pid_t, int> start_helper(const std::string& path, int first_value) {
    const std::string helper = KERASCPP_SAVE_LOOP_HELPER, first = std::to_string(first_value);
    char* const argv[] = {const_cast<char*>(helper.c_str()), const_cast<char*>(path.c_str()),
                          const_cast<char*>(first.c_str()), nullptr};
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(rc == 0);
    return {pid, fds[0]};
}

// Blocks until the helper reports its first completed save: from then on it does little but save,
// so a kill after a short random delay lands inside a write most of the time.
void wait_for_first_save(int fd) {
    std::string seen;
    char c;
    while (seen.find('\n') == std::string::npos && ::read(fd, &c, 1) == 1) seen += c;
    REQUIRE(seen.starts_with("saved "));
}

}  // namespace

TEST_CASE("kill -9 during model.save leaves the previous file loadable") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("kerascpp_kill_{}", ::getpid());
    fs::create_directories(dir);
    const std::string path = (dir / "model.h5").string();
    auto model = save_loop_model();
    fill_weights(*model, 0.0f);
    model->save(path);

    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> delay_us(0, 30000);
    float last = 0.0f;
    int killed_mid_write = 0;
    std::set<std::string> seen_temps;
    int rounds = 0;
    // At least 8 kills, and more (up to 40) until 4 of them have landed inside a write.
    for (; rounds < 8 || (killed_mid_write < 4 && rounds < 40); ++rounds) {
        const auto [pid, out] = start_helper(path, static_cast<int>(last) + 1);
        wait_for_first_save(out);
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
        REQUIRE(::kill(pid, SIGKILL) == 0);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFSIGNALED(status));
        ::close(out);

        const float value = file_value(path);
        CHECK(value > last);   // the helper completed a save before it was killed
        last = value;
        // Left in place: the next helper's first save removes it (checked below and after the loop).
        size_t leftovers = 0;
        for (const auto& entry : fs::directory_iterator(dir)) {
            const std::string name = entry.path().filename().string();
            if (name == "model.h5") continue;
            // A killed save's temporary: hidden, and not named like an .h5 file.
            CHECK(name.starts_with(".model.h5.tmp-"));
            CHECK_FALSE(name.ends_with(".h5"));
            killed_mid_write += !seen_temps.count(name);
            seen_temps.insert(name);
            ++leftovers;
        }
        CHECK(leftovers <= 1);   // only this round's kill: the earlier ones were cleaned up by later saves
    }
    // One more save: no stale temporary remains.
    fill_weights(*model, last + 1);
    model->save(path);
    std::vector<std::string> remaining;
    for (const auto& entry : fs::directory_iterator(dir)) remaining.push_back(entry.path().filename().string());
    CHECK(remaining == std::vector<std::string>{"model.h5"});
    MESSAGE("saves completed: " << last << ", kills during a write: " << killed_mid_write << " of " << rounds);
    CHECK(killed_mid_write > 0);   // the kills did land inside writes
    fs::remove_all(dir);
}
