#include "daemon/caller.hpp"

namespace apikeyd {

SharedText caller_text(std::string_view text) {
    if (text.size() <= kMaxCallerTextBytes) {
        return SharedText(std::string(text));
    }
    constexpr std::string_view kCut = "...";
    size_t start = text.size() - (kMaxCallerTextBytes - kCut.size());
    // Not inside a character: skip its continuation bytes (10xxxxxx).
    while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        ++start;
    }
    return SharedText(std::string(kCut) + std::string(text.substr(start)));
}

}  // namespace apikeyd
