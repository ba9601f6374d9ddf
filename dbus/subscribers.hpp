#pragma once
// Who hears of a change to a key: the connections that called Subscribe,
// each with its caller's UID, and of those only the key's owner's and
// root's. Each gets the signal addressed to it alone. A broadcast signal
// reaches every match rule on the bus, and with it the ids of every user's
// keys; a signal with a destination reaches that connection only.
//
// A subscription ends with Unsubscribe or when its connection leaves the
// bus, which sd_bus_track notices. Subscriptions are bounded per UID and in
// all, since every local user can make them.

#include <systemd/sd-bus.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/result.hpp"
#include "dbus/marshal.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bus {

class Subscribers {
  public:
    // Enough for every watcher one user runs (apikeyctl watch, a service
    // or two), few enough that a user cannot crowd out the others.
    static constexpr size_t kMaxPerUid = 16;
    // sd_bus_track makes the daemon's connection hold one match rule per
    // subscriber; dbus-daemon allows a connection 512 by default, and
    // sd-bus closes the connection when the bus refuses one. So the total
    // stays well below that, leaving room for the daemon's other matches.
    static constexpr size_t kMaxTotal = 256;

    explicit Subscribers(sd_bus* bus) : bus_(bus) {}
    Subscribers(const Subscribers&) = delete;
    Subscribers& operator=(const Subscribers&) = delete;

    // Subscribes the connection `name` of user `uid`; again is a no-op.
    // LimitExceeded past the bounds above.
    Result<void> subscribe(std::string_view name, uint32_t uid);
    // NotSubscribed when `name` holds no subscription.
    Result<void> unsubscribe(std::string_view name);
    // Sends `signal` to each subscriber of the key's owner and of root.
    void send(const KeySignal& signal) const;

  private:
    struct Subscription {
        Subscribers* owner;
        std::string name;
        uint32_t uid;
        sdbus::TrackPtr track;  // says when the connection leaves the bus
    };
    static int on_connection_gone(sd_bus_track* track, void* userdata);
    void erase(const std::string& name);

    sd_bus* bus_;
    std::unordered_map<std::string, std::unique_ptr<Subscription>> by_name_;
    std::unordered_map<uint32_t, size_t> per_uid_;
};

}  // namespace apikeyd::bus
