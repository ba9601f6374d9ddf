#pragma once
// The a{sv} arguments of org.apikeyd1.Manager: the names and types each
// method knows (docs/dbus-api.md). Shared by
// the server and the fuzz harness that checks read_options() against them.

#include "dbus/options.hpp"

namespace apikeyd::bus::method_options {

inline constexpr OptionSpec kCreate[] = {
    {"expires_in_sec", "t"}, {"max_uses", "t"}, {"rate_limit_per_min", "u"}, {"prefix", "s"}};
inline constexpr OptionSpec kImport[] = {{"expires_in_sec", "t"}};
inline constexpr OptionSpec kListFilter[] = {{"state", "s"}};
inline constexpr OptionSpec kChanges[] = {{"name", "s"},
                                          {"description", "s"},
                                          {"scopes", "as"},
                                          {"expires_in_sec", "t"},
                                          {"never_expires", "b"},
                                          {"max_uses", "t"},
                                          {"rate_limit_per_min", "u"}};
inline constexpr OptionSpec kUsage[] = {{"since_usec", "t"}, {"limit", "u"}};
inline constexpr OptionSpec kUsageByDay[] = {{"days", "u"}};
inline constexpr OptionSpec kAddKeyslot[] = {
    {"tcti", "s"}, {"pcrs", "au"}, {"uri", "s"}, {"pin", "s", true}};
inline constexpr OptionSpec kUnlockCredentials[] = {
    {"pin", "s", true}, {"recovery_key", "s", true}, {"keyslot", "s"}};

}  // namespace apikeyd::bus::method_options
