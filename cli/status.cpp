#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct StatusArgs {
    bool json = false;
};

int run_status(const StatusArgs& args) {
    auto daemon = client::Client::connect_system();
    const client::Dict status = daemon.get_status();
    if (args.json) {
        print_json(to_json(status));
        return 0;
    }

    const uint64_t now = now_usec();
    std::string state = "unlocked";
    if (flag_field(status, "locked")) {
        const std::string reason = text_field(status, "lock_reason");
        state = reason.empty() ? "locked" : "locked: " + reason;
    }
    const auto keyslots = dicts_field(status, "keyslots");
    print_fields(std::cout, {
                                {"Version", text_field(status, "version")},
                                {"State", state},
                                {"Keys", std::to_string(number_field(status, "keys"))},
                                {"Keyslots", std::to_string(keyslots.size())},
                            });
    if (!keyslots.empty()) {
        Table table({"ID", "TYPE", "CREATED"});
        for (const auto& slot : keyslots) {
            table.add_row({text_field(slot, "id"), text_field(slot, "type"),
                           relative_time(number_field(slot, "created_usec"), now)});
        }
        table.print(std::cout, "  ");
    }
    for (const auto& warning : list_field(status, "warnings")) {
        std::cout << "Warning: " << printable(warning) << '\n';
    }
    return 0;
}

}  // namespace

Runner setup_status(CLI::App& command) {
    auto args = std::make_shared<StatusArgs>();
    command.add_flag("--json", args->json, "Print the status dictionary as JSON");
    return [args] { return run_status(*args); };
}

}  // namespace apikeyd::cli
