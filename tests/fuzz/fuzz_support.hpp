#pragma once
// Shared by the D-Bus harnesses: a reader that turns fuzz bytes into
// choices, numbers and strings front to back (so that a seed can be written
// by hand or by tests/fuzz/make_seeds.py), and a writer that appends a value
// of a given D-Bus type to a message from those bytes.

#include <systemd/sd-bus.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace apikeyd::fuzz {

// Where a harness reports what it found: the process's stderr as it was
// before quiet_daemon_log().
inline FILE*& report_file() {
    static FILE* file = stderr;
    return file;
}

// The daemon's log (daemon/log.cpp writes to the stdio stream `stderr`)
// would print a line for every key a fuzz input makes: send it to /dev/null
// unless APIKEYD_FUZZ_LOG is set. File descriptor 2 stays as it was, so
// libFuzzer's and the sanitizers' reports are unchanged.
inline void quiet_daemon_log() {
    (void)report_file();
    if (std::getenv("APIKEYD_FUZZ_LOG") == nullptr) {
        if (FILE* null = std::fopen("/dev/null", "w")) {
            stderr = null;
        }
    }
}

[[noreturn]] inline void fail(const char* harness, const std::string& what) {
    std::fprintf(report_file(), "%s: %s\n", harness, what.c_str());
    std::fflush(report_file());
    std::abort();
}

// Reads the input front to back; past its end every read gives zeros.
class Input {
  public:
    Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    bool empty() const { return pos_ >= size_; }
    size_t remaining() const { return empty() ? 0 : size_ - pos_; }

    uint8_t byte() { return empty() ? 0 : data_[pos_++]; }
    // Little-endian; each read in its own statement, so the order is fixed.
    uint16_t u16() {
        const uint16_t low = byte();
        return static_cast<uint16_t>(low | (byte() << 8));
    }
    uint32_t u32() {
        const uint32_t low = u16();
        return low | (static_cast<uint32_t>(u16()) << 16);
    }
    uint64_t u64() {
        const uint64_t low = u32();
        return low | (static_cast<uint64_t>(u32()) << 32);
    }
    // One of n choices.
    size_t pick(size_t n) { return n == 0 ? 0 : byte() % n; }

    // A length byte (255: a 16-bit length follows), then that many bytes.
    std::string bytes() {
        size_t n = byte();
        if (n == 255) {
            n = u16();
        }
        n = std::min(n, remaining());
        std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return out;
    }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

// What sd-bus accepts in a string: UTF-8 without NUL, surrogates or
// noncharacters. Anything else becomes '?', so that most inputs still make a
// message.
inline std::string dbus_text(std::string_view in) {
    std::string out;
    for (size_t i = 0; i < in.size();) {
        const auto lead = static_cast<uint8_t>(in[i]);
        size_t len = lead < 0x80             ? 1
                     : (lead & 0xE0) == 0xC0 ? 2
                     : (lead & 0xF0) == 0xE0 ? 3
                     : (lead & 0xF8) == 0xF0 ? 4
                                             : 0;
        uint32_t cp = len == 1   ? lead
                      : len == 2 ? lead & 0x1Fu
                      : len == 3 ? lead & 0x0Fu
                                 : lead & 0x07u;
        bool ok = len != 0 && i + len <= in.size() && lead != 0;
        for (size_t k = 1; ok && k < len; ++k) {
            const auto c = static_cast<uint8_t>(in[i + k]);
            ok = (c & 0xC0) == 0x80;
            cp = (cp << 6) | (c & 0x3Fu);
        }
        static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF) &&
             !(cp >= 0xFDD0 && cp <= 0xFDEF) && (cp & 0xFFFE) != 0xFFFE;
        if (ok) {
            out.append(in.substr(i, len));
            i += len;
        } else {
            out += '?';
            ++i;
        }
    }
    return out;
}

// The types a variant gets in these harnesses: every type an option table
// knows, and a few that none does.
inline constexpr std::string_view kVariantTypes[] = {
    "s", "t", "u", "b", "au", "as", "i", "x",     "y",     "ay",
    "d", "o", "g", "n", "q",  "at", "v", "a{sv}", "a{ss}", "(su)",
};

// Appends one value of `type` (one of kVariantTypes) built from `in`.
// Returns what sd-bus returned; a negative value means the message is
// unusable and the input should be dropped.
inline int append_value(sd_bus_message* m, std::string_view type, Input& in, int depth = 0) {
    if (type == "s") {
        return sd_bus_message_append_basic(m, 's', dbus_text(in.bytes()).c_str());
    }
    if (type == "o") {
        static constexpr const char* kPaths[] = {"/", "/org/apikeyd1", "/a/b_c/D9"};
        return sd_bus_message_append_basic(m, 'o', kPaths[in.pick(3)]);
    }
    if (type == "g") {
        static constexpr const char* kSignatures[] = {"", "s", "a{sv}", "au"};
        return sd_bus_message_append_basic(m, 'g', kSignatures[in.pick(4)]);
    }
    if (type == "t") {
        const uint64_t v = in.u64();
        return sd_bus_message_append_basic(m, 't', &v);
    }
    if (type == "x") {
        const auto v = static_cast<int64_t>(in.u64());
        return sd_bus_message_append_basic(m, 'x', &v);
    }
    if (type == "u") {
        const uint32_t v = in.u32();
        return sd_bus_message_append_basic(m, 'u', &v);
    }
    if (type == "i") {
        const auto v = static_cast<int32_t>(in.u32());
        return sd_bus_message_append_basic(m, 'i', &v);
    }
    if (type == "n" || type == "q") {
        const uint16_t v = in.u16();
        return sd_bus_message_append_basic(m, type[0], &v);
    }
    if (type == "y") {
        const uint8_t v = in.byte();
        return sd_bus_message_append_basic(m, 'y', &v);
    }
    if (type == "b") {
        const int v = in.byte() & 1;
        return sd_bus_message_append_basic(m, 'b', &v);
    }
    if (type == "d") {
        const uint64_t bits = in.u64();
        double v = 0;
        std::memcpy(&v, &bits, sizeof v);
        return sd_bus_message_append_basic(m, 'd', &v);
    }
    if (type == "au" || type == "at") {
        const size_t n = in.byte() % 40;
        if (type == "au") {
            std::vector<uint32_t> v(n);
            for (auto& x : v) {
                x = in.byte() < 200 ? in.byte() % 32 : in.u32();
            }
            return sd_bus_message_append_array(m, 'u', v.data(), v.size() * sizeof(uint32_t));
        }
        std::vector<uint64_t> v(n);
        for (auto& x : v) {
            x = in.u64();
        }
        return sd_bus_message_append_array(m, 't', v.data(), v.size() * sizeof(uint64_t));
    }
    if (type == "ay") {
        const auto b = in.bytes();
        return sd_bus_message_append_array(m, 'y', b.data(), b.size());
    }
    if (type == "as" || type == "a{ss}") {
        const bool dict = type == "a{ss}";
        int r = sd_bus_message_open_container(m, 'a', dict ? "{ss}" : "s");
        const size_t n = in.byte() % 8;
        for (size_t i = 0; i < n && r >= 0; ++i) {
            if (dict) {
                const auto key = dbus_text(in.bytes());
                const auto value = dbus_text(in.bytes());
                r = sd_bus_message_append(m, "{ss}", key.c_str(), value.c_str());
            } else {
                r = sd_bus_message_append_basic(m, 's', dbus_text(in.bytes()).c_str());
            }
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    if (type == "(su)") {
        const uint32_t u = in.u32();
        return sd_bus_message_append(m, "(su)", dbus_text(in.bytes()).c_str(), u);
    }
    // Containers of variants: past a small depth only simple values, so that
    // a message stays small.
    const size_t choices = depth >= 3 ? 4 : std::size(kVariantTypes);
    if (type == "v") {
        const auto inner = kVariantTypes[in.pick(choices)];
        int r = sd_bus_message_open_container(m, 'v', std::string(inner).c_str());
        if (r >= 0) {
            r = append_value(m, inner, in, depth + 1);
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    if (type == "a{sv}") {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        const size_t n = in.byte() % 6;
        for (size_t i = 0; i < n && r >= 0; ++i) {
            r = sd_bus_message_open_container(m, 'e', "sv");
            if (r >= 0) {
                r = sd_bus_message_append_basic(m, 's', dbus_text(in.bytes()).c_str());
            }
            if (r >= 0) {
                r = append_value(m, "v", in, depth + 1);
            }
            if (r >= 0) {
                r = sd_bus_message_close_container(m);
            }
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
    }
    return -EINVAL;
}

}  // namespace apikeyd::fuzz
