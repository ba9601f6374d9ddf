// libFuzzer harness: the issued-key text format (common/key_format).
//
// Every input is handed to parse() as key text, and the answer is compared
// with a plain reference written from docs/dbus-api.md alone (split at the first
// '_', check each part, CRC-32 with zlib, Base62 by division). A key that
// parses must compose back to the same text; compose() must refuse exactly
// what the reference refuses.

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/key_format.hpp"

namespace {

using namespace apikeyd;

[[noreturn]] void fail(const char* what, std::string_view text) {
    std::fprintf(stderr, "fuzz_key_format: %s (input of %zu bytes)\n", what, text.size());
    std::abort();
}

bool ref_prefix_ok(std::string_view p) {
    if (p.empty() || p.size() > 16) {
        return false;
    }
    for (char c : p) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

bool ref_base62(std::string_view s) {
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
            return false;
        }
    }
    return true;
}

std::string ref_checksum(std::string_view random) {
    unsigned long crc = crc32(0L, Z_NULL, 0);
    crc =
        crc32(crc, reinterpret_cast<const Bytef*>(random.data()), static_cast<uInt>(random.size()));
    static constexpr char kAlphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string out;
    auto value = static_cast<uint32_t>(crc);
    do {
        out.insert(out.begin(), kAlphabet[value % 62]);
        value /= 62;
    } while (value != 0);
    while (out.size() < 6) {
        out.insert(out.begin(), '0');
    }
    return out;
}

struct RefKey {
    std::string_view prefix, random, checksum;
};

bool ref_parse(std::string_view text, RefKey& out) {
    const auto sep = text.find('_');
    if (sep == std::string_view::npos) {
        return false;
    }
    const auto prefix = text.substr(0, sep);
    const auto body = text.substr(sep + 1);
    if (!ref_prefix_ok(prefix) || body.size() != 38 || !ref_base62(body)) {
        return false;
    }
    out = {prefix, body.substr(0, 32), body.substr(32)};
    return ref_checksum(out.random) == out.checksum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    RefKey expected{};
    const bool expect_ok = ref_parse(text, expected);
    const auto parsed = key_format::parse(text);
    if (parsed.has_value() != expect_ok) {
        fail(expect_ok ? "parse() refused a well-formed key" : "parse() accepted a malformed key",
             text);
    }
    if (parsed) {
        if (parsed->prefix != expected.prefix || parsed->random != expected.random ||
            parsed->checksum != expected.checksum) {
            fail("parse() split a key in the wrong place", text);
        }
        // The views must point into the input.
        if (parsed->prefix.data() != text.data() ||
            parsed->checksum.data() + parsed->checksum.size() != text.data() + text.size()) {
            fail("parse() returned views outside the input", text);
        }
        char out[key_format::kMaxIssuedLength];
        if (key_format::issued_length(parsed->prefix) != text.size() ||
            key_format::compose(parsed->prefix, parsed->random, out) != text.size() ||
            std::string_view(out, text.size()) != text) {
            fail("compose() does not give back a parsed key", text);
        }
    }

    // The pieces on their own: the prefix check, the Base62 class and the
    // checksum of whatever the input holds.
    if (key_format::is_valid_prefix(text) != ref_prefix_ok(text)) {
        fail("is_valid_prefix() disagrees with the reference", text);
    }
    for (char c : text) {
        if (key_format::is_base62_char(c) != ref_base62(std::string_view(&c, 1))) {
            fail("is_base62_char() disagrees with the reference", text);
        }
    }
    const auto sum = key_format::checksum(text);
    if (std::string_view(sum.data(), sum.size()) != ref_checksum(text)) {
        fail("checksum() disagrees with zlib's CRC-32 in Base62", text);
    }

    // compose() with the input cut into a prefix and a random part: it must
    // write exactly when both parts are valid.
    if (size > 0) {
        const size_t cut = data[0] % std::min<size_t>(size, 18);
        const auto prefix = text.substr(1, cut);
        const auto rest = text.substr(std::min(size, 1 + cut));
        const auto random = rest.substr(0, std::min<size_t>(rest.size(), 40));
        const bool valid = ref_prefix_ok(prefix) && random.size() == 32 && ref_base62(random);
        char out[key_format::kMaxIssuedLength];
        const size_t written = key_format::compose(prefix, random, out);
        if ((written != 0) != valid) {
            fail("compose() accepted or refused the wrong parts", text);
        }
        if (written != 0) {
            const auto back = key_format::parse(std::string_view(out, written));
            if (written != key_format::issued_length(prefix) || !back || back->prefix != prefix ||
                back->random != random) {
                fail("a composed key does not parse back", text);
            }
        }
    }
    return 0;
}
