#include <clocale>
#include <iostream>
#include <map>

#include "cli/command.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "version.hpp"

namespace apikeyd::cli {
namespace {

constexpr const char* kDescription =
    "apikeyctl creates, lists, checks and revokes API keys kept by apikeyd, and keeps\n"
    "secrets that others issued to you. It talks to apikeyd over the system D-Bus\n"
    "(or the bus in $DBUS_SYSTEM_BUS_ADDRESS); you see and change only your own keys.";

constexpr const char* kExitStatus =
    "Exit status: 0 success; 1 verify: the key is not valid; 2 usage error;\n"
    "3 apikeyd refused or failed the request; 4 apikeyd cannot be reached.\n"
    "Key text and secrets are read from standard input, never from arguments.";

std::string failure_message(const CLI::App* app, const CLI::Error& error) {
    std::string help = "apikeyctl";
    for (const CLI::App* command : app->get_subcommands()) {
        help += " " + command->get_name();
    }
    return "apikeyctl: " + std::string(error.what()) + "\nRun '" + help +
           " --help' for more information.\n";
}

}  // namespace

int run(int argc, char** argv, std::span<const Command> commands) {
    // For the display width of names in tables; nothing else depends on it.
    std::setlocale(LC_CTYPE, "");

    CLI::App app(kDescription, "apikeyctl");
    app.set_version_flag("--version", std::string(kVersion));
    app.footer(kExitStatus);
    app.failure_message(failure_message);

    std::map<const CLI::App*, Runner> runners;
    for (const Command& command : commands) {
        CLI::App* sub = app.add_subcommand(command.name, command.summary);
        runners.emplace(sub, command.setup(*sub));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    // Checked here rather than with require_subcommand(), which would call a
    // mistyped command "missing" instead of naming it as unexpected.
    if (app.get_subcommands().empty()) {
        std::cerr << "apikeyctl: A command is required\n"
                  << "Run 'apikeyctl --help' for more information." << std::endl;
        return kExitUsage;
    }
    try {
        return runners.at(app.get_subcommands().front())();
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
