#include "daemon/hex.hpp"

#include "common/encoding.hpp"

namespace apikeyd::hex {

std::string encode(std::span<const uint8_t> bytes) {
    std::string text;
    text.reserve(bytes.size() * 2);
    encoding::append_hex(text, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    return text;
}

std::optional<std::vector<uint8_t>> decode(std::string_view text) {
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::vector<uint8_t> bytes;
    bytes.reserve(text.size() / 2);
    for (size_t i = 0; i < text.size(); i += 2) {
        const int hi = nibble(text[i]);
        const int lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        bytes.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    return bytes;
}

}  // namespace apikeyd::hex
