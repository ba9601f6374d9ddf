#pragma once
// The a{sv} arguments of org.apikeyd1.Manager: the names and types each
// method knows (docs/dbus-api.md). Shared by the method table and the fuzz
// harness that checks read_options() against them.

#include "dbus/options.hpp"

namespace apikeyd::bus::method_options {
namespace specs {

inline constexpr OptionSpec kCreate[] = {
    {"expires_in_sec", "t"}, {"max_uses", "t"}, {"rate_limit_per_min", "u"}, {"prefix", "s"}};
inline constexpr OptionSpec kImport[] = {{"expires_in_sec", "t"}};
inline constexpr OptionSpec kListFilter[] = {{"state", "s"}, {"limit", "u"}, {"after", "s"}};
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

}  // namespace specs

inline constexpr OptionTable kCreate{"option", specs::kCreate};
inline constexpr OptionTable kImport{"option", specs::kImport};
inline constexpr OptionTable kListFilter{"filter", specs::kListFilter};
inline constexpr OptionTable kChanges{"change", specs::kChanges};
inline constexpr OptionTable kUsage{"option", specs::kUsage};
inline constexpr OptionTable kUsageByDay{"option", specs::kUsageByDay};
inline constexpr OptionTable kAddKeyslot{"option", specs::kAddKeyslot};
inline constexpr OptionTable kUnlockCredentials{"credential", specs::kUnlockCredentials};

}  // namespace apikeyd::bus::method_options
