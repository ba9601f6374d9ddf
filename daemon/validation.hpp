#pragma once
// Limits on everything a caller controls, checked where input enters the
// core. Each failure names what was wrong; none echoes a secret.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/result.hpp"

namespace apikeyd::limits {

inline constexpr size_t kMaxNameChars = 128;
inline constexpr size_t kMaxDescriptionChars = 1024;
inline constexpr size_t kMaxScopes = 32;
inline constexpr size_t kMaxScopeLength = 64;
inline constexpr size_t kMaxSecretBytes = 64 * 1024;
inline constexpr size_t kMaxRevokeReasonChars = 256;
// A non-root user cannot fill the disk with keys; root is trusted anyway.
inline constexpr size_t kMaxKeysPerUser = 100'000;
// Nor with what the keys hold: names, descriptions, scopes, revoke reasons
// and sealed secrets, in bytes, of all of a user's keys together.
inline constexpr size_t kMaxBytesPerUser = 64 * 1024 * 1024;
inline constexpr size_t kKeyIdRandomChars = 12;

}  // namespace apikeyd::limits

namespace apikeyd::validation {

// Text is UTF-8 without control, format (Cf), line or paragraph separator
// characters (Zl, Zp); a description may hold newlines and tabs. A name is
// not empty, not only white space, and neither starts nor ends with it.
Result<void> check_name(std::string_view name);
Result<void> check_description(std::string_view description);
Result<void> check_revoke_reason(std::string_view reason);
// Scopes are returned sorted and without duplicates.
Result<std::vector<std::string>> normalize_scopes(const std::vector<std::string>& scopes);
// The scope asked for in VerifyKey; "" means any.
Result<void> check_requested_scope(std::string_view scope);
Result<void> check_secret_size(size_t size);
Result<void> check_key_id(std::string_view id);
Result<void> check_keyslot_id(std::string_view id);

// True when `granted` allows `requested`: an exact match, "*", or a
// "prefix:*" wildcard that covers "prefix:anything". "" asks for any scope.
bool scopes_allow(std::span<const std::string> granted, std::string_view requested);

// A string safe to put in an error message or log line: ASCII, at most
// `max` characters, every one but printable ASCII escaped
// (common/printable_text.hpp), the rest elided.
std::string quote_for_message(std::string_view text, size_t max = 64);

}  // namespace apikeyd::validation
