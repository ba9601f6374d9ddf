#include "common/key_format.hpp"

#include <zlib.h>

#include <algorithm>

namespace apikeyd::key_format {
namespace {

inline constexpr char kSeparator = '_';
inline constexpr uint32_t kBase = 62;

// 1 or 0. Combined with '&' and '|' rather than '&&' and '||', which would
// branch on the characters of a secret key.
unsigned in_range(char c, char low, char high) {
    return static_cast<unsigned>(c >= low) & static_cast<unsigned>(c <= high);
}

}  // namespace

bool is_valid_prefix(std::string_view prefix) {
    if (prefix.size() < kMinPrefixLength || prefix.size() > kMaxPrefixLength) {
        return false;
    }
    return std::all_of(prefix.begin(), prefix.end(),
                       [](char c) { return (in_range(c, 'a', 'z') | in_range(c, '0', '9')) != 0; });
}

bool is_base62_char(char c) {
    return (in_range(c, '0', '9') | in_range(c, 'A', 'Z') | in_range(c, 'a', 'z')) != 0;
}

std::array<char, kChecksumLength> checksum(std::string_view random) {
    // zlib computes the CRC with table lookups anyway, and it covers only 32
    // bits of a 190-bit secret, so a branch-free encoding here would buy nothing.
    uint32_t crc = static_cast<uint32_t>(crc32_z(
        crc32_z(0, nullptr, 0), reinterpret_cast<const Bytef*>(random.data()), random.size()));
    std::array<char, kChecksumLength> out{};
    // 62^6 > 2^32, so six digits always hold the whole CRC.
    for (size_t i = kChecksumLength; i-- > 0;) {
        out[i] = kBase62Alphabet[crc % kBase];
        crc /= kBase;
    }
    return out;
}

std::optional<ParsedKey> parse(std::string_view text) {
    constexpr size_t kBodyLength = kRandomLength + kChecksumLength;
    // Every issued key is at most kMaxIssuedLength (< kMaxKeyTextLength), so
    // this also refuses oversized text before looking at a single character.
    if (text.size() < kMinPrefixLength + 1 + kBodyLength || text.size() > kMaxIssuedLength) {
        return std::nullopt;
    }
    // The body is Base62 and the prefix cannot hold '_', so in a valid key the
    // only '_' sits right before the body. Splitting at that fixed position and
    // then validating both sides accepts exactly what splitting at the first
    // '_' would.
    const size_t separator = text.size() - kBodyLength - 1;
    if (text[separator] != kSeparator) {
        return std::nullopt;
    }
    ParsedKey key{
        .prefix = text.substr(0, separator),
        .random = text.substr(separator + 1, kRandomLength),
        .checksum = text.substr(separator + 1 + kRandomLength),
    };
    if (!is_valid_prefix(key.prefix)) {
        return std::nullopt;
    }
    unsigned base62 = 1;
    for (char c : text.substr(separator + 1)) {
        base62 &= static_cast<unsigned>(is_base62_char(c));
    }
    if (base62 == 0) {
        return std::nullopt;
    }
    const auto expected = checksum(key.random);
    if (!std::equal(expected.begin(), expected.end(), key.checksum.begin(), key.checksum.end())) {
        return std::nullopt;
    }
    return key;
}

size_t issued_length(std::string_view prefix) {
    return prefix.size() + 1 + kRandomLength + kChecksumLength;
}

size_t compose(std::string_view prefix, std::string_view random, char* out) {
    if (!is_valid_prefix(prefix) || random.size() != kRandomLength ||
        !std::all_of(random.begin(), random.end(), is_base62_char)) {
        return 0;
    }
    char* end = std::copy(prefix.begin(), prefix.end(), out);
    *end++ = kSeparator;
    end = std::copy(random.begin(), random.end(), end);
    const auto sum = checksum(random);
    end = std::copy(sum.begin(), sum.end(), end);
    return static_cast<size_t>(end - out);
}

}  // namespace apikeyd::key_format
