#pragma once
// Which characters of a user's text may be shown as they are, and how the
// rest is shown. A key name, a description or a caller's executable path is
// chosen by whoever made it, and some characters change what is around them
// when shown: control characters (C0, DEL, C1) that a terminal obeys, format
// characters (Cf: zero-width spaces, bidirectional overrides and isolates,
// the byte-order mark) that hide or reorder text, and the line and paragraph
// separators (Zl, Zp). The daemon refuses them in what it stores; apikeyctl
// escapes them in whatever it shows. ICU's character database decides, so a
// new Unicode version needs no table here.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace apikeyd::text {

// The character at the start of a non-empty UTF-8 string.
struct Decoded {
    // nullopt when the bytes are not UTF-8: a stray continuation byte, a
    // truncated or overlong sequence, a surrogate, a value above U+10FFFF.
    std::optional<char32_t> code_point;
    // Bytes taken, at least 1; for bytes that are not UTF-8, the longest
    // start of a sequence that could have been (RFC 3629, as ICU's U8_NEXT).
    size_t length;
};
Decoded decode_front(std::string_view text);

// Why `c` must not be shown as it is ("a control character", "a format
// character", "a line separator", "a paragraph separator"), or empty.
std::string_view unprintable_kind(char32_t c);

// The Unicode White_Space property: space, tab, newline, no-break space,
// the Zs spaces, U+0085, U+2028, U+2029.
bool is_white_space(char32_t c);

// "U+200B", "U+1F511": how a message names a character without showing it.
std::string code_point_name(char32_t c);

enum class Escape {
    // Bytes that are not UTF-8 alone: text that must be valid UTF-8 (a
    // D-Bus string) but is not shown yet.
    NotUtf8,
    // Those and what unprintable_kind names.
    Unprintable,
    // Those and every other non-ASCII character: for log lines, which stay ASCII.
    NonAscii,
};

// `text` with what `escape` names written as escapes: \n and \t for newline
// and tab, \u{XXXX} (hex, 2 to 6 digits) for other characters, \xXX for each
// byte that is not UTF-8. A backslash stays as it is.
std::string escaped(std::string_view text, Escape escape = Escape::Unprintable);

}  // namespace apikeyd::text
