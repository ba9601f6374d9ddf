#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string_view>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "version.hpp"

namespace apikeyd::cli {
namespace {

constexpr const char* kDescription =
    "apikeyctl creates, lists, checks and revokes API keys kept by apikeyd, and keeps\n"
    "secrets that others issued to you. It talks to apikeyd over the system D-Bus\n"
    "(or the bus in $DBUS_SYSTEM_BUS_ADDRESS); you see and change only your own keys.\n"
    "root also manages the keyslots that seal apikeyd's master key, and unlocks it.";

constexpr const char* kExitStatus =
    "Exit status: 0 success; 1 verify: the key is not valid, scan: a live key was\n"
    "found; 2 usage error; 3 apikeyd refused or failed the request; 4 apikeyd cannot\n"
    "be reached (run: the command's own status).\n"
    "Key text and secrets are read from standard input, never from arguments.";

// "apikeyctl keyslot add", from any command up the tree.
std::string command_path(const CLI::App* app) {
    std::string path = app->get_name();
    for (app = app->get_parent(); app != nullptr; app = app->get_parent()) {
        path = app->get_name() + " " + path;
    }
    return path;
}

// Points at the help of the deepest command the parser got to.
std::string failure_message(const CLI::App* app, const CLI::Error& error) {
    for (auto chosen = app->get_subcommands(); !chosen.empty();
         chosen = chosen.front()->get_subcommands()) {
        app = chosen.front();
    }
    return "apikeyctl: " + std::string(error.what()) + "\nRun '" + command_path(app) +
           " --help' for more information.\n";
}

// The words of the command line. Setting up every command's options (CLI11
// builds strings, validators and functions for each) took about a
// millisecond of every start here, a tenth of a short `apikeyctl get`, so a
// command is set up only if its name is one of these words; the others keep
// only the name and summary that help lists.
std::span<char*> command_line_words;

bool named_on_command_line(std::string_view name) {
    return std::ranges::any_of(command_line_words,
                               [name](const char* word) { return word == name; });
}

}  // namespace

Runner add_commands(CLI::App& parent, std::span<const Command> commands) {
    auto runners = std::make_shared<std::map<const CLI::App*, Runner>>();
    for (const Command& command : commands) {
        CLI::App* sub = parent.add_subcommand(command.name, command.summary);
        if (named_on_command_line(command.name)) {
            runners->emplace(sub, command.setup(*sub));
        }
    }
    return [&parent, runners]() -> int {
        // Checked here rather than with require_subcommand(), which would
        // call a mistyped command "missing" instead of naming it as unexpected.
        const auto chosen = parent.get_subcommands();
        if (chosen.empty()) {
            std::cerr << "apikeyctl: A command is required\n"
                      << "Run '" << command_path(&parent) << " --help' for more information."
                      << std::endl;
            return kExitUsage;
        }
        return runners->at(chosen.front())();
    };
}

int run(int argc, char** argv, std::span<const Command> commands) {
    command_line_words = std::span(argv, static_cast<size_t>(argc)).subspan(argc > 0 ? 1 : 0);

    CLI::App app(kDescription, "apikeyctl");
    app.set_version_flag("--version", std::string(kVersion));
    app.footer(kExitStatus);
    app.failure_message(failure_message);
    const Runner chosen_command = add_commands(app, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    try {
        return chosen_command();
    } catch (const UsageError& e) {
        std::cerr << "apikeyctl: " << e.what() << "." << std::endl;
        return kExitUsage;
    } catch (const client::BusError& e) {
        return report_bus_error(e);
    } catch (const std::exception& e) {
        std::cerr << "apikeyctl: " << printable(e.what()) << "." << std::endl;
        return kExitDaemonError;
    }
}

}  // namespace apikeyd::cli
