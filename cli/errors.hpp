#pragma once
// Exit statuses and the one-sentence messages apikeyctl prints for failures.

#include <stdexcept>

#include "dbus/client.hpp"

namespace apikeyd::cli {

enum ExitStatus : int {
    kExitOk = 0,
    kExitInvalid = 1,      // verify: the key is not valid; scan: a live key was found
    kExitUsage = 2,        // bad arguments or unusable input
    kExitDaemonError = 3,  // apikeyd refused or failed the request
    kExitUnreachable = 4,  // no bus, or apikeyd is not on it
};

class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Prints the sentence for `error` on stderr, prefixed "apikeyctl: ", and
// returns the exit status for it.
int report_bus_error(const client::BusError& error);

}  // namespace apikeyd::cli
