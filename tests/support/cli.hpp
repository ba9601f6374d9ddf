#pragma once
// Runs the real apikeyctl against a test bus.

#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace apikeyd::test {

// apikeyctl ARGS with DBUS_SYSTEM_BUS_ADDRESS=bus_address (plus `extra_env`,
// "NAME=value"), `stdin_text` on its stdin (a pipe, never a terminal).
ProcessResult run_cli(const std::string& bus_address, const std::vector<std::string>& args,
                      const std::string& stdin_text = "",
                      const std::vector<std::string>& extra_env = {});

}  // namespace apikeyd::test
