#include "common/encoding.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace apikeyd::encoding {
namespace {

std::string base64(std::string_view data, Base64Alphabet alphabet = Base64Alphabet::Standard,
                   Padding padding = Padding::With) {
    std::string out;
    append_base64(out, data, alphabet, padding);
    return out;
}

TEST(Encoding, Base64MatchesTheRfc4648Vectors) {
    struct Vector {
        std::string data;
        std::string padded;
    };
    const std::vector<Vector> vectors = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& v : vectors) {
        EXPECT_EQ(base64(v.data), v.padded) << v.data;
        const std::string unpadded = v.padded.substr(0, v.padded.find('='));
        EXPECT_EQ(base64(v.data, Base64Alphabet::Standard, Padding::Without), unpadded) << v.data;
    }
}

TEST(Encoding, Base64AlphabetsDifferOnlyInTheLastTwoDigits) {
    constexpr std::string_view kStandard =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    constexpr std::string_view kUrlSafe =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (unsigned sextet = 0; sextet < 64; ++sextet) {
        EXPECT_EQ(base64_digit(sextet, Base64Alphabet::Standard), kStandard[sextet]) << sextet;
        EXPECT_EQ(base64_digit(sextet, Base64Alphabet::UrlSafe), kUrlSafe[sextet]) << sextet;
    }
    EXPECT_EQ(base64("\xfb\xff"), "+/8=");
    EXPECT_EQ(base64("\xfb\xff", Base64Alphabet::UrlSafe, Padding::Without), "-_8");
}

TEST(Encoding, HexOfEveryByteInEitherCase) {
    std::string all;
    std::string lower;
    std::string upper;
    for (unsigned b = 0; b < 256; ++b) {
        all += static_cast<char>(b);
        char pair[3];
        std::snprintf(pair, sizeof pair, "%02x", b);
        lower += pair;
        std::snprintf(pair, sizeof pair, "%02X", b);
        upper += pair;
    }
    std::string hex;
    append_hex(hex, all);
    EXPECT_EQ(hex, lower);
    hex.clear();
    append_hex(hex, all, HexCase::Upper);
    EXPECT_EQ(hex, upper);
}

}  // namespace
}  // namespace apikeyd::encoding
