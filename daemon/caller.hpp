#pragma once
// Who is calling, as the bus layer learnt it from the bus (never from what
// the caller says). uid decides; the rest is for people reading the audit.

#include <cstdint>
#include <string>

namespace apikeyd {

struct Caller {
    uint32_t uid = 0;
    uint32_t pid = 0;
    // The caller's executable and systemd unit where the bus could tell:
    // shown in usage events, never used to decide anything (a process can
    // lie about neither, but they are read racily from /proc).
    std::string exe = {};
    std::string unit = {};
    bool is_root() const { return uid == 0; }
};

}  // namespace apikeyd
