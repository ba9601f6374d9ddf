#include <cstdint>
#include <iostream>
#include <iterator>
#include <memory>
#include <vector>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct ListArgs {
    bool all = false;
    bool json = false;
};

// Keys per ListKeys call: the daemon's most, so a store of any size is read
// in as few replies as it allows.
constexpr uint32_t kPageSize = 1000;

// Every key the filter lets through, a page at a time, in creation order.
std::vector<client::Dict> list_all(client::Client& daemon, bool all) {
    client::Dict filter = {{"state", std::string(all ? "all" : "active")}, {"limit", kPageSize}};
    std::vector<client::Dict> keys;
    for (;;) {
        auto page = daemon.list_keys(filter);
        const bool full = page.size() == kPageSize;
        if (full) {
            filter.insert_or_assign("after", text_field(page.back(), "id"));
        }
        keys.insert(keys.end(), std::make_move_iterator(page.begin()),
                    std::make_move_iterator(page.end()));
        if (!full) {
            return keys;
        }
    }
}

int run_list(const ListArgs& args) {
    auto daemon = client::Client::connect_system();
    const std::vector<client::Dict> keys = list_all(daemon, args.all);

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
