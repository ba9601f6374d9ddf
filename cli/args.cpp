#include "cli/args.hpp"

#include <charconv>
#include <limits>
#include <string>

namespace apikeyd::cli {
namespace {

bool is_id(std::string_view text, std::string_view prefix, size_t random_chars) {
    if (text.size() != prefix.size() + random_chars || !text.starts_with(prefix)) {
        return false;
    }
    for (const char c : text.substr(prefix.size())) {
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<uint64_t> parse_whole_number(std::string_view text) {
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<uint64_t> parse_count(std::string_view text) {
    const auto value = parse_whole_number(text);
    if (!value || *value == 0) {
        return std::nullopt;
    }
    return value;
}

std::optional<uint64_t> parse_duration_seconds(std::string_view text) {
    if (text.size() < 2) {
        return std::nullopt;
    }
    uint64_t unit = 0;
    switch (text.back()) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return std::nullopt;
    }
    // Bounded so that the expiry still fits in microseconds after adding
    // it to the current time; apikeyd's own limit is far lower.
    constexpr uint64_t kMaxSeconds = std::numeric_limits<uint64_t>::max() / 1'000'000 / 2;
    const auto count = parse_count(text.substr(0, text.size() - 1));
    if (!count || *count > kMaxSeconds / unit) {
        return std::nullopt;
    }
    return *count * unit;
}

const CLI::Validator& key_id() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return is_id(value, "k_", 12) ? "" : "not a key id (k_ followed by 12 of a-z, 2-7)";
        },
        "", "KEY_ID");
    return validator;
}

const CLI::Validator& keyslot_id() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return is_id(value, "ks_", 8) ? "" : "not a keyslot id (ks_ followed by 8 of a-z, 2-7)";
        },
        "", "KEYSLOT_ID");
    return validator;
}

const CLI::Validator& duration() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return parse_duration_seconds(value)
                       ? ""
                       : "'" + value + "' is not a duration (a number and s, m, h or d: 30d)";
        },
        "", "DURATION");
    return validator;
}

const CLI::Validator& positive_count() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return parse_count(value) ? "" : "'" + value + "' is not a whole number from 1 up";
        },
        "", "COUNT");
    return validator;
}

const CLI::Validator& whole_number() {
    static const CLI::Validator validator(
        [](std::string& value) -> std::string {
            return parse_whole_number(value) ? "" : "'" + value + "' is not a whole number";
        },
        "", "N");
    return validator;
}

}  // namespace apikeyd::cli
