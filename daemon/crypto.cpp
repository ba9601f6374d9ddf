#include "daemon/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <limits>

#include "common/c_handle.hpp"

namespace apikeyd::crypto {
namespace {

using KdfPtr = CHandle<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = CHandle<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using MacPtr = CHandle<EVP_MAC, EVP_MAC_free>;
using MacCtxPtr = CHandle<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using CipherPtr = CHandle<EVP_CIPHER, EVP_CIPHER_free>;
using CipherCtxPtr = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

// OpenSSL's length arguments are int.
inline constexpr size_t kMaxChunk = static_cast<size_t>(std::numeric_limits<int>::max());

// Accept bytes below 4 * 62 only, so that byte % 62 is exactly uniform.
inline constexpr unsigned kBase62RejectionBound = 248;
inline constexpr size_t kRandomPoolSize = 128;

// The messages are fixed text: whatever OpenSSL's error queue says could
// name key sizes or positions in secret data, so callers get none of it.
Error failure(const char* message) {
    // Dropped rather than left queued, where it would be mistaken for the
    // cause of some later, unrelated OpenSSL failure on this thread.
    ERR_clear_error();
    return make_error(ErrorCode::Internal, message);
}

// OSSL_PARAM holds non-const pointers because it serves both directions;
// parameters built here are only ever read by OpenSSL.
OSSL_PARAM input_octets(const char* name, const void* data, size_t size) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<void*>(data), size);
}

OSSL_PARAM input_utf8(const char* name, const char* text) {
    return OSSL_PARAM_construct_utf8_string(name, const_cast<char*>(text), 0);
}

int as_int(size_t size) {
    return static_cast<int>(size);
}

// The algorithms of the hot paths are fetched from the provider once per
// process: a fetch takes a lock and searches the provider's tables, and
// costs as much as the HMAC of a key text itself. They hold no key.
const EVP_CIPHER* aes256gcm() {
    static const CipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    return cipher.get();
}

// An HMAC-SHA256 context without a key, made once. Each MAC starts from a
// copy of it: naming the digest in every EVP_MAC_init would fetch SHA-256
// anew. The copy is keyed, used and freed (which wipes it) within one call,
// so no key-derived state outlives the call.
const EVP_MAC_CTX* hmac_sha256_unkeyed() {
    static const MacCtxPtr ctx = [] {
        MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
        MacCtxPtr made(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);
        const OSSL_PARAM params[] = {
            input_utf8(OSSL_MAC_PARAM_DIGEST, "SHA256"),
            OSSL_PARAM_construct_end(),
        };
        if (made && EVP_MAC_CTX_set_params(made.get(), params) != 1) {
            made.reset();
        }
        return made;
    }();
    return ctx.get();
}

CipherCtxPtr gcm_context(bool encrypt, std::span<const uint8_t> key,
                         std::span<const uint8_t> nonce) {
    const EVP_CIPHER* cipher = aes256gcm();
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!cipher || !ctx ||
        EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), nonce.data(), encrypt ? 1 : 0, nullptr) !=
            1) {
        return nullptr;
    }
    return ctx;
}

// GCM is a stream mode: every update writes exactly as many bytes as it reads.
bool gcm_update(EVP_CIPHER_CTX* ctx, uint8_t* out, std::span<const uint8_t> in) {
    if (in.empty()) {
        return true;
    }
    int written = 0;
    const bool ok = EVP_CipherUpdate(ctx, out, &written, in.data(), as_int(in.size())) == 1;
    return ok && (out == nullptr || static_cast<size_t>(written) == in.size());
}

bool gcm_finish(EVP_CIPHER_CTX* ctx) {
    // GCM writes nothing on finish; the tag is read or checked separately.
    uint8_t unused = 0;
    int written = 0;
    return EVP_CipherFinal_ex(ctx, &unused, &written) == 1 && written == 0;
}

// Branch-free and table-free: both the direction of a branch and the address
// of a table lookup would depend on the secret value, and either can leak
// through the branch predictor or the cache.
uint8_t base62_char(uint32_t value) {
    const auto v = static_cast<int32_t>(value);
    // (limit - v) is negative exactly when v > limit; C++20 defines >> on a
    // negative value as arithmetic, so its sign bit spreads into a full mask.
    const int32_t past_digits = (9 - v) >> 31;
    const int32_t past_upper = (35 - v) >> 31;
    return static_cast<uint8_t>('0' + v + (past_digits & ('A' - '9' - 1)) +
                                (past_upper & ('a' - 'Z' - 1)));
}

}  // namespace

Result<void> random_bytes(std::span<uint8_t> out) {
    if (out.empty()) {
        return {};
    }
    if (out.size() > kMaxChunk || RAND_bytes(out.data(), as_int(out.size())) != 1) {
        return failure("random generator failed");
    }
    return {};
}

Result<SecretBuffer> random_secret(size_t size) {
    SecretBuffer secret(size);
    if (auto filled = random_bytes(secret.span()); !filled) {
        return filled.error();
    }
    return secret;
}

Result<SecretBuffer> hkdf_sha256(std::span<const uint8_t> key, std::string_view info,
                                 size_t length) {
    // A key derived from an empty key is public, so an empty key is always a
    // caller's bug; OpenSSL would accept it or not depending on the pointer.
    if (key.empty()) {
        return failure("key derivation failed");
    }
    KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
    KdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    const OSSL_PARAM params[] = {
        input_utf8(OSSL_KDF_PARAM_DIGEST, "SHA256"),
        input_octets(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
        input_octets(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end(),
    };
    SecretBuffer derived(length);
    if (!ctx || EVP_KDF_derive(ctx.get(), derived.data(), derived.size(), params) != 1) {
        return failure("key derivation failed");
    }
    return derived;
}

Result<SecretBuffer> scrypt(std::span<const uint8_t> secret, std::span<const uint8_t> salt,
                            const ScryptParams& params, size_t length) {
    if (secret.empty() || salt.empty()) {
        return failure("key stretching failed");
    }
    KdfPtr kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
    KdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    uint64_t n = params.n;
    uint32_t r = params.r;
    uint32_t p = params.p;
    const OSSL_PARAM kdf_params[] = {
        input_octets(OSSL_KDF_PARAM_PASSWORD, secret.data(), secret.size()),
        input_octets(OSSL_KDF_PARAM_SALT, salt.data(), salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_end(),
    };
    SecretBuffer derived(length);
    if (!ctx || EVP_KDF_derive(ctx.get(), derived.data(), derived.size(), kdf_params) != 1) {
        return failure("key stretching failed");
    }
    return derived;
}

Result<void> hmac_sha256_into(std::span<const uint8_t> key, std::span<const uint8_t> data,
                              std::span<uint8_t, kMacSize> out) {
    // A MAC under an empty key is public, never what a caller here means; and
    // OpenSSL reads a null key pointer as "keep the previous key".
    if (key.empty()) {
        return failure("MAC computation failed");
    }
    const EVP_MAC_CTX* unkeyed = hmac_sha256_unkeyed();
    MacCtxPtr ctx(unkeyed ? EVP_MAC_CTX_dup(unkeyed) : nullptr);
    size_t written = 0;
    if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), nullptr) != 1 ||
        EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1 ||
        EVP_MAC_final(ctx.get(), out.data(), &written, out.size()) != 1 || written != out.size()) {
        return failure("MAC computation failed");
    }
    return {};
}

Result<Mac> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
    Mac out{};
    if (auto ok = hmac_sha256_into(key, data, out); !ok) {
        return ok.error();
    }
    return out;
}

Result<std::vector<uint8_t>> aes256gcm_seal(std::span<const uint8_t> key,
                                            std::span<const uint8_t> plaintext,
                                            std::span<const uint8_t> associated_data) {
    if (key.size() != kKeySize || plaintext.size() > kMaxChunk ||
        associated_data.size() > kMaxChunk) {
        return failure("encryption failed");
    }
    std::vector<uint8_t> sealed(kGcmNonceSize + plaintext.size() + kGcmTagSize);
    const auto nonce = std::span(sealed).first(kGcmNonceSize);
    if (auto filled = random_bytes(nonce); !filled) {
        return filled.error();
    }
    uint8_t* ciphertext = sealed.data() + kGcmNonceSize;
    uint8_t* tag = ciphertext + plaintext.size();
    OSSL_PARAM tag_param[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kGcmTagSize),
        OSSL_PARAM_construct_end(),
    };
    CipherCtxPtr ctx = gcm_context(true, key, nonce);
    if (!ctx || !gcm_update(ctx.get(), nullptr, associated_data) ||
        !gcm_update(ctx.get(), ciphertext, plaintext) || !gcm_finish(ctx.get()) ||
        EVP_CIPHER_CTX_get_params(ctx.get(), tag_param) != 1) {
        return failure("encryption failed");
    }
    return sealed;
}

Result<SecretBuffer> aes256gcm_open(std::span<const uint8_t> key, std::span<const uint8_t> sealed,
                                    std::span<const uint8_t> associated_data) {
    if (key.size() != kKeySize || sealed.size() < kGcmNonceSize + kGcmTagSize ||
        sealed.size() - kGcmNonceSize - kGcmTagSize > kMaxChunk ||
        associated_data.size() > kMaxChunk) {
        return failure("decryption failed");
    }
    const auto nonce = sealed.first(kGcmNonceSize);
    const auto ciphertext =
        sealed.subspan(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
    const auto tag = sealed.last(kGcmTagSize);
    const OSSL_PARAM tag_param[] = {
        input_octets(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), tag.size()),
        OSSL_PARAM_construct_end(),
    };
    // Decrypted straight into wiped memory; on a tag mismatch the destructor
    // wipes the unauthenticated plaintext before anyone can see it.
    SecretBuffer plaintext(ciphertext.size());
    CipherCtxPtr ctx = gcm_context(false, key, nonce);
    if (!ctx || EVP_CIPHER_CTX_set_params(ctx.get(), tag_param) != 1 ||
        !gcm_update(ctx.get(), nullptr, associated_data) ||
        !gcm_update(ctx.get(), plaintext.data(), ciphertext) || !gcm_finish(ctx.get())) {
        return failure("decryption failed");
    }
    return plaintext;
}

bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<SecretBuffer> random_base62(size_t count) {
    SecretBuffer text(count);
    // A SecretBuffer so the accepted bytes, which determine the text, are
    // wiped on every way out of this function.
    SecretBuffer pool(kRandomPoolSize);
    size_t filled = 0;
    while (filled < count) {
        if (auto drawn = random_bytes(pool.span()); !drawn) {
            return drawn.error();
        }
        // Only whether a byte was rejected shows in timing, and rejected
        // bytes never reach the output.
        for (size_t i = 0; i < pool.size() && filled < count; ++i) {
            const uint8_t byte = pool.data()[i];
            if (byte < kBase62RejectionBound) {
                text.data()[filled++] = base62_char(byte % 62U);
            }
        }
    }
    return text;
}

}  // namespace apikeyd::crypto
