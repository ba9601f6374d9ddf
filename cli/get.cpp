#include <unistd.h>

#include <memory>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/terminal.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct GetArgs {
    std::string id;
};

int run_get(const GetArgs& args) {
    auto daemon = client::Client::connect_system();
    std::vector<uint8_t> secret = daemon.get_secret(args.id);
    WipeOnExit wipe_secret(secret);
    write_all(STDOUT_FILENO, {reinterpret_cast<const char*>(secret.data()), secret.size()});
    // Only a person reading a terminal needs the line end; a pipe gets the
    // exact bytes.
    if (is_tty(STDOUT_FILENO)) {
        write_all(STDOUT_FILENO, "\n");
    }
    return 0;
}

}  // namespace

Runner setup_get(CLI::App& command) {
    auto args = std::make_shared<GetArgs>();
    command.add_option("ID", args->id, "The imported secret's id, as list shows it")
        ->required()
        ->check(key_id());
    command.footer(
        "Writes the secret's exact bytes to standard output, plus a newline only when\n"
        "that is a terminal. Only imported secrets can be read back, not issued keys.\n\n" +
        command.get_footer());
    return [args] { return run_get(*args); };
}

}  // namespace apikeyd::cli
