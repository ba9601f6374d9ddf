#pragma once
// A plain sd-bus connection for what the apikeyd client proxy does not do:
// asking the bus driver who owns a name, trying to own a name, and watching
// signals.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sd_bus;

namespace apikeyd::test {

struct ReceivedSignal {
    std::string member;     // e.g. "KeyCreated"
    std::string first_arg;  // the first argument when it is a string, else ""
};

class BusConnection {
  public:
    // Throws std::runtime_error if the bus cannot be reached.
    static BusConnection connect(const std::string& address);
    ~BusConnection();
    BusConnection(BusConnection&& other) noexcept;
    BusConnection& operator=(BusConnection&& other) noexcept;
    BusConnection(const BusConnection&) = delete;
    BusConnection& operator=(const BusConnection&) = delete;

    // org.freedesktop.DBus.NameHasOwner.
    bool name_has_owner(const std::string& name);
    // The pid of the connection that owns `name`; nullopt when nobody owns it.
    std::optional<pid_t> name_owner_pid(const std::string& name);
    // org.freedesktop.DBus.RequestName without queueing. Returns "" when this
    // connection became the primary owner, the D-Bus error name when the call
    // was refused (e.g. org.freedesktop.DBus.Error.AccessDenied by policy), or
    // "reply N" for another RequestName answer.
    std::string request_name(const std::string& name);

    // Calls `member` of org.apikeyd1.Manager without arguments on this
    // connection (Subscribe, Unsubscribe): "" or the D-Bus error name.
    std::string call_manager(const std::string& member);

    // Starts recording the signals of `interface` sent by `sender`.
    void watch_signals(const std::string& sender, const std::string& interface);
    // Waits up to `timeout` for a recorded signal `member` whose first argument is `arg`.
    bool wait_for_signal(const std::string& member, const std::string& arg,
                         std::chrono::milliseconds timeout);
    const std::vector<ReceivedSignal>& signals() const;

  private:
    struct Impl;
    explicit BusConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace apikeyd::test
