#include <time.h>

#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "dbus/client.hpp"

namespace apikeyd::cli {
namespace {

struct WatchArgs {
    bool json = false;
};

// "created" for KeyCreated; a signal a newer apikeyd adds is shown as named.
std::string event_name(const std::string& member) {
    static constexpr std::pair<std::string_view, std::string_view> kEvents[] = {
        {"KeyCreated", "created"}, {"KeyChanged", "changed"}, {"KeyRevoked", "revoked"}};
    for (const auto& [signal, event] : kEvents) {
        if (member == signal) {
            return std::string(event);
        }
    }
    return member;
}

// UTC in ISO 8601, which sorts and can be compared with other logs.
std::string utc_timestamp(uint64_t usec) {
    const auto seconds = static_cast<time_t>(usec / 1'000'000);
    tm utc{};
    char text[32];
    if (gmtime_r(&seconds, &utc) == nullptr ||
        strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) {
        return "@" + std::to_string(seconds);
    }
    return text;
}

int run_watch(const WatchArgs& args) {
    auto daemon = client::Client::connect_system();
    daemon.watch(
        [] {
            std::cerr << "Watching for keys being created, changed and revoked; Ctrl-C stops."
                      << std::endl;
        },
        [&args](const client::Signal& signal) {
            const uint64_t now = now_usec();
            const std::string event = event_name(signal.member);
            // One line per signal, flushed at once: watch is read by people
            // and by scripts as things happen.
            if (args.json) {
                std::cout << nlohmann::json{{"time", utc_timestamp(now)},
                                            {"time_usec", now},
                                            {"event", event},
                                            {"id", signal.id}}
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                          << std::endl;
            } else {
                std::cout << utc_timestamp(now) << " " << printable(event) << " "
                          << printable(signal.id) << std::endl;
            }
            return static_cast<bool>(std::cout);
        });
    return 0;
}

}  // namespace

Runner setup_watch(CLI::App& command) {
    auto args = std::make_shared<WatchArgs>();
    command.add_flag(
        "--json", args->json,
        "Print one JSON object per line: {\"time\", \"time_usec\", \"event\", \"id\"}");
    command.footer(
        "Prints a line for every key of yours created, changed (updated or rotated) or\n"
        "revoked, as it happens, until interrupted; root sees every user's keys. At most\n"
        "16 watchers (connections that subscribed) per user at a time.\n\n" +
        command.get_footer());
    return [args] { return run_watch(*args); };
}

}  // namespace apikeyd::cli
