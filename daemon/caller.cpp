#include "daemon/caller.hpp"

#include "common/printable_text.hpp"

namespace apikeyd {

SharedText caller_text(std::string_view raw) {
    // A path need not be UTF-8, but a D-Bus string must: one byte that is
    // not would make every GetUsage reply that holds the event fail.
    const std::string text = text::escaped(raw, text::Escape::NotUtf8);
    if (text.size() <= kMaxCallerTextBytes) {
        return SharedText(text);
    }
    constexpr std::string_view kCut = "...";
    size_t start = text.size() - (kMaxCallerTextBytes - kCut.size());
    // Not inside a character: skip its continuation bytes (10xxxxxx).
    while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        ++start;
    }
    return SharedText(std::string(kCut) + text.substr(start));
}

}  // namespace apikeyd
