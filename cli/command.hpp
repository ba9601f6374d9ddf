#pragma once
// The shape of an apikeyctl subcommand: a setup function adds its arguments
// to a CLI11 subcommand and returns the function that runs it once parsed.

#include <functional>
#include <span>

#include <CLI/CLI.hpp>

namespace apikeyd::cli {

using Runner = std::function<int()>;
using Setup = Runner (*)(CLI::App& command);

struct Command {
    const char* name;
    const char* summary;
    Setup setup;
};

Runner setup_create(CLI::App& command);
Runner setup_list(CLI::App& command);
Runner setup_show(CLI::App& command);
Runner setup_revoke(CLI::App& command);
Runner setup_verify(CLI::App& command);
Runner setup_import(CLI::App& command);
Runner setup_get(CLI::App& command);
Runner setup_status(CLI::App& command);

// Parses the command line, runs the chosen command and returns the exit
// status, having printed any error.
int run(int argc, char** argv, std::span<const Command> commands);

}  // namespace apikeyd::cli
