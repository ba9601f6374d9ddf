#pragma once
// Maps the core's errors to the named D-Bus errors of the contract. Internal
// failures are logged in full and answered with fixed text, so a client
// never sees a path, an SQL message or anything else it should not.

#include <systemd/sd-bus.h>

#include "daemon/result.hpp"

namespace apikeyd::bus {

const char* error_name(ErrorCode code);

// Fills `ret` and returns the negative errno sd-bus expects from a handler.
int reply_error(sd_bus_error* ret, const Error& error, const char* method);

}  // namespace apikeyd::bus
