#include "common/printable_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apikeyd::text {
namespace {

struct Vector {
    std::string text;
    std::string shown;
};

TEST(PrintableText, LeavesPrintableUtf8AsItIs) {
    for (const std::string text : {"read-only key",
                                   "r\xc3\xab"
                                   "ad",
                                   "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x94\x91 key",
                                   "back\\slash", "no-break\xc2\xa0space"}) {
        EXPECT_EQ(escaped(text), text);
    }
}

TEST(PrintableText, EscapesControlsAndTerminalSequences) {
    const std::vector<Vector> vectors = {
        {"\x1b[31mred\x1b[0m", "\\u{1B}[31mred\\u{1B}[0m"},
        {"\x1b]52;c;aGk=\a", "\\u{1B}]52;c;aGk=\\u{07}"},
        {std::string("nul\0byte", 8), "nul\\u{00}byte"},
        {"line\nnext\ttab\rreturn", "line\\nnext\\ttab\\u{0D}return"},
        {"del\x7f", "del\\u{7F}"},
        {"c1 csi\xc2\x9b"
         "2J",
         "c1 csi\\u{9B}2J"},
        {"nel\xc2\x85", "nel\\u{85}"},
    };
    for (const auto& v : vectors) {
        EXPECT_EQ(escaped(v.text), v.shown) << testing::PrintToString(v.text);
    }
}

TEST(PrintableText, EscapesFormatCharactersAndSeparators) {
    const std::vector<Vector> vectors = {
        {"admin\xe2\x80\xae"
         "txt.exe",
         "admin\\u{202E}txt.exe"},  // right-to-left override
        {"a\xe2\x80\x8b"
         "b",
         "a\\u{200B}b"},  // zero-width space
        {"\xef\xbb\xbf"
         "bom",
         "\\u{FEFF}bom"},
        {"\xe2\x81\xa6isolate\xe2\x81\xa9", "\\u{2066}isolate\\u{2069}"},
        {"\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
         "\\u{202A}\\u{202B}\\u{202C}\\u{202D}"},
        {"line\xe2\x80\xa8para\xe2\x80\xa9", "line\\u{2028}para\\u{2029}"},
        {"tag\xf3\xa0\x80\x81", "tag\\u{E0001}"},
    };
    for (const auto& v : vectors) {
        EXPECT_EQ(escaped(v.text), v.shown) << testing::PrintToString(v.text);
    }
}

TEST(PrintableText, EscapesEachByteThatIsNotUtf8) {
    const std::vector<Vector> vectors = {
        {"\xff", "\\xFF"},
        {"ab\xe6\x97", "ab\\xE6\\x97"},  // truncated at the end
        {"\xe6\x97"
         "c",
         "\\xE6\\x97c"},                               // truncated before more text
        {"\xc0\xaf", "\\xC0\\xAF"},                    // overlong '/'
        {"\xed\xa0\x80", "\\xED\\xA0\\x80"},           // a UTF-16 surrogate
        {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"},  // above U+10FFFF
        {"\x80stray", "\\x80stray"},
        {"\xc3\xab\xc3", "\xc3\xab\\xC3"},
    };
    for (const auto& v : vectors) {
        EXPECT_EQ(escaped(v.text), v.shown) << testing::PrintToString(v.text);
    }
}

TEST(PrintableText, NotUtf8ModeEscapesOnlyBadBytes) {
    EXPECT_EQ(escaped("\x1b[2J\xe2\x80\xae\xff", Escape::NotUtf8), "\x1b[2J\xe2\x80\xae\\xFF");
}

TEST(PrintableText, NonAsciiModeEscapesEveryOtherCharacterToo) {
    EXPECT_EQ(escaped("r\xc3\xab"
                      "ad \xf0\x9f\x94\x91\n\xff",
                      Escape::NonAscii),
              "r\\u{EB}ad \\u{1F511}\\n\\xFF");
}

TEST(PrintableText, DecodesOneCharacterOrTheBadBytesAtTheFront) {
    const auto ascii = decode_front("ab");
    EXPECT_EQ(ascii.code_point, U'a');
    EXPECT_EQ(ascii.length, 1u);
    const auto key = decode_front("\xf0\x9f\x94\x91!");
    EXPECT_EQ(key.code_point, U'\U0001F511');
    EXPECT_EQ(key.length, 4u);
    const auto truncated = decode_front("\xf0\x9f\x94");
    EXPECT_EQ(truncated.code_point, std::nullopt);
    EXPECT_EQ(truncated.length, 3u);
    const auto stray = decode_front("\x80");
    EXPECT_EQ(stray.code_point, std::nullopt);
    EXPECT_EQ(stray.length, 1u);
}

TEST(PrintableText, NamesWhatMakesACharacterUnprintable) {
    EXPECT_EQ(unprintable_kind(U'\x1b'), "a control character");
    EXPECT_EQ(unprintable_kind(U'\u0085'), "a control character");
    EXPECT_EQ(unprintable_kind(U'\u200B'), "a format character");
    EXPECT_EQ(unprintable_kind(U'\u2028'), "a line separator");
    EXPECT_EQ(unprintable_kind(U'\u2029'), "a paragraph separator");
    for (const char32_t shown : {U'a', U' ', U'\u00A0', U'\u00EB', U'\u65E5', U'\U0001F511'}) {
        EXPECT_EQ(unprintable_kind(shown), "") << code_point_name(shown);
    }
}

TEST(PrintableText, KnowsUnicodeWhiteSpace) {
    for (const char32_t space : {U' ', U'\t', U'\u00A0', U'\u1680', U'\u2003', U'\u3000'}) {
        EXPECT_TRUE(is_white_space(space)) << code_point_name(space);
    }
    // The zero-width space is a format character, not white space.
    for (const char32_t other : {U'a', U'_', U'\u200B', U'\uFEFF'}) {
        EXPECT_FALSE(is_white_space(other)) << code_point_name(other);
    }
}

TEST(PrintableText, NamesCodePointsAsUPlusHex) {
    EXPECT_EQ(code_point_name(U'A'), "U+0041");
    EXPECT_EQ(code_point_name(U'\u200B'), "U+200B");
    EXPECT_EQ(code_point_name(U'\U0001F511'), "U+1F511");
}

}  // namespace
}  // namespace apikeyd::text
