#pragma once
// Reads an a{sv} argument against a table of the names and types a method
// knows. An unknown name or a wrong type is refused with InvalidArgument
// naming it: a typo must never silently drop an expiry.

#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/secret.hpp"
#include "daemon/result.hpp"

namespace apikeyd::bus {

struct OptionSpec {
    std::string_view name;
    std::string_view type;  // "s", "t", "u", "b", "as" or "au"
    // A secret string (a PIN, a recovery key) is read straight into a
    // SecretBuffer so that no ordinary copy of it is made.
    bool secret = false;
};

using OptionValue = std::variant<std::string, uint64_t, uint32_t, bool, std::vector<std::string>,
                                 std::vector<uint32_t>, SecretBuffer>;
using Options = std::map<std::string, OptionValue, std::less<>>;

// `what` names the argument in messages ("option", "filter", "change").
Result<Options> read_options(sd_bus_message* m, std::span<const OptionSpec> known,
                             std::string_view what);

}  // namespace apikeyd::bus
