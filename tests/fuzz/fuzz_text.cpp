// libFuzzer harness: the hand-written text code in common/ that every
// user-chosen string passes through before a terminal or a log shows it
// (printable_text), and the hex and Base64 encoders `run --mask` and the
// clipboard use (encoding).
//
// escaped() is checked against what it promises, with a UTF-8 reference
// written from RFC 3629 here; the encoders against OpenSSL's
// EVP_EncodeBlock and a plain hex loop.

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.hpp"
#include "common/printable_text.hpp"

namespace {

using namespace apikeyd;

[[noreturn]] void fail(const char* what, std::string_view input) {
    std::fprintf(stderr, "fuzz_text: %s (input of %zu bytes)\n", what, input.size());
    std::abort();
}

// RFC 3629: the code point at the front and its length, or nullopt.
std::optional<std::pair<char32_t, size_t>> ref_decode(std::string_view s) {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = b(0);
    size_t length = 0;
    char32_t c = 0;
    char32_t least = 0;
    if (lead < 0x80) {
        return std::pair<char32_t, size_t>{lead, 1};
    } else if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2, c = lead & 0x1F, least = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3, c = lead & 0x0F, least = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4, c = lead & 0x07, least = 0x10000;
    } else {
        return std::nullopt;
    }
    if (s.size() < length) {
        return std::nullopt;
    }
    for (size_t i = 1; i < length; ++i) {
        if ((b(i) & 0xC0) != 0x80) {
            return std::nullopt;
        }
        c = (c << 6) | (b(i) & 0x3F);
    }
    if (c < least || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        return std::nullopt;
    }
    return std::pair<char32_t, size_t>{c, length};
}

// Every character of `s`, or nullopt when it is not UTF-8.
std::optional<std::vector<char32_t>> ref_characters(std::string_view s) {
    std::vector<char32_t> out;
    while (!s.empty()) {
        const auto one = ref_decode(s);
        if (!one) {
            return std::nullopt;
        }
        out.push_back(one->first);
        s.remove_prefix(one->second);
    }
    return out;
}

void check_decode(std::string_view input) {
    if (input.empty()) {
        return;
    }
    const auto got = text::decode_front(input);
    const auto want = ref_decode(input);
    if (got.length == 0 || got.length > std::min<size_t>(4, input.size())) {
        fail("decode_front took no bytes or too many", input);
    }
    if (got.code_point.has_value() != want.has_value()) {
        fail("decode_front and RFC 3629 disagree on whether the front is UTF-8", input);
    }
    if (want && (*got.code_point != want->first || got.length != want->second)) {
        fail("decode_front decoded another character", input);
    }
}

void check_escaped(std::string_view input) {
    const std::string not_utf8 = text::escaped(input, text::Escape::NotUtf8);
    const auto kept = ref_characters(not_utf8);
    if (!kept) {
        fail("escaped(NotUtf8) is not UTF-8", input);
    }
    if (ref_characters(input) && input.find('\\') == std::string_view::npos && not_utf8 != input) {
        fail("escaped(NotUtf8) changed UTF-8 text", input);
    }

    const std::string shown = text::escaped(input, text::Escape::Unprintable);
    const auto characters = ref_characters(shown);
    if (!characters) {
        fail("escaped(Unprintable) is not UTF-8", input);
    }
    for (const char32_t c : *characters) {
        if (!text::unprintable_kind(c).empty()) {
            fail("escaped(Unprintable) left an unprintable character", input);
        }
    }

    const std::string ascii = text::escaped(input, text::Escape::NonAscii);
    for (const char c : ascii) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7F) {
            fail("escaped(NonAscii) left a byte that is not printable ASCII", input);
        }
    }
}

std::string openssl_base64(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(data.data()),
                                  static_cast<int>(data.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

void check_encoders(std::string_view input) {
    using namespace encoding;
    std::string hex;
    append_hex(hex, input);
    std::string upper;
    append_hex(upper, input, HexCase::Upper);
    std::string want_hex;
    std::string want_upper;
    char pair[3];
    for (const char byte : input) {
        std::snprintf(pair, sizeof pair, "%02x", static_cast<unsigned char>(byte));
        want_hex += pair;
        std::snprintf(pair, sizeof pair, "%02X", static_cast<unsigned char>(byte));
        want_upper += pair;
    }
    if (hex != want_hex || upper != want_upper) {
        fail("append_hex differs from printf's %02x", input);
    }

    const std::string want = openssl_base64(input);
    std::string got;
    append_base64(got, input);
    if (got != want) {
        fail("append_base64 differs from EVP_EncodeBlock", input);
    }
    std::string want_url = want;
    std::replace(want_url.begin(), want_url.end(), '+', '-');
    std::replace(want_url.begin(), want_url.end(), '/', '_');
    std::string url;
    append_base64(url, input, Base64Alphabet::UrlSafe);
    if (url != want_url) {
        fail("append_base64 (URL-safe) differs from EVP_EncodeBlock's, translated", input);
    }
    std::string bare;
    append_base64(bare, input, Base64Alphabet::Standard, Padding::Without);
    if (bare != want.substr(0, want.find('='))) {
        fail("append_base64 without padding is not the padded form cut", input);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_decode(input);
    check_escaped(input);
    check_encoders(input);
    return 0;
}
