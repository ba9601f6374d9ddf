#pragma once
// Argument types shared by the subcommands, checked at parse time so that a
// wrong value is a usage error (exit 2) before anything is sent.

#include <cstdint>
#include <optional>
#include <string_view>

#include <CLI/CLI.hpp>

namespace apikeyd::cli {

// k_ followed by 12 characters of a-z and 2-7. The message never repeats
// the value: people paste key text where an id belongs.
const CLI::Validator& key_id();

// ks_ followed by 8 characters of a-z and 2-7.
const CLI::Validator& keyslot_id();

// A number with a unit: 3600s, 90m, 12h, 30d.
const CLI::Validator& duration();
std::optional<uint64_t> parse_duration_seconds(std::string_view text);

// A whole number from 1 up.
const CLI::Validator& positive_count();
std::optional<uint64_t> parse_count(std::string_view text);

// A whole number from 0 up, for limits where 0 means none.
const CLI::Validator& whole_number();
std::optional<uint64_t> parse_whole_number(std::string_view text);

}  // namespace apikeyd::cli
