#pragma once
// Lower-case hex for the non-secret bytes keyslots keep in their JSON
// parameters (salts, TPM names, key ids, public points).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace apikeyd::hex {

std::string encode(std::span<const uint8_t> bytes);
// nullopt on an odd length or a character that is not a hex digit.
std::optional<std::vector<uint8_t>> decode(std::string_view text);

}  // namespace apikeyd::hex
