#pragma once
// Who is calling, as the bus layer learnt it from the bus (never from what
// the caller says). uid decides; the rest is for people reading the audit.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace apikeyd {

// Immutable text shared by reference: every usage event of a caller carries
// its executable and unit, and copying those strings on each of thousands
// of verifications a second cost more than the rest of the event.
class SharedText {
  public:
    SharedText() = default;
    SharedText(std::string text)
        : text_(text.empty() ? nullptr : std::make_shared<const std::string>(std::move(text))) {}
    SharedText(const char* text) : SharedText(std::string(text)) {}

    std::string_view view() const { return text_ ? std::string_view(*text_) : std::string_view(); }
    bool empty() const { return !text_; }

  private:
    std::shared_ptr<const std::string> text_;
};

// The longest executable path or unit name kept for the audit. The caller
// chooses its own path (one of 3,800 bytes works), and every event it
// causes stores it: a longer one keeps its last bytes behind "...".
inline constexpr size_t kMaxCallerTextBytes = 256;
// `text` with each byte that is not UTF-8 written as \xXX, then cut as above
// at a character's start.
SharedText caller_text(std::string_view text);

struct Caller {
    uint32_t uid = 0;
    uint32_t pid = 0;
    // The caller's executable and systemd unit where the bus could tell:
    // shown in usage events, never used to decide anything (a process can
    // lie about neither, but they are read racily from /proc).
    SharedText exe = {};
    SharedText unit = {};
    bool is_root() const { return uid == 0; }
};

}  // namespace apikeyd
