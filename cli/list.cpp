#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct ListArgs {
    bool all = false;
    bool json = false;
};

int run_list(const ListArgs& args) {
    auto daemon = client::Client::connect_system();
    const client::Dict filter = {{"state", std::string(args.all ? "all" : "active")}};
    const std::vector<client::Dict> keys = daemon.list_keys(filter);

    if (args.json) {
        auto array = nlohmann::json::array();
        for (const auto& key : keys) {
            array.push_back(to_json(key));
        }
        print_json(array);
        return 0;
    }
    if (keys.empty()) {
        std::cout << (args.all ? "No keys.\n"
                               : "No active keys. Use --all to include revoked and expired "
                                 "keys.\n");
        return 0;
    }
    const uint64_t now = now_usec();
    Table table({"ID", "NAME", "SCOPES", "STATE", "CREATED", "LAST USED"});
    for (const auto& key : keys) {
        const auto scopes = list_field(key, "scopes");
        table.add_row({text_field(key, "id"), text_field(key, "name"),
                       scopes.empty() ? "-" : join(scopes, ","), text_field(key, "state"),
                       relative_time(number_field(key, "created_usec"), now),
                       relative_time(number_field(key, "last_used_usec"), now)});
    }
    table.print(std::cout);
    return 0;
}

}  // namespace

Runner setup_list(CLI::App& command) {
    auto args = std::make_shared<ListArgs>();
    command.add_flag("-a,--all", args->all, "Include revoked and expired keys");
    command.add_flag("--json", args->json, "Print a JSON array of the keys' info dictionaries");
    return [args] { return run_list(*args); };
}

}  // namespace apikeyd::cli
