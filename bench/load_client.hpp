#pragma once
// One client of the load tool: its own sd-bus connection to a bus address and
// one synchronous call per operation, marshalled as apikeyctl marshals them
// (sensitive where a key or a secret travels), so the daemon and the bus see
// what real clients send. Every failure throws std::runtime_error.

#include <cstdint>
#include <span>
#include <string>

#include "dbus/sdbus.hpp"

namespace apikeyd::bench {

struct IssuedKey {
    std::string id;
    std::string key;
};

class LoadClient {
  public:
    explicit LoadClient(const std::string& address);

    // The floor the bus sets: org.freedesktop.DBus.Peer.Ping on the daemon's
    // name, a round trip through dbus-daemon that sd-bus answers without
    // calling into apikeyd's code.
    void ping();
    // Throws unless the daemon answers valid = true.
    void verify_key(const std::string& key, const char* scope);
    void get_secret(const std::string& id);
    IssuedKey create_key(const char* name);
    std::string import_secret(const char* name, std::span<const uint8_t> secret);

  private:
    sdbus::MessagePtr new_call(const char* interface, const char* member, bool sensitive);
    sdbus::MessagePtr call(sdbus::MessagePtr request);

    sdbus::BusPtr bus_;
};

}  // namespace apikeyd::bench
