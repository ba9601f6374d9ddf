#pragma once
// Small helpers for reading the daemon's answers in tests: typed access to
// a{sv} fields with readable failures, D-Bus errors as values, JSON renderings
// for assertion messages, and key texts that are well-formed but never issued.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dbus/client.hpp"

namespace apikeyd::test {

using client::Dict;
using client::Value;

nlohmann::json to_json(const Value& value);
nlohmann::json to_json(const Dict& dict);
nlohmann::json to_json(const std::vector<Dict>& dicts);

// The field `key` of `dict` as a T; throws std::runtime_error naming the field
// and showing the dictionary if it is missing or of another type.
template <class T>
T field(const Dict& dict, const std::string& key) {
    const auto it = dict.find(key);
    if (it == dict.end()) {
        throw std::runtime_error("field '" + key + "' missing in " + to_json(dict).dump());
    }
    if (const T* value = std::get_if<T>(&it->second)) {
        return *value;
    }
    throw std::runtime_error("field '" + key + "' has another type in " + to_json(dict).dump());
}

struct CaughtError {
    bool thrown = false;
    std::string name;  // e.g. "org.apikeyd1.Error.NotFound"
    std::string message;
};
// Runs `call`; a BusError becomes a value, other exceptions pass through.
CaughtError catch_bus_error(const std::function<void()>& call);
// Just the error name, "" when the call succeeded.
std::string bus_error_name(const std::function<void()>& call);

std::optional<Dict> find_by_id(const std::vector<Dict>& keys, const std::string& id);
std::vector<std::string> ids_of(const std::vector<Dict>& keys);

// A ListKeys filter with the given state ("active", "revoked", "expired", "all").
Dict state_filter(const std::string& state);

// The 32 random characters of an issued key text.
std::string random_part(const std::string& key);
// A key text with a correct checksum that the daemon never issued.
std::string unissued_key(std::string_view prefix = "ak");
// `key` with one random character changed: the checksum no longer matches.
std::string with_typo(const std::string& key);

std::vector<uint8_t> bytes_of(std::string_view text);
std::vector<uint8_t> random_bytes(size_t n);

// Microseconds since the epoch (CLOCK_REALTIME), as the daemon's *_usec fields.
uint64_t now_usec();

}  // namespace apikeyd::test
