#include <iostream>
#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct RevokeArgs {
    std::string id;
    std::string reason;
};

int run_revoke(const RevokeArgs& args) {
    auto daemon = client::Client::connect_system();
    daemon.revoke_key(args.id, args.reason);
    std::cout << "Revoked key " << args.id << "." << std::endl;
    return 0;
}

}  // namespace

Runner setup_revoke(CLI::App& command) {
    auto args = std::make_shared<RevokeArgs>();
    command.add_option("ID", args->id, "The key's id, as list shows it")
        ->required()
        ->check(key_id());
    command.add_option("-r,--reason", args->reason, "Why, for the record (shown by show)");
    return [args] { return run_revoke(*args); };
}

}  // namespace apikeyd::cli
