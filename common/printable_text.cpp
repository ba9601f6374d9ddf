#include "common/printable_text.hpp"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace apikeyd::text {

Decoded decode_front(std::string_view text) {
    // No sequence is longer than four bytes, so looking at four at the most
    // keeps ICU's int32_t offsets in range whatever the text's size.
    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    const auto length = static_cast<int32_t>(std::min<size_t>(text.size(), U8_MAX_LENGTH));
    int32_t taken = 0;
    UChar32 c = 0;
    U8_NEXT(bytes, taken, length, c);
    if (c < 0) {
        return {std::nullopt, static_cast<size_t>(taken)};
    }
    return {static_cast<char32_t>(c), static_cast<size_t>(taken)};
}

std::string_view unprintable_kind(char32_t c) {
    switch (u_charType(static_cast<UChar32>(c))) {
        case U_CONTROL_CHAR:
            return "a control character";
        case U_FORMAT_CHAR:
            return "a format character";
        case U_LINE_SEPARATOR:
            return "a line separator";
        case U_PARAGRAPH_SEPARATOR:
            return "a paragraph separator";
        default:
            return {};
    }
}

bool is_white_space(char32_t c) {
    return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0;
}

std::string code_point_name(char32_t c) {
    char name[16];
    std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(c));
    return name;
}

std::string escaped(std::string_view text, Escape escape) {
    std::string out;
    out.reserve(text.size());
    char buffer[16];
    while (!text.empty()) {
        const Decoded decoded = decode_front(text);
        const auto bytes = text.substr(0, decoded.length);
        text.remove_prefix(decoded.length);
        if (!decoded.code_point) {
            for (const char byte : bytes) {
                std::snprintf(buffer, sizeof buffer, "\\x%02X", static_cast<unsigned char>(byte));
                out += buffer;
            }
            continue;
        }
        const char32_t c = *decoded.code_point;
        const bool shown_as_is =
            escape == Escape::NotUtf8 ||
            (unprintable_kind(c).empty() && (c < 0x80 || escape == Escape::Unprintable));
        if (shown_as_is) {
            out += bytes;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else {
            std::snprintf(buffer, sizeof buffer, "\\u{%02X}", static_cast<unsigned>(c));
            out += buffer;
        }
    }
    return out;
}

}  // namespace apikeyd::text
