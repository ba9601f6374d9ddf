#pragma once
// Hex and Base64 (RFC 4648) for bytes that may be secret: key text sent to
// the terminal's clipboard, the forms of a secret that `run --mask` looks
// for. Each digit is computed, never looked up in a table or chosen by a
// branch on the data, so neither the time taken nor the cache lines touched
// depend on the bytes. `Out` is anything with append(std::string_view): a
// std::string, or a buffer that wipes itself.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/secret.hpp"

namespace apikeyd::encoding {

enum class HexCase { Lower, Upper };
// RFC 4648 section 4 (+ and /) and section 5 (- and _).
enum class Base64Alphabet { Standard, UrlSafe };
enum class Padding { With, Without };

// `nibble` is 0-15, `sextet` 0-63.
char hex_digit(unsigned nibble, HexCase letter_case);
char base64_digit(unsigned sextet, Base64Alphabet alphabet);

template <typename Out>
void append_hex(Out& out, std::string_view data, HexCase letter_case = HexCase::Lower) {
    char pair[2];
    for (const char byte : data) {
        const auto b = static_cast<unsigned char>(byte);
        pair[0] = hex_digit(b >> 4, letter_case);
        pair[1] = hex_digit(b & 0x0FU, letter_case);
        out.append(std::string_view(pair, 2));
    }
    wipe(pair, sizeof pair);
}

template <typename Out>
void append_base64(Out& out, std::string_view data,
                   Base64Alphabet alphabet = Base64Alphabet::Standard,
                   Padding padding = Padding::With) {
    uint32_t group = 0;
    char quad[4];
    for (size_t i = 0; i < data.size(); i += 3) {
        const size_t n = std::min<size_t>(3, data.size() - i);
        group = 0;
        for (size_t j = 0; j < 3; ++j) {
            group = (group << 8) | (j < n ? static_cast<unsigned char>(data[i + j]) : 0U);
        }
        // n bytes make n + 1 digits; padding fills the group of four.
        size_t length = n + 1;
        for (size_t j = 0; j < length; ++j) {
            quad[j] = base64_digit((group >> (18 - 6 * j)) & 0x3FU, alphabet);
        }
        for (; padding == Padding::With && length < 4; ++length) {
            quad[length] = '=';
        }
        out.append(std::string_view(quad, length));
    }
    wipe(&group, sizeof group);
    wipe(quad, sizeof quad);
}

}  // namespace apikeyd::encoding
