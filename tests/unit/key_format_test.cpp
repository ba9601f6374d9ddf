#include "common/key_format.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <string_view>

#include "daemon/crypto.hpp"

namespace apikeyd::key_format {
namespace {

struct ChecksumVector {
    std::string_view random;
    std::string_view checksum;
};

// Computed outside this code base, with Python's zlib.crc32 and a separate
// Base62 encoder:
//   python3 -c 'import zlib; print(zlib.crc32(b"<random>"))'
constexpr std::array kChecksumVectors = {
    ChecksumVector{"cqnLGp9NjmtNL1EihJvc7t3QMlJhc5B7", "1op5rU"},  // 0x635e5670
    ChecksumVector{"ErDY9xRh3qtgsO1LqzxiXPN6gQwjSLou", "3xOSEq"},  // 0xd820d698
    ChecksumVector{"1CK0FJJqQPDqTdhkgNQxrFsj3ylaGNHO", "02ewjo"},  // 0x0257d8e0, one pad
    ChecksumVector{"37acBh3pgzgIjnkKiDXw0LrY1yFFrNNn", "0ENuQI"},  // 0x0cab8466, one pad
    ChecksumVector{"mpoLhip4ONuQ6yiI0NjCADK9wuQnwlcs", "00CZ6f"},  // 0x002db2c9, two pads
    ChecksumVector{"00000000000000000000000000000000", "2wjyrI"},  // 0xa0f292d0
    ChecksumVector{"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "4W8LJS"},  // 0xf6b9a94a
    ChecksumVector{"0123456789ABCDEFGHIJKLMNOPQRSTUV", "1ggZdL"},  // 0x5c339a43
};

constexpr std::string_view kRandom = "cqnLGp9NjmtNL1EihJvc7t3QMlJhc5B7";
constexpr std::string_view kChecksum = "1op5rU";

std::string key_text(std::string_view prefix, std::string_view random = kRandom,
                     std::string_view sum = kChecksum) {
    return std::string(prefix) + "_" + std::string(random) + std::string(sum);
}

TEST(KeyFormat, ChecksumMatchesIndependentlyComputedVectors) {
    for (const auto& vector : kChecksumVectors) {
        const auto sum = checksum(vector.random);
        EXPECT_EQ(std::string_view(sum.data(), sum.size()), vector.checksum) << vector.random;
    }
}

TEST(KeyFormat, AcceptsKeysBuiltFromVectors) {
    for (const auto& vector : kChecksumVectors) {
        const std::string text = key_text("ak", vector.random, vector.checksum);
        const auto parsed = parse(text);
        ASSERT_TRUE(parsed.has_value()) << text;
        EXPECT_EQ(parsed->prefix, "ak");
        EXPECT_EQ(parsed->random, vector.random);
        EXPECT_EQ(parsed->checksum, vector.checksum);
    }
}

TEST(KeyFormat, ParsedViewsPointIntoTheText) {
    const std::string text = key_text("ak");
    const auto parsed = parse(text);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->prefix.data(), text.data());
    EXPECT_EQ(parsed->random.data(), text.data() + 3);
    EXPECT_EQ(parsed->checksum.data(), text.data() + 3 + kRandomLength);
}

struct PrefixVector {
    std::string_view prefix;
    bool valid;
};

constexpr std::array kPrefixVectors = {
    PrefixVector{"a", true},
    PrefixVector{"7", true},
    PrefixVector{"ak", true},
    PrefixVector{"abcdefghijklmnop", true},    // 16
    PrefixVector{"0123456789abcdef", true},    // 16
    PrefixVector{"abcdefghijklmnopq", false},  // 17
    PrefixVector{"", false},
    PrefixVector{"Ak", false},
    PrefixVector{"AK", false},
    PrefixVector{"a_k", false},
    PrefixVector{"a-k", false},
    PrefixVector{"a k", false},
    PrefixVector{"a.k", false},
    PrefixVector{"\xc3\xa4k", false},
    PrefixVector{std::string_view("a\0k", 3), false},
};

TEST(KeyFormat, AcceptsOnlyPrefixesOfOneToSixteenLowercaseAlphanumerics) {
    for (const auto& vector : kPrefixVectors) {
        EXPECT_EQ(is_valid_prefix(vector.prefix), vector.valid) << vector.prefix;
        EXPECT_EQ(parse(key_text(vector.prefix)).has_value(), vector.valid) << vector.prefix;
    }
}

TEST(KeyFormat, Base62CharactersAreExactlyTheAlphabet) {
    for (int i = -128; i < 128; ++i) {
        const char c = static_cast<char>(i);
        const bool in_alphabet = kBase62Alphabet.find(c) != std::string_view::npos;
        EXPECT_EQ(is_base62_char(c), in_alphabet) << i;
    }
}

TEST(KeyFormat, RejectsWrongChecksum) {
    EXPECT_FALSE(parse(key_text("ak", kRandom, "1op5rV")).has_value());
    EXPECT_FALSE(parse(key_text("ak", kRandom, "000000")).has_value());
    // The right checksum of a different random part.
    EXPECT_FALSE(parse(key_text("ak", kRandom, "3xOSEq")).has_value());
}

TEST(KeyFormat, RejectsAnyOneCharacterFlippedInTheRandomPart) {
    for (size_t i = 0; i < kRandomLength; ++i) {
        std::string random(kRandom);
        random[i] = random[i] == 'x' ? 'y' : 'x';
        EXPECT_FALSE(parse(key_text("ak", random)).has_value()) << i;
    }
}

TEST(KeyFormat, RejectsNonBase62CharactersAfterTheSeparator) {
    const std::string valid = key_text("ak");
    for (const char bad : {'_', '-', '+', '/', '=', ' ', '\0', '\n', '\x80', '\xff'}) {
        for (size_t i = 3; i < valid.size(); ++i) {
            std::string text = valid;
            text[i] = bad;
            EXPECT_FALSE(parse(text).has_value()) << i << " " << static_cast<int>(bad);
        }
    }
}

TEST(KeyFormat, RejectsTruncatedText) {
    const std::string valid = key_text("ak");
    for (size_t length = 0; length < valid.size(); ++length) {
        EXPECT_FALSE(parse(std::string_view(valid).substr(0, length)).has_value()) << length;
    }
}

TEST(KeyFormat, RejectsExtraCharacters) {
    const std::string valid = key_text("ak");
    EXPECT_FALSE(parse(valid + "0").has_value());
    EXPECT_FALSE(parse(valid + "\n").has_value());
    EXPECT_FALSE(parse(" " + valid).has_value());
    EXPECT_FALSE(parse(valid + std::string(1, '\0')).has_value());
}

TEST(KeyFormat, RejectsMissingOrDoubledSeparator) {
    EXPECT_FALSE(parse("ak" + std::string(kRandom) + std::string(kChecksum)).has_value());
    EXPECT_FALSE(parse(key_text("ak_")).has_value());
    EXPECT_FALSE(parse(key_text("_ak")).has_value());
    EXPECT_FALSE(parse("_" + key_text("ak")).has_value());
    // A lone '_' at the start leaves an empty prefix.
    EXPECT_FALSE(parse("_" + std::string(kRandom) + std::string(kChecksum)).has_value());
    // The first '_' with a valid prefix before it, but a body one short.
    EXPECT_FALSE(
        parse("a_b_" + std::string(kRandom.substr(1)) + std::string(kChecksum)).has_value());
}

TEST(KeyFormat, AcceptsTheLongestIssuedKey) {
    const std::string text = key_text("abcdefghijklmnop");
    EXPECT_EQ(text.size(), kMaxIssuedLength);
    EXPECT_TRUE(parse(text).has_value());
}

TEST(KeyFormat, RejectsTextAtOrBeyondTheLengthLimit) {
    const std::string valid = key_text("ak");
    for (const size_t length : {kMaxKeyTextLength, kMaxKeyTextLength + 1}) {
        EXPECT_FALSE(parse(std::string(length - valid.size(), 'a') + valid).has_value()) << length;
    }
    EXPECT_FALSE(parse(std::string(1 << 20, '_')).has_value());
}

TEST(KeyFormat, ComposesWhatParseAccepts) {
    for (const std::string_view prefix : {"a", "ak", "abcdefghijklmnop"}) {
        for (const auto& vector : kChecksumVectors) {
            std::array<char, kMaxIssuedLength> out{};
            const size_t written = compose(prefix, vector.random, out.data());
            ASSERT_EQ(written, issued_length(prefix));
            const std::string_view text(out.data(), written);
            EXPECT_EQ(text, key_text(prefix, vector.random, vector.checksum));
            const auto parsed = parse(text);
            ASSERT_TRUE(parsed.has_value()) << text;
            EXPECT_EQ(parsed->prefix, prefix);
            EXPECT_EQ(parsed->random, vector.random);
        }
    }
}

TEST(KeyFormat, ComposeRoundTripsFreshRandomKeys) {
    for (int i = 0; i < 100; ++i) {
        auto random = crypto::random_base62(kRandomLength);
        ASSERT_TRUE(random.ok());
        std::array<char, kMaxIssuedLength> out{};
        const size_t written = compose(kDefaultPrefix, random->view(), out.data());
        ASSERT_EQ(written, issued_length(kDefaultPrefix));
        const auto parsed = parse(std::string_view(out.data(), written));
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(parsed->random, random->view());
    }
}

TEST(KeyFormat, ComposeWritesNothingForInvalidParts) {
    const std::string short_random(kRandom.substr(1));
    std::string bad_random(kRandom);
    bad_random[5] = '-';
    struct Case {
        std::string_view prefix;
        std::string_view random;
    };
    const std::array cases = {
        Case{"", kRandom},        Case{"AK", kRandom},        Case{"abcdefghijklmnopq", kRandom},
        Case{"ak", short_random}, Case{"ak", key_text("ak")}, Case{"ak", bad_random},
    };
    for (const auto& c : cases) {
        std::array<char, 128> out{};
        EXPECT_EQ(compose(c.prefix, c.random, out.data()), 0U) << c.prefix << " " << c.random;
        EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](char ch) { return ch == 0; }));
    }
}

TEST(KeyFormat, RandomBase62UsesOnlyTheAlphabet) {
    auto text = crypto::random_base62(4096);
    ASSERT_TRUE(text.ok());
    ASSERT_EQ(text->size(), 4096U);
    for (const char c : text->view()) {
        EXPECT_NE(kBase62Alphabet.find(c), std::string_view::npos) << static_cast<int>(c);
    }
}

TEST(KeyFormat, RandomBase62IsRoughlyUniform) {
    constexpr size_t kPerChar = 2000;
    auto text = crypto::random_base62(kBase62Alphabet.size() * kPerChar);
    ASSERT_TRUE(text.ok());
    std::map<char, size_t> counts;
    for (const char c : text->view()) {
        ++counts[c];
    }
    // A standard deviation is about 44 here; +-40% is 18 of them, so this
    // fails only for a real bias (a missing character, a skewed mapping).
    ASSERT_EQ(counts.size(), kBase62Alphabet.size());
    for (const auto& [c, count] : counts) {
        EXPECT_GT(count, kPerChar * 6 / 10) << c;
        EXPECT_LT(count, kPerChar * 14 / 10) << c;
    }
}

TEST(KeyFormat, RandomBase62OfZeroCharactersIsEmpty) {
    auto text = crypto::random_base62(0);
    ASSERT_TRUE(text.ok());
    EXPECT_TRUE(text->empty());
}

}  // namespace
}  // namespace apikeyd::key_format
