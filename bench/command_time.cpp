// apikeyd_command_time: runs one command many times as a whole process
// (spawn to exit, output discarded) and prints the median time as JSON.
// Every run must exit 0: a failing command would time its error path.
//   apikeyd_command_time --runs N -- apikeyctl get k_...

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "bench/spawn.hpp"
#include "bench/stats.hpp"

int main(int argc, char** argv) {
    using namespace apikeyd::bench;
    size_t runs = 200;
    std::vector<std::string> command;
    CLI::App app{"Time a command from spawn to exit, many times"};
    app.add_option("--runs", runs, "Timed runs (a few untimed runs come first)");
    app.add_option("command", command, "The command and its arguments")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        constexpr size_t kWarmup = 3;
        std::vector<double> ms;
        for (size_t i = 0; i < runs + kWarmup; ++i) {
            const auto start = std::chrono::steady_clock::now();
            const int status = wait_for(spawn(SpawnSpec{command, {}, null_fd, null_fd}));
            const auto end = std::chrono::steady_clock::now();
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                throw std::runtime_error(command.at(0) + " " + describe_wait_status(status));
            }
            if (i >= kWarmup) {
                ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
            }
        }
        const nlohmann::json line = {
            {"runs", runs},
            {"median_ms", median(ms)},
            {"p90_ms", percentile(ms, 0.9)},
            {"min_ms", percentile(ms, 0.0)},
        };
        std::cout << line.dump() << std::endl;
        return EXIT_SUCCESS;
    } catch (const std::exception& e) {
        std::cerr << "apikeyd_command_time: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
