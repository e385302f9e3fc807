// Runs committed inputs through a harness's LLVMFuzzerTestOneInput without libFuzzer, so ordinary
// builds (gcc, no sanitizers) keep every corpus file and every regression reproducer passing. Each
// argument is a file or a folder (its files, not recursive). A non-keras exception fails the run (the
// harness let it through); so does a file taking longer than kMaxSeconds (a hang the fuzzer would
// report as a timeout). A crash fails it by itself.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;
constexpr double kMaxSeconds = 20.0;

std::vector<fs::path> inputs(int argc, char** argv) {
    std::vector<fs::path> out;
    for (int i = 1; i < argc; ++i) {
        if (!fs::is_directory(argv[i])) {
            out.emplace_back(argv[i]);
            continue;
        }
        for (const auto& entry : fs::directory_iterator(argv[i]))
            if (entry.is_regular_file()) out.push_back(entry.path());
    }
    return out;
}

// True when the file passed.
bool replay(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const auto start = std::chrono::steady_clock::now();
    try {
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
        std::printf("FAIL %s: a non-keras exception escaped: %s\n", file.c_str(), e.what());
        return false;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > kMaxSeconds) {
        std::printf("FAIL %s: took %.1f s (limit %.0f s)\n", file.c_str(), seconds, kMaxSeconds);
        return false;
    }
    std::printf("ok   %s (%.3f s)\n", file.c_str(), seconds);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const auto files = inputs(argc, argv);
    if (files.empty()) {
        std::printf("no input files in the arguments\n");
        return 1;
    }
    int failed = 0;
    for (const auto& file : files) failed += replay(file) ? 0 : 1;
    std::printf("%zu files, %d failed\n", files.size(), failed);
    return failed == 0 ? 0 : 1;
}
