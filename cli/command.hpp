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
Runner setup_update(CLI::App& command);
Runner setup_rotate(CLI::App& command);
Runner setup_usage(CLI::App& command);
Runner setup_watch(CLI::App& command);
Runner setup_sign(CLI::App& command);
Runner setup_run(CLI::App& command);
Runner setup_scan(CLI::App& command);
Runner setup_status(CLI::App& command);
Runner setup_unlock(CLI::App& command);
Runner setup_keyslot(CLI::App& command);
Runner setup_keyslot_list(CLI::App& command);
Runner setup_keyslot_add(CLI::App& command);
Runner setup_keyslot_add_tpm2(CLI::App& command);
Runner setup_keyslot_add_pkcs11(CLI::App& command);
Runner setup_keyslot_add_recovery(CLI::App& command);
Runner setup_keyslot_remove(CLI::App& command);

// Adds `commands` below `parent` (apikeyctl itself, or a group such as
// keyslot); the returned Runner runs whichever of them the command line chose.
Runner add_commands(CLI::App& parent, std::span<const Command> commands);

// Parses the command line, runs the chosen command and returns the exit
// status, having printed any error.
int run(int argc, char** argv, std::span<const Command> commands);

}  // namespace apikeyd::cli
