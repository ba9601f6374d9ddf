#include "daemon/validation.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apikeyd::validation {
namespace {

std::string repeat(std::string_view unit, size_t times) {
    std::string out;
    for (size_t i = 0; i < times; ++i) {
        out += unit;
    }
    return out;
}

TEST(Validation, AcceptsNamesUpTo128CharactersCountingCodePoints) {
    EXPECT_TRUE(check_name("a"));
    EXPECT_TRUE(check_name(repeat("a", 128)));
    // 128 two-byte characters are 256 bytes but still 128 characters.
    EXPECT_TRUE(check_name(repeat("\xc3\xa9", 128)));
    EXPECT_TRUE(check_name(repeat("\xf0\x9f\x94\x91", 128)));
}

TEST(Validation, RefusesEmptyOverlongAndNonTextNames) {
    const std::vector<std::string> bad = {
        "",
        repeat("a", 129),
        repeat("\xc3\xa9", 129),
        "tab\there",
        "new\nline",
        std::string("nul\0byte", 8),
        "del\x7f",
        "c1\xc2\x85",
        "\xc3",              // truncated sequence
        "\xc0\xaf",          // overlong '/'
        "\xed\xa0\x80",      // UTF-16 surrogate
        "\xf4\x90\x80\x80",  // above U+10FFFF
        "\xff",
    };
    for (const auto& name : bad) {
        const auto result = check_name(name);
        ASSERT_FALSE(result) << "accepted " << testing::PrintToString(name);
        EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument);
        EXPECT_NE(result.error().message.find("name"), std::string::npos);
    }
}

TEST(Validation, DescriptionsAllowNewlinesAndTabsUpTo1024Characters) {
    EXPECT_TRUE(check_description(""));
    EXPECT_TRUE(check_description("line one\n\tline two"));
    EXPECT_TRUE(check_description(repeat("x", 1024)));
    EXPECT_FALSE(check_description(repeat("x", 1025)));
    EXPECT_FALSE(check_description("bell\a"));
}

TEST(Validation, NormalizesScopesSortedAndUnique) {
    const auto scopes = normalize_scopes({"write", "read", "write", "models:*"});
    ASSERT_TRUE(scopes);
    EXPECT_EQ(*scopes, (std::vector<std::string>{"models:*", "read", "write"}));
}

TEST(Validation, RefusesScopesOutsideTheCharsetOrLimits) {
    const std::vector<std::string> bad = {"",       "Read",          "has space", "semi;colon",
                                          "slash/", repeat("a", 65), "\xc3\xa9"};
    for (const auto& scope : bad) {
        const auto result = normalize_scopes({scope});
        ASSERT_FALSE(result) << "accepted " << testing::PrintToString(scope);
        EXPECT_NE(result.error().message.find("scope"), std::string::npos);
    }
    EXPECT_TRUE(normalize_scopes({repeat("a", 64), "a_b.c:d*-e"}));
}

TEST(Validation, AllowsAtMost32Scopes) {
    std::vector<std::string> scopes;
    for (int i = 0; i < 32; ++i) {
        scopes.push_back("s" + std::to_string(i));
    }
    EXPECT_TRUE(normalize_scopes(scopes));
    scopes.push_back("one-more");
    const auto result = normalize_scopes(scopes);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("33"), std::string::npos);
}

TEST(Validation, ScopeMatchingFollowsWildcards) {
    struct Case {
        std::vector<std::string> granted;
        std::string requested;
        bool allowed;
    };
    const std::vector<Case> cases = {
        {{"read"}, "", true},
        {{}, "", true},
        {{}, "read", false},
        {{"read"}, "read", true},
        {{"read"}, "write", false},
        {{"*"}, "anything:at:all", true},
        {{"models:*"}, "models:read", true},
        {{"models:*"}, "models:a:b", true},
        {{"models:*"}, "models", false},
        {{"models:*"}, "models:", false},
        {{"models:*"}, "modelsx:read", false},
        {{"models:read"}, "models:*", false},
        {{"read", "write"}, "write", true},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(scopes_allow(c.granted, c.requested), c.allowed)
            << "granted " << testing::PrintToString(c.granted) << " requested " << c.requested;
    }
}

TEST(Validation, KeyIdsAreKUnderscoreAnd12Base32Characters) {
    EXPECT_TRUE(check_key_id("k_abcdefgh2345"));
    for (const std::string bad : {"", "k_", "k_abcdefgh234", "k_abcdefgh23456", "x_abcdefgh2345",
                                  "k_abcdefgh2341", "k_ABCDEFGH2345", "k_abcdefgh234\n"}) {
        EXPECT_FALSE(check_key_id(bad)) << bad;
    }
}

TEST(Validation, SecretsAreOneByteTo64KiB) {
    EXPECT_FALSE(check_secret_size(0));
    EXPECT_TRUE(check_secret_size(1));
    EXPECT_TRUE(check_secret_size(64 * 1024));
    EXPECT_FALSE(check_secret_size(64 * 1024 + 1));
}

TEST(Validation, QuotedValuesInMessagesAreEscapedAsciiAndBounded) {
    EXPECT_EQ(quote_for_message("abc"), "'abc'");
    EXPECT_EQ(quote_for_message("a\nb\x01"), "'a\\nb\\u{01}'");
    EXPECT_EQ(quote_for_message("r\xc3\xab"
                                "ad"),
              "'r\\u{EB}ad'");
    EXPECT_EQ(quote_for_message("\xff"), "'\\xFF'");
    EXPECT_EQ(quote_for_message(repeat("x", 100), 4), "'xxxx...'");
    // Cut after four characters, not inside the fourth.
    EXPECT_EQ(quote_for_message(repeat("\xc3\xa9", 5), 4), "'" + repeat("\\u{E9}", 4) + "...'");
}

struct Refusal {
    std::string text;
    std::string message;
};

void expect_refusals(Result<void> (*check)(std::string_view), const std::vector<Refusal>& cases) {
    for (const auto& c : cases) {
        const auto result = check(c.text);
        ASSERT_FALSE(result) << "accepted " << testing::PrintToString(c.text);
        EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument);
        EXPECT_EQ(result.error().message, c.message) << testing::PrintToString(c.text);
    }
}

TEST(Validation, NamesWithFormatCharactersOrSeparatorsAreRefusedByCodePoint) {
    expect_refusals(check_name,
                    {
                        {"abc\xe2\x80\x8b"
                         "d",
                         "Invalid name: it contains U+200B (a format character) at character 4"},
                        {"\xef\xbb\xbf"
                         "bom",
                         "Invalid name: it contains U+FEFF (a format character) at character 1"},
                        {"prod\xe2\x80\xae"
                         "tset",
                         "Invalid name: it contains U+202E (a format character) at character 5"},
                        {"a\xe2\x80\xaa",
                         "Invalid name: it contains U+202A (a format character) at character 2"},
                        {"a\xe2\x81\xa6",
                         "Invalid name: it contains U+2066 (a format character) at character 2"},
                        {"a\xe2\x81\xa9",
                         "Invalid name: it contains U+2069 (a format character) at character 2"},
                        {"a\xe2\x80\xa8"
                         "b",
                         "Invalid name: it contains U+2028 (a line separator) at character 2"},
                        {"a\xe2\x80\xa9"
                         "b",
                         "Invalid name: it contains U+2029 (a paragraph separator) at character 2"},
                        {"\xc3\xa9\x1b[2J",
                         "Invalid name: it contains U+001B (a control character) at character 2"},
                        {"ok\xff", "Invalid name: it is not UTF-8: byte 0xFF at character 3"},
                    });
}

TEST(Validation, NamesWithWhiteSpaceAtAnEndOrOnlyWhiteSpaceAreRefused) {
    expect_refusals(
        check_name,
        {
            {" lead", "Invalid name: it starts with U+0020 (white space)"},
            {"trail ", "Invalid name: it ends with U+0020 (white space)"},
            {"\xc2\xa0nbsp", "Invalid name: it starts with U+00A0 (white space)"},
            {"ideographic\xe3\x80\x80", "Invalid name: it ends with U+3000 (white space)"},
            {"   ", "Invalid name: it is only white space"},
            {"\xe2\x80\x83", "Invalid name: it is only white space"},
        });
    EXPECT_TRUE(check_name("my key"));
    EXPECT_TRUE(check_name("\xe6\x97\xa5\xe6\x9c\xac \xe3\x82\xad\xe3\x83\xbc"));
}

TEST(Validation, DescriptionsAndRevokeReasonsRefuseFormatCharactersAndSeparators) {
    expect_refusals(check_description,
                    {
                        {"see\xe2\x80\x8b",
                         "Invalid description: it contains U+200B (a format character) at "
                         "character 4"},
                        {"one\xe2\x80\xa8two",
                         "Invalid description: it contains U+2028 (a line separator) at "
                         "character 4"},
                        {"cr\r",
                         "Invalid description: it contains U+000D (a control character) "
                         "at character 3"},
                    });
    expect_refusals(check_revoke_reason,
                    {
                        {"leaked\xe2\x81\xa7",
                         "Invalid revoke reason: it contains U+2067 (a format character) at "
                         "character 7"},
                        {"two\nlines",
                         "Invalid revoke reason: it contains U+000A (a control "
                         "character) at character 4"},
                    });
    EXPECT_TRUE(check_description(" spaced out \n"));
    EXPECT_TRUE(check_revoke_reason(" leaked in a log "));
}

}  // namespace
}  // namespace apikeyd::validation
