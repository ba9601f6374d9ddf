#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
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

// Calls `each` with every page of the keys the filter lets through, in
// creation order: only one page is held at a time, whatever the store's size.
template <class Each>
void for_each_page(client::Client& daemon, bool all, Each&& each) {
    client::Dict filter = {{"state", std::string(all ? "all" : "active")}, {"limit", kPageSize}};
    for (;;) {
        const auto page = daemon.list_keys(filter);
        const bool full = page.size() == kPageSize;
        if (full) {
            filter.insert_or_assign("after", text_field(page.back(), "id"));
        }
        each(page);
        if (!full) {
            return;
        }
    }
}

// The array print_json would print, written element by element.
class JsonArrayWriter {
  public:
    void add(const client::Dict& key) {
        std::string element =
            to_json(key).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        std::cout << (count_++ == 0 ? "[\n  " : ",\n  ");
        for (const char c : element) {
            std::cout << c;
            if (c == '\n') {
                std::cout << "  ";
            }
        }
    }
    void close() { std::cout << (count_ == 0 ? "[]\n" : "\n]\n"); }

  private:
    size_t count_ = 0;
};

int run_list(const ListArgs& args) {
    auto daemon = client::Client::connect_system();
    if (args.json) {
        JsonArrayWriter array;
        for_each_page(daemon, args.all, [&](const std::vector<client::Dict>& page) {
            for (const auto& key : page) {
                array.add(key);
            }
        });
        array.close();
        return 0;
    }
    // Only the cells are kept, not the keys' whole info dictionaries.
    const uint64_t now = now_usec();
    Table table({"ID", "NAME", "SCOPES", "STATE", "CREATED", "LAST USED"});
    for_each_page(daemon, args.all, [&](const std::vector<client::Dict>& page) {
        for (const auto& key : page) {
            const auto scopes = list_field(key, "scopes");
            table.add_row({text_field(key, "id"), text_field(key, "name"),
                           scopes.empty() ? "-" : join(scopes, ","), text_field(key, "state"),
                           relative_time(number_field(key, "created_usec"), now),
                           relative_time(number_field(key, "last_used_usec"), now)});
        }
    });
    if (table.empty()) {
        std::cout << (args.all ? "No keys.\n"
                               : "No active keys. Use --all to include revoked and expired "
                                 "keys.\n");
        return 0;
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
