// Running an outside program (Graphviz's dot) without a shell: posix_spawn with an argument vector,
// so no file name is ever parsed as shell syntax.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace keras::plots {

// The first executable file called `name` in the folders of $PATH; nullopt when there is none.
std::optional<std::string> find_on_path(const std::string& name);

struct ProgramResult {
    int exit_code = 0;      // the program's exit status; 128 + N when killed by signal N
    std::string errors;     // what it wrote to stderr (its first 64 KiB)
};

// Runs argv[0] (a path) with these arguments, stdin from /dev/null, stdout discarded, and waits for
// it. RuntimeError when it cannot be started.
ProgramResult run_program(const std::vector<std::string>& argv);

}  // namespace keras::plots
