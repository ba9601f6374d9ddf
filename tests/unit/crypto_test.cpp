#include "daemon/crypto.hpp"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace apikeyd::crypto {
namespace {

std::vector<uint8_t> from_hex(std::string_view hex) {
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(
            static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return bytes;
}

std::vector<uint8_t> repeat(uint8_t byte, size_t count) {
    return std::vector<uint8_t>(count, byte);
}

std::vector<uint8_t> counting(uint8_t first, size_t count) {
    std::vector<uint8_t> bytes(count);
    for (size_t i = 0; i < count; ++i) {
        bytes[i] = static_cast<uint8_t>(first + i);
    }
    return bytes;
}

std::vector<uint8_t> to_vector(std::span<const uint8_t> bytes) {
    return {bytes.begin(), bytes.end()};
}

struct HkdfVector {
    const char* name;
    std::vector<uint8_t> key;
    std::string_view info;
    size_t length;
    std::string_view okm;
};

// Our HKDF always has an empty salt, so of RFC 5869's SHA-256 cases only test
// case 3 applies; the others were computed with Python's hmac module.
const std::vector<HkdfVector>& hkdf_vectors() {
    static const std::vector<HkdfVector> vectors = {
        {"RFC 5869 test case 3", repeat(0x0b, 22), "", 42,
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
        {"one block with a label", counting(0, 32), "apikeyd record key", 32,
         "1d67017851858311eb43fb5fbd52872e0a01f076385aa6ab906acfb6ad6b344c"},
        {"three blocks with a label", counting(0, 32), "apikeyd pepper", 80,
         "58b937e29eb9319c5c0c274417b657bf6efc07d1e500d6b3919fe4cda9728e48"
         "8009674084866f1e3c9265c52608f3f48ac442ca9435bae52c15c598754efb0d"
         "5666ff9518563f6d0d7c15d90a6b5baa"},
    };
    return vectors;
}

TEST(Hkdf, MatchesVectors) {
    for (const auto& vector : hkdf_vectors()) {
        auto okm = hkdf_sha256(vector.key, vector.info, vector.length);
        ASSERT_TRUE(okm.ok()) << vector.name;
        EXPECT_EQ(to_vector(okm->span()), from_hex(vector.okm)) << vector.name;
    }
}

TEST(Hkdf, DifferentLabelsGiveUnrelatedKeys) {
    const auto key = counting(0, 32);
    auto a = hkdf_sha256(key, "apikeyd record key", 32);
    auto b = hkdf_sha256(key, "apikeyd record kez", 32);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_FALSE(equal_ct(a->span(), b->span()));
}

// RFC 5869: at most 255 blocks of the hash's output.
constexpr size_t kLongestHkdfOutput = 255 * kMacSize;

TEST(Hkdf, AcceptsTheLongestOutputRfc5869Allows) {
    auto okm = hkdf_sha256(counting(0, 32), "label", kLongestHkdfOutput);
    ASSERT_TRUE(okm.ok());
    EXPECT_EQ(okm->size(), kLongestHkdfOutput);
}

TEST(Hkdf, RejectsEmptyOrOverlongOutput) {
    for (const size_t length : {size_t{0}, kLongestHkdfOutput + 1}) {
        auto okm = hkdf_sha256(counting(0, 32), "label", length);
        ASSERT_FALSE(okm.ok()) << length;
        EXPECT_EQ(okm.error().code, ErrorCode::Internal);
    }
}

TEST(Hkdf, RejectsEmptyKey) {
    auto okm = hkdf_sha256({}, "label", 32);
    ASSERT_FALSE(okm.ok());
    EXPECT_EQ(okm.error().code, ErrorCode::Internal);
}

struct HmacVector {
    const char* name;
    std::vector<uint8_t> key;
    std::vector<uint8_t> data;
    std::string_view mac;
};

const std::vector<HmacVector>& hmac_vectors() {
    static const std::vector<HmacVector> vectors = {
        {"RFC 4231 test case 1", repeat(0x0b, 20), to_vector(bytes_of("Hi There")),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"RFC 4231 test case 2", to_vector(bytes_of("Jefe")),
         to_vector(bytes_of("what do ya want for nothing?")),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"RFC 4231 test case 4", counting(0x01, 25), repeat(0xcd, 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"RFC 4231 test case 6 (key longer than a block)", repeat(0xaa, 131),
         to_vector(bytes_of("Test Using Larger Than Block-Size Key - Hash Key First")),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    return vectors;
}

TEST(Hmac, MatchesRfc4231Vectors) {
    for (const auto& vector : hmac_vectors()) {
        auto mac = hmac_sha256(vector.key, vector.data);
        ASSERT_TRUE(mac.ok()) << vector.name;
        EXPECT_EQ(to_vector(*mac), from_hex(vector.mac)) << vector.name;
    }
}

TEST(Hmac, RejectsEmptyKey) {
    auto mac = hmac_sha256({}, bytes_of("data"));
    ASSERT_FALSE(mac.ok());
    EXPECT_EQ(mac.error().code, ErrorCode::Internal);
}

struct GcmVector {
    const char* name;
    std::string_view key;
    std::string_view aad;
    std::string_view sealed;  // nonce || ciphertext || tag
    std::string_view plaintext;
};

// From "The Galois/Counter Mode of Operation (GCM)", McGrew and Viega, test
// cases 13, 14 and 16 (the 256-bit-key cases with a 96-bit IV).
constexpr std::array kGcmVectors = {
    GcmVector{"GCM test case 13",
              "0000000000000000000000000000000000000000000000000000000000000000", "",
              "000000000000000000000000"
              "530f8afbc74536b9a963b4f1c4cb738b",
              ""},
    GcmVector{"GCM test case 14",
              "0000000000000000000000000000000000000000000000000000000000000000", "",
              "000000000000000000000000"
              "cea7403d4d606b6e074ec5d3baf39d18"
              "d0d1c8a799996bf0265b98b5d48ab919",
              "00000000000000000000000000000000"},
    GcmVector{"GCM test case 16",
              "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
              "feedfacedeadbeeffeedfacedeadbeefabaddad2",
              "cafebabefacedbaddecaf888"
              "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
              "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
              "76fc6ece0f4e1768cddf8853bb2d551b",
              "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
              "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"},
};

TEST(AesGcm, OpensKnownAnswerVectors) {
    for (const auto& vector : kGcmVectors) {
        auto plaintext =
            aes256gcm_open(from_hex(vector.key), from_hex(vector.sealed), from_hex(vector.aad));
        ASSERT_TRUE(plaintext.ok()) << vector.name;
        EXPECT_EQ(to_vector(plaintext->span()), from_hex(vector.plaintext)) << vector.name;
    }
}

TEST(AesGcm, RoundTripsPlaintextsOfEverySize) {
    const auto key = counting(0x40, kKeySize);
    for (const size_t size : {0U, 1U, 15U, 16U, 17U, 1000U}) {
        for (const std::string_view aad : {"", "k_abcdefghijkl|owner=1000|scopes=read"}) {
            const auto plaintext = counting(0x11, size);
            auto sealed = aes256gcm_seal(key, plaintext, bytes_of(aad));
            ASSERT_TRUE(sealed.ok()) << size;
            EXPECT_EQ(sealed->size(), kGcmNonceSize + size + kGcmTagSize);
            auto opened = aes256gcm_open(key, *sealed, bytes_of(aad));
            ASSERT_TRUE(opened.ok()) << size << " " << aad;
            EXPECT_EQ(to_vector(opened->span()), plaintext);
        }
    }
}

TEST(AesGcm, UsesAFreshNonceForEverySeal) {
    const auto key = counting(0x40, kKeySize);
    auto a = aes256gcm_seal(key, bytes_of("same plaintext"), {});
    auto b = aes256gcm_seal(key, bytes_of("same plaintext"), {});
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_NE(std::vector(a->begin(), a->begin() + kGcmNonceSize),
              std::vector(b->begin(), b->begin() + kGcmNonceSize));
    EXPECT_NE(*a, *b);
}

struct Tamper {
    const char* name;
    std::function<void(std::vector<uint8_t>& key, std::vector<uint8_t>& sealed,
                       std::vector<uint8_t>& aad)>
        apply;
};

TEST(AesGcm, RejectsAnyTampering) {
    const std::vector<Tamper> tampers = {
        {"nonce", [](auto&, auto& sealed, auto&) { sealed[0] ^= 0x01; }},
        {"nonce last byte", [](auto&, auto& sealed, auto&) { sealed[kGcmNonceSize - 1] ^= 0x80; }},
        {"ciphertext", [](auto&, auto& sealed, auto&) { sealed[kGcmNonceSize] ^= 0x01; }},
        {"ciphertext last byte",
         [](auto&, auto& sealed, auto&) { sealed[sealed.size() - kGcmTagSize - 1] ^= 0x01; }},
        {"tag", [](auto&, auto& sealed, auto&) { sealed[sealed.size() - kGcmTagSize] ^= 0x01; }},
        {"tag last byte", [](auto&, auto& sealed, auto&) { sealed.back() ^= 0x01; }},
        {"associated data", [](auto&, auto&, auto& aad) { aad[0] ^= 0x01; }},
        {"associated data dropped", [](auto&, auto&, auto& aad) { aad.clear(); }},
        {"associated data extended", [](auto&, auto&, auto& aad) { aad.push_back(0); }},
        {"key", [](auto& key, auto&, auto&) { key[31] ^= 0x01; }},
        {"truncated", [](auto&, auto& sealed, auto&) { sealed.pop_back(); }},
        {"extended", [](auto&, auto& sealed, auto&) { sealed.push_back(0); }},
        {"tag only",
         [](auto&, auto& sealed, auto&) { sealed.resize(kGcmNonceSize + kGcmTagSize); }},
        {"shorter than nonce and tag",
         [](auto&, auto& sealed, auto&) { sealed.resize(kGcmNonceSize + kGcmTagSize - 1); }},
        {"empty", [](auto&, auto& sealed, auto&) { sealed.clear(); }},
        {"short key", [](auto& key, auto&, auto&) { key.pop_back(); }},
        {"long key", [](auto& key, auto&, auto&) { key.push_back(0); }},
    };
    const auto original_key = counting(0x40, kKeySize);
    const auto original_aad = to_vector(bytes_of("record k_abcdefghijkl"));
    auto original_sealed = aes256gcm_seal(original_key, bytes_of("imported secret"), original_aad);
    ASSERT_TRUE(original_sealed.ok());
    for (const auto& tamper : tampers) {
        auto key = original_key;
        auto sealed = *original_sealed;
        auto aad = original_aad;
        tamper.apply(key, sealed, aad);
        auto opened = aes256gcm_open(key, sealed, aad);
        ASSERT_FALSE(opened.ok()) << tamper.name;
        EXPECT_EQ(opened.error().code, ErrorCode::Internal) << tamper.name;
        EXPECT_EQ(opened.error().message, "decryption failed") << tamper.name;
    }
}

TEST(AesGcm, SealRejectsKeysOfTheWrongSize) {
    for (const size_t size : {0U, 16U, 31U, 33U}) {
        auto sealed = aes256gcm_seal(counting(0, size), bytes_of("x"), {});
        ASSERT_FALSE(sealed.ok()) << size;
        EXPECT_EQ(sealed.error().code, ErrorCode::Internal);
    }
}

struct EqualVector {
    const char* name;
    std::string_view a;
    std::string_view b;
    bool equal;
};

constexpr std::array kEqualVectors = {
    EqualVector{"both empty", "", "", true},
    EqualVector{"same bytes", "abcdef", "abcdef", true},
    EqualVector{"first byte differs", "xbcdef", "abcdef", false},
    EqualVector{"last byte differs", "abcdef", "abcdez", false},
    EqualVector{"one bit differs", "abcdef", "abcdeg", false},
    EqualVector{"prefix of the other", "abc", "abcdef", false},
    EqualVector{"empty and not", "", "a", false},
};

TEST(EqualCt, ComparesContentAndLength) {
    for (const auto& vector : kEqualVectors) {
        EXPECT_EQ(equal_ct(bytes_of(vector.a), bytes_of(vector.b)), vector.equal) << vector.name;
        EXPECT_EQ(equal_ct(bytes_of(vector.b), bytes_of(vector.a)), vector.equal) << vector.name;
    }
}

TEST(RandomBytes, FillsTheWholeBuffer) {
    std::array<uint8_t, 64> a{};
    std::array<uint8_t, 64> b{};
    ASSERT_TRUE(random_bytes(a).ok());
    ASSERT_TRUE(random_bytes(b).ok());
    EXPECT_NE(a, b);
    // 64 zero bytes from a working CSPRNG has probability 2^-512.
    EXPECT_NE(a, (std::array<uint8_t, 64>{}));
    EXPECT_TRUE(random_bytes({}).ok());
}

TEST(RandomSecret, HasTheRequestedSize) {
    for (const size_t size : {0U, 1U, 32U, 4096U}) {
        auto secret = random_secret(size);
        ASSERT_TRUE(secret.ok()) << size;
        EXPECT_EQ(secret->size(), size);
    }
}

}  // namespace
}  // namespace apikeyd::crypto

namespace apikeyd::crypto {
namespace {

TEST(Scrypt, MatchesRfc7914Vector) {
    const std::string password = "password";
    const std::string salt = "NaCl";
    const auto key = scrypt(bytes_of(password), bytes_of(salt), ScryptParams{1024, 8, 16}, 64);
    ASSERT_TRUE(key);
    EXPECT_EQ(std::vector<uint8_t>(key->span().begin(), key->span().end()),
              from_hex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d9"
                       "2e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"));
}

TEST(Scrypt, RefusesAnEmptySecretOrSalt) {
    const std::string salt = "NaCl";
    EXPECT_FALSE(scrypt({}, bytes_of(salt), ScryptParams{1024, 8, 1}, 32));
    EXPECT_FALSE(scrypt(bytes_of(salt), {}, ScryptParams{1024, 8, 1}, 32));
}

}  // namespace
}  // namespace apikeyd::crypto
