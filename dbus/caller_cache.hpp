#pragma once
// Who is calling: the effective UID of the bus peer, asked from the bus
// itself, never from what the caller claims and never from /proc
// (augmented credentials are racy). The PID, executable and unit, for
// people reading the audit only, come along (the last two from /proc). Asking the bus driver is a
// synchronous round trip, so the answer is kept per unique name; a unique
// name is never reused on a bus, and the entry is dropped when the bus says
// the name has gone.

#include <systemd/sd-bus.h>

#include <string>
#include <unordered_map>

#include "daemon/key_service.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bus {

// The caller's effective UID from `creds`, only as the bus vouched for it:
// an EUID that sd-bus had to read from /proc (augmented) is refused, since
// the process behind a PID can change between the call and the read.
Result<uid_t> trusted_euid(sd_bus_creds* creds);

class CallerCache {
  public:
    // Subscribes to NameOwnerChanged for names that lose their owner.
    static Result<std::unique_ptr<CallerCache>> create(sd_bus* bus);

    Result<Caller> caller_of(sd_bus_message* m);
    size_t size() const { return callers_.size(); }

  private:
    CallerCache() = default;
    static int on_name_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error* ret);

    std::unordered_map<std::string, Caller> callers_;
    sdbus::SlotPtr match_;
};

}  // namespace apikeyd::bus
