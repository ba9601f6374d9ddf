#include <iostream>
#include <memory>

#include "cli/args.hpp"
#include "cli/clipboard.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/secret.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct RotateArgs {
    std::string id;
    std::string grace;
    bool json = false;
    bool copy = false;
};

// A duration, or 0 for none (the default, spelled out).
const CLI::Validator& grace_period() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return value == "0" || parse_duration_seconds(value)
                       ? ""
                       : "'" + value + "' is not a duration (0, or a number and s, m, h or d: 1h)";
        },
        "", "DURATION");
    return validator;
}

int run_rotate(const RotateArgs& args) {
    const uint64_t grace_sec = parse_duration_seconds(args.grace).value_or(0);
    auto daemon = client::Client::connect_system();
    std::string key = daemon.rotate_key(args.id, grace_sec);
    WipeOnExit wipe_key(key);
    std::string announcement = "Rotated key " + printable(args.id) + ". ";
    if (grace_sec == 0) {
        announcement += "The previous key text no longer works.";
    } else {
        announcement += "The previous key text keeps working for " + duration_text(grace_sec) +
                        ", until " + absolute_time(now_usec() + grace_sec * 1'000'000) + ".";
    }
    print_key_once(args.id, key, announcement, args.json);
    if (args.copy) {
        copy_to_clipboard(key);
    }
    return 0;
}

}  // namespace

Runner setup_rotate(CLI::App& command) {
    auto args = std::make_shared<RotateArgs>();
    command.add_option("ID", args->id, "The issued key's id, as list shows it")
        ->required()
        ->check(key_id());
    command
        .add_option("-g,--grace", args->grace,
                    "Let the previous key text keep working for DURATION (30s, 15m, 1h, 7d; "
                    "default 0: it stops at once)")
        ->type_name("DURATION")
        ->check(grace_period());
    command.add_flag("--json", args->json, "Print {\"id\", \"key\"} as JSON");
    command.add_flag("--copy", args->copy,
                     "Also put the key on the clipboard, and clear it there after 45 seconds");
    command.footer(
        "The key keeps its id, name, scopes, limits and expiry; only its text changes.\n"
        "The new text is the only thing written to standard output, and it is shown\n"
        "this once.\n\n" +
        command.get_footer());
    return [args] { return run_rotate(*args); };
}

}  // namespace apikeyd::cli
