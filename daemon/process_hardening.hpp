#pragma once

#include "daemon/result.hpp"

namespace apikeyd {

// Done first thing in main: no core dumps, no ptrace by same-uid peers
// (not dumpable), private file modes, and the OpenSSL secure heap for
// every SecretBuffer.
Result<void> harden_process();

}  // namespace apikeyd
