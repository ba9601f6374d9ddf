#pragma once
// The issued-key text format: <prefix>_<32 Base62 random chars><6 Base62 chars
// of CRC-32>. Shared by the daemon (issuing, checking) and `apikeyctl scan`
// (finding leaked keys offline). Pure functions, no allocation of secrets:
// callers pass views of their own (wiped) buffers.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace apikeyd::key_format {

inline constexpr std::string_view kDefaultPrefix = "ak";
inline constexpr size_t kMinPrefixLength = 1;
inline constexpr size_t kMaxPrefixLength = 16;
inline constexpr size_t kRandomLength = 32;
inline constexpr size_t kChecksumLength = 6;
// Longest text any caller may hand in; longer input is refused before any
// parsing or crypto so that an oversized string costs nothing.
inline constexpr size_t kMaxKeyTextLength = 256;
inline constexpr size_t kMaxIssuedLength = kMaxPrefixLength + 1 + kRandomLength + kChecksumLength;

inline constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// 1–16 characters of [a-z0-9].
bool is_valid_prefix(std::string_view prefix);
bool is_base62_char(char c);

// CRC-32 (IEEE, zlib's crc32) of `random`, big-endian in Base62, left-padded
// with '0' to 6 characters.
std::array<char, kChecksumLength> checksum(std::string_view random);

struct ParsedKey {
    std::string_view prefix;
    std::string_view random;
    std::string_view checksum;
};

// Splits and checks a key text: valid prefix, '_', 32 Base62 characters, and
// a checksum that matches. nullopt means "malformed" (typo, truncation, not
// ours). The views point into `text`.
std::optional<ParsedKey> parse(std::string_view text);

// Writes prefix + '_' + random + checksum into `out`, which must hold
// issued_length(prefix) bytes. Returns the number of bytes written: 0, with
// nothing written, when the prefix is invalid or `random` is not 32 Base62
// characters.
size_t issued_length(std::string_view prefix);
size_t compose(std::string_view prefix, std::string_view random, char* out);

}  // namespace apikeyd::key_format
