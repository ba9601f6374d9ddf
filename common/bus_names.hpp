#pragma once
// Where org.apikeyd1 lives on the bus: one definition for the daemon, the
// client, the benchmarks and the tests (dbus/org.apikeyd1.Manager.xml is
// the contract these name).

namespace apikeyd::bus_names {

inline constexpr const char* kBusName = "org.apikeyd1";
inline constexpr const char* kObjectPath = "/org/apikeyd1";
inline constexpr const char* kInterface = "org.apikeyd1.Manager";

}  // namespace apikeyd::bus_names
