// apikeyd_command_time: runs commands many times as whole processes (spawn
// to exit, output discarded) and prints, per command, the median time as a
// JSON line. With several commands (separated by :::), the runs take turns,
// one of each in every round, so that all of them meet the same moments of
// a shared, drifting machine and their differences mean something.
// Every run must exit 0: a failing command would time its error path.
//   apikeyd_command_time --runs N -- /bin/true ::: apikeyctl get k_...

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

namespace {

constexpr const char* kSeparator = ":::";

std::vector<std::vector<std::string>> split_commands(const std::vector<std::string>& words) {
    std::vector<std::vector<std::string>> commands(1);
    for (const auto& word : words) {
        if (word == kSeparator) {
            commands.emplace_back();
        } else {
            commands.back().push_back(word);
        }
    }
    for (const auto& command : commands) {
        if (command.empty()) {
            throw std::invalid_argument("an empty command around :::");
        }
    }
    return commands;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace apikeyd::bench;
    size_t runs = 200;
    std::vector<std::string> words;
    CLI::App app{"Time commands from spawn to exit, many times, taking turns"};
    app.add_option("--runs", runs, "Timed runs of each command (a few untimed runs come first)");
    app.add_option("command", words, "The commands and their arguments, separated by :::")
        ->required();
    CLI11_PARSE(app, argc, argv);
    try {
        const auto commands = split_commands(words);
        const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        constexpr size_t kWarmup = 3;
        std::vector<std::vector<double>> ms(commands.size());
        for (size_t i = 0; i < runs + kWarmup; ++i) {
            for (size_t c = 0; c < commands.size(); ++c) {
                const auto start = std::chrono::steady_clock::now();
                const int status = wait_for(spawn(SpawnSpec{commands[c], {}, null_fd, null_fd}));
                const auto end = std::chrono::steady_clock::now();
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    throw std::runtime_error(commands[c].at(0) + " " +
                                             describe_wait_status(status));
                }
                if (i >= kWarmup) {
                    ms[c].push_back(std::chrono::duration<double, std::milli>(end - start).count());
                }
            }
        }
        for (auto& samples : ms) {
            const nlohmann::json line = {
                {"runs", runs},
                {"median_ms", median(samples)},
                {"p90_ms", percentile(samples, 0.9)},
                {"min_ms", percentile(samples, 0.0)},
            };
            std::cout << line.dump() << std::endl;
        }
        return EXIT_SUCCESS;
    } catch (const std::exception& e) {
        std::cerr << "apikeyd_command_time: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
