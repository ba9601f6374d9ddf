#include "common/encoding.hpp"

namespace apikeyd::encoding {
namespace {

// All ones when a < b, else zero; a and b below 256.
unsigned below(unsigned a, unsigned b) {
    return 0U - (((a - b) >> 8) & 1U);
}

unsigned equal(unsigned a, unsigned b) {
    return below(a, b + 1) & ~below(a, b);
}

}  // namespace

char hex_digit(unsigned nibble, HexCase letter_case) {
    const unsigned letter = letter_case == HexCase::Lower ? 'a' : 'A';
    const unsigned is_letter = ~below(nibble, 10);
    return static_cast<char>((~is_letter & (nibble + '0')) | (is_letter & (nibble - 10 + letter)));
}

char base64_digit(unsigned sextet, Base64Alphabet alphabet) {
    const bool url = alphabet == Base64Alphabet::UrlSafe;
    const unsigned upper = below(sextet, 26);
    const unsigned lower = ~upper & below(sextet, 52);
    const unsigned digit = ~below(sextet, 52) & below(sextet, 62);
    return static_cast<char>(
        (upper & (sextet + 'A')) | (lower & (sextet - 26 + 'a')) | (digit & (sextet - 52 + '0')) |
        (equal(sextet, 62) & (url ? '-' : '+')) | (equal(sextet, 63) & (url ? '_' : '/')));
}

}  // namespace apikeyd::encoding
