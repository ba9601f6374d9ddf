#pragma once
// The cryptographic primitives apikeyd uses, all from OpenSSL 3. No state,
// no logging; errors are values.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/secret.hpp"
#include "daemon/result.hpp"

namespace apikeyd::crypto {

inline constexpr size_t kKeySize = 32;       // AES-256, HMAC-SHA256 keys, master key
inline constexpr size_t kMacSize = 32;       // HMAC-SHA256 output
inline constexpr size_t kGcmNonceSize = 12;  // 96-bit random nonce
inline constexpr size_t kGcmTagSize = 16;

using Mac = std::array<uint8_t, kMacSize>;

// Fills `out` from OpenSSL's CSPRNG.
Result<void> random_bytes(std::span<uint8_t> out);
Result<SecretBuffer> random_secret(size_t size);

// HKDF-SHA256 (RFC 5869) with an empty salt and `info` as the label.
Result<SecretBuffer> hkdf_sha256(std::span<const uint8_t> key, std::string_view info,
                                 size_t length);

// scrypt (RFC 7914): stretches a human-held secret (a recovery key) so that
// each guess costs `n * r * 128` bytes of memory and the time to fill them.
struct ScryptParams {
    uint64_t n = 1 << 15;
    uint32_t r = 8;
    uint32_t p = 1;
};
Result<SecretBuffer> scrypt(std::span<const uint8_t> secret, std::span<const uint8_t> salt,
                            const ScryptParams& params, size_t length);

// HMAC-SHA256 (RFC 2104).
Result<Mac> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);
// The same, written straight into `out` (kMacSize bytes): for a MAC that is
// itself private (Sign's), so that no copy is left on the stack.
Result<void> hmac_sha256_into(std::span<const uint8_t> key, std::span<const uint8_t> data,
                              std::span<uint8_t, kMacSize> out);

// AES-256-GCM. The sealed form is nonce || ciphertext || tag.
Result<std::vector<uint8_t>> aes256gcm_seal(std::span<const uint8_t> key,
                                            std::span<const uint8_t> plaintext,
                                            std::span<const uint8_t> associated_data);
// Fails with ErrorCode::Internal (and no detail) on a wrong key, a changed
// ciphertext, a changed tag or changed associated data.
Result<SecretBuffer> aes256gcm_open(std::span<const uint8_t> key, std::span<const uint8_t> sealed,
                                    std::span<const uint8_t> associated_data);

// Constant-time equality; false when the sizes differ (sizes are public).
bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b);

// `count` characters of Base62 text from the CSPRNG, uniformly distributed
// (rejection sampling) and encoded without secret-dependent branches or
// table lookups.
Result<SecretBuffer> random_base62(size_t count);

// Text helpers for spans of chars.
inline std::span<const uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace apikeyd::crypto
