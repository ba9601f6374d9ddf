#include "daemon/keyslots/pkcs11_keyslot.hpp"
#include "daemon/hex.hpp"

#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/c_handle.hpp"
#include "daemon/crypto.hpp"

namespace apikeyd {
namespace {

constexpr std::string_view kEcdhInfo = "apikeyd pkcs11 ecdh-p256 v1";
constexpr std::string_view kAadLabel = "apikeyd pkcs11 keyslot v1";
constexpr std::string_view kP256 = "prime256v1";
constexpr size_t kP256PointSize = 65;       // 0x04 || X || Y
constexpr size_t kMaxRsaCiphertext = 2048;  // RSA-16384, more than any token has
constexpr size_t kMaxShownTokens = 8;

// ------------------------------------------------------------ PKCS#11 codes ---

// CK_RVs told apart or named (pkcs11t.h, which libp11 does not install).
constexpr unsigned long kCkrPinIncorrect = 0xA0;
constexpr unsigned long kCkrPinInvalid = 0xA1;
constexpr unsigned long kCkrPinLenRange = 0xA2;
constexpr unsigned long kCkrPinExpired = 0xA3;
constexpr unsigned long kCkrPinLocked = 0xA4;

struct CkrName {
    unsigned long code;
    const char* name;
};
constexpr CkrName kCkrNames[] = {
    {0x05, "CKR_GENERAL_ERROR"},
    {0x06, "CKR_FUNCTION_FAILED"},
    {0x07, "CKR_ARGUMENTS_BAD"},
    {0x30, "CKR_DEVICE_ERROR"},
    {0x31, "CKR_DEVICE_MEMORY"},
    {0x32, "CKR_DEVICE_REMOVED"},
    {0x40, "CKR_ENCRYPTED_DATA_INVALID"},
    {0x41, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {0x54, "CKR_FUNCTION_NOT_SUPPORTED"},
    {0x60, "CKR_KEY_HANDLE_INVALID"},
    {0x63, "CKR_KEY_TYPE_INCONSISTENT"},
    {0x68, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {0x70, "CKR_MECHANISM_INVALID"},
    {0x71, "CKR_MECHANISM_PARAM_INVALID"},
    {0x82, "CKR_OBJECT_HANDLE_INVALID"},
    {0x90, "CKR_OPERATION_ACTIVE"},
    {0x91, "CKR_OPERATION_NOT_INITIALIZED"},
    {kCkrPinIncorrect, "CKR_PIN_INCORRECT"},
    {kCkrPinInvalid, "CKR_PIN_INVALID"},
    {kCkrPinLenRange, "CKR_PIN_LEN_RANGE"},
    {kCkrPinExpired, "CKR_PIN_EXPIRED"},
    {kCkrPinLocked, "CKR_PIN_LOCKED"},
    {0xB0, "CKR_SESSION_CLOSED"},
    {0xB3, "CKR_SESSION_HANDLE_INVALID"},
    {0xE0, "CKR_TOKEN_NOT_PRESENT"},
    {0xE1, "CKR_TOKEN_NOT_RECOGNIZED"},
    {0x101, "CKR_USER_NOT_LOGGED_IN"},
    {0x102, "CKR_USER_PIN_NOT_INITIALIZED"},
    {0x150, "CKR_BUFFER_TOO_SMALL"},
    {0x190, "CKR_CRYPTOKI_NOT_INITIALIZED"},
};

std::string ckr_text(unsigned long rv) {
    for (const auto& known : kCkrNames) {
        if (known.code == rv) {
            return known.name;
        }
    }
    char text[32];
    std::snprintf(text, sizeof text, "CK_RV 0x%lx", rv);
    return text;
}

// What went wrong inside libp11 or OpenSSL, read off (and cleared from)
// OpenSSL's error queue, where libp11 reports a failed PKCS#11 call as an
// error of its own library with the CK_RV as the reason. Clearing matters:
// a stale entry would confuse the next OpenSSL caller in the daemon.
struct Detail {
    unsigned long ckr = 0;  // 0: no PKCS#11 error was reported
    std::string text;       // " (CKR_...)", " (OpenSSL's reason)" or ""
};

Detail take_detail() {
    const int ckr_library = ERR_get_CKR_code();
    Detail detail;
    unsigned long last = 0;
    while (const unsigned long e = ERR_get_error()) {
        last = e;
        if (ERR_GET_LIB(e) == ckr_library) {
            detail.ckr = ERR_GET_REASON(e);
        }
    }
    if (detail.ckr != 0) {
        detail.text = " (" + ckr_text(detail.ckr) + ")";
    } else if (last != 0) {
        char text[256];
        ERR_error_string_n(last, text, sizeof text);
        detail.text = std::string(" (") + text + ")";
    }
    return detail;
}

// Leaves OpenSSL's error queue empty however an operation ends.
struct ErrorQueueGuard {
    ErrorQueueGuard() { ERR_clear_error(); }
    ~ErrorQueueGuard() { ERR_clear_error(); }
    ErrorQueueGuard(const ErrorQueueGuard&) = delete;
    ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
};

// ------------------------------------------------------------------ RAII ---

using EvpPkeyPtr = CHandle<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;

// OPENSSL_free is a macro, which a template argument cannot name.
void openssl_free(unsigned char* p) {
    OPENSSL_free(p);
}

// ------------------------------------------------------------- encoding ---

std::span<const uint8_t> key_id_of(const PKCS11_KEY& key) {
    return key.id == nullptr ? std::span<const uint8_t>() : std::span(key.id, key.id_len);
}

bool same_bytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// ------------------------------------------------------------------ PIN ---

// Checked before the token sees anything, so a malformed PIN costs no try
// of the token's retry counter. libp11 takes a C string: the copy is
// NUL-terminated and, like the PIN, wiped when it goes.
Result<SecretBuffer> pin_for_login(const SecretBuffer& pin) {
    if (pin.size() > Pkcs11Keyslot::kMaxPinSize) {
        return make_error(
            ErrorCode::InvalidArgument,
            "the PIN is longer than " + std::to_string(Pkcs11Keyslot::kMaxPinSize) + " bytes");
    }
    for (uint8_t b : pin.span()) {
        if (b < 0x20 || b == 0x7f) {
            return make_error(ErrorCode::InvalidArgument,
                              "the PIN holds a control character (a line break left in a PIN "
                              "file?); it was not tried on the token");
        }
    }
    SecretBuffer terminated(pin.size() + 1);
    std::copy(pin.data(), pin.data() + pin.size(), terminated.data());
    return terminated;
}

// ------------------------------------------------------------ the token ---

bool matches(const std::optional<std::string>& wanted, const char* have) {
    return !wanted || (have != nullptr && *wanted == have);
}

bool token_matches(const PKCS11_TOKEN& token, const Pkcs11Uri& uri) {
    return token.initialized && matches(uri.token, token.label) &&
           matches(uri.manufacturer, token.manufacturer) && matches(uri.serial, token.serialnr) &&
           matches(uri.model, token.model);
}

// A token's own URI, to show which tokens there are when none matched.
std::string uri_of(const PKCS11_TOKEN& token) {
    Pkcs11Uri uri;
    if (token.label != nullptr) {
        uri.token = token.label;
    }
    if (token.serialnr != nullptr && *token.serialnr != '\0') {
        uri.serial = token.serialnr;
    }
    return uri.to_string();
}

// One loaded module, its slot list, the token the URI names and, once
// logged in, the login. Torn down in the reverse order; EVP_PKEYs taken
// from its keys must be freed before it goes.
class TokenSession {
  public:
    static Result<std::unique_ptr<TokenSession>> open(const std::string& module,
                                                      const Pkcs11Uri& uri) {
        std::unique_ptr<TokenSession> session(new TokenSession(uri.to_string()));
        session->ctx_ = PKCS11_CTX_new();
        if (session->ctx_ == nullptr) {
            return make_error(ErrorCode::Internal, "cannot create a libp11 context");
        }
        if (PKCS11_CTX_load(session->ctx_, module.c_str()) != 0) {
            return make_error(ErrorCode::Internal,
                              "cannot load the PKCS#11 module " + module + take_detail().text);
        }
        session->loaded_ = true;
        if (PKCS11_enumerate_slots(session->ctx_, &session->slots_, &session->slot_count_) != 0) {
            session->slots_ = nullptr;
            session->slot_count_ = 0;
            return make_error(ErrorCode::Internal, "cannot list the slots of the PKCS#11 module " +
                                                       module + take_detail().text);
        }
        std::vector<PKCS11_SLOT*> matching;
        std::string present;
        size_t shown = 0;
        for (unsigned i = 0; i < session->slot_count_; ++i) {
            PKCS11_SLOT* slot = &session->slots_[i];
            if (slot->token == nullptr || !slot->token->initialized) {
                continue;
            }
            if (token_matches(*slot->token, uri)) {
                matching.push_back(slot);
            }
            if (shown++ < kMaxShownTokens) {
                present += (present.empty() ? "" : ", ") + uri_of(*slot->token);
            }
        }
        if (matching.empty()) {
            return make_error(
                ErrorCode::NotFound,
                "no token matches " + session->uri_ + " in the PKCS#11 module " + module +
                    " (tokens present: " + (present.empty() ? "none" : present) + ")");
        }
        // Trying the PIN on the wrong one of two tokens would cost that
        // token a try: ambiguity is an error, not a guess.
        if (matching.size() > 1) {
            return make_error(ErrorCode::InvalidArgument,
                              std::to_string(matching.size()) + " tokens match " + session->uri_ +
                                  " (" + present + "); add serial= to name one");
        }
        session->slot_ = matching.front();
        return session;
    }

    ~TokenSession() {
        if (logged_in_) {
            PKCS11_logout(slot_);
        }
        if (slots_ != nullptr) {
            PKCS11_release_all_slots(ctx_, slots_, slot_count_);
        }
        if (loaded_) {
            PKCS11_CTX_unload(ctx_);
        }
        if (ctx_ != nullptr) {
            PKCS11_CTX_free(ctx_);
        }
    }
    TokenSession(const TokenSession&) = delete;
    TokenSession& operator=(const TokenSession&) = delete;

    const std::string& uri() const { return uri_; }
    PKCS11_TOKEN* token() const { return slot_->token; }

    // Exactly one C_Login: a refused PIN is reported, never tried again.
    Result<void> login(const SecretBuffer& terminated_pin) {
        if (token()->userPinLocked) {
            return make_error(ErrorCode::AccessDenied,
                              "the user PIN of the pkcs11 token " + uri_ +
                                  " is locked; unblock it with the SO PIN (not tried)");
        }
        if (PKCS11_open_session(slot_, 0) != 0) {
            return make_error(ErrorCode::Internal, "cannot open a session with the pkcs11 token " +
                                                       uri_ + take_detail().text);
        }
        if (PKCS11_login(slot_, 0, reinterpret_cast<const char*>(terminated_pin.data())) != 0) {
            const Detail detail = take_detail();
            switch (detail.ckr) {
                case kCkrPinIncorrect:
                case kCkrPinInvalid:
                case kCkrPinLenRange:
                    return make_error(ErrorCode::AccessDenied,
                                      "wrong PIN for the pkcs11 token " + uri_ + detail.text);
                case kCkrPinLocked:
                    return make_error(ErrorCode::AccessDenied,
                                      "the user PIN of the pkcs11 token " + uri_ +
                                          " is locked after too many wrong PINs; unblock it "
                                          "with the SO PIN" +
                                          detail.text);
                case kCkrPinExpired:
                    return make_error(ErrorCode::AccessDenied,
                                      "the user PIN of the pkcs11 token " + uri_ +
                                          " has expired; change it" + detail.text);
                default:
                    return make_error(ErrorCode::Internal, "login to the pkcs11 token " + uri_ +
                                                               " failed" + detail.text);
            }
        }
        logged_in_ = true;
        return {};
    }

    // The one private key the URI (and, at unseal, the record's key id)
    // names. Private keys are listed only after login.
    Result<PKCS11_KEY*> find_private_key(const Pkcs11Uri& uri,
                                         std::optional<std::span<const uint8_t>> key_id,
                                         ErrorCode missing) {
        PKCS11_KEY* keys = nullptr;
        unsigned count = 0;
        if (PKCS11_enumerate_keys(token(), &keys, &count) != 0) {
            return make_error(ErrorCode::Internal, "cannot list the keys on the pkcs11 token " +
                                                       uri_ + take_detail().text);
        }
        std::vector<PKCS11_KEY*> found;
        for (unsigned i = 0; i < count; ++i) {
            PKCS11_KEY& key = keys[i];
            if (!matches(uri.object, key.label) ||
                (uri.id && !same_bytes(*uri.id, key_id_of(key))) ||
                (key_id && !same_bytes(*key_id, key_id_of(key)))) {
                continue;
            }
            found.push_back(&key);
        }
        const std::string which =
            key_id ? uri_ + " with id " + hex::encode(*key_id) : std::string(uri_);
        if (found.empty()) {
            return make_error(missing, "no private key on the pkcs11 token matches " + which);
        }
        if (found.size() > 1) {
            return make_error(ErrorCode::InvalidArgument,
                              std::to_string(found.size()) +
                                  " private keys on the pkcs11 token match " + which +
                                  "; add id= or object= to name one");
        }
        return found.front();
    }

  private:
    explicit TokenSession(std::string uri) : uri_(std::move(uri)) {}

    std::string uri_;  // canonical, for messages
    PKCS11_CTX* ctx_ = nullptr;
    bool loaded_ = false;
    PKCS11_SLOT* slots_ = nullptr;
    unsigned slot_count_ = 0;
    PKCS11_SLOT* slot_ = nullptr;
    bool logged_in_ = false;
};

Result<EvpPkeyPtr> private_key_of(PKCS11_KEY* key, const std::string& uri) {
    EvpPkeyPtr pkey(PKCS11_get_private_key(key));
    if (!pkey) {
        return make_error(ErrorCode::Internal, "cannot use the private key on the pkcs11 token " +
                                                   uri + take_detail().text);
    }
    return pkey;
}

// The key pair's public half as a plain software key: wrapping then runs in
// OpenSSL's default provider, never through the token.
//
// Taken from the private key's EVP_PKEY (libp11 fills in the modulus, or the
// EC point from the public key object) or else from the certificate with the
// same id. Not from PKCS11_get_public_key: in libp11 0.4.12 the EVP_PKEY of
// a public key object holds a reference cycle that keeps the slot, and with
// it libp11's copy of the PIN, alive and unwiped until exit.
Result<EvpPkeyPtr> software_public_key(PKCS11_TOKEN* token, PKCS11_KEY* key, EVP_PKEY* private_key,
                                       const std::string& uri) {
    std::vector<uint8_t> der;
    auto encode = [&der](EVP_PKEY* pkey) {
        unsigned char* raw = nullptr;
        const int size = i2d_PUBKEY(pkey, &raw);
        const CHandle<unsigned char, openssl_free> owned(raw);
        if (size > 0) {
            der.assign(raw, raw + size);
        }
    };
    encode(private_key);
    if (der.empty()) {
        // Some cards (PIV) may carry the public key only in the certificate.
        PKCS11_CERT* certs = nullptr;
        unsigned count = 0;
        if (PKCS11_enumerate_certs(token, &certs, &count) == 0) {
            for (unsigned i = 0; i < count && der.empty(); ++i) {
                if (certs[i].x509 != nullptr &&
                    same_bytes(std::span(certs[i].id, certs[i].id_len), key_id_of(*key))) {
                    encode(X509_get0_pubkey(certs[i].x509));
                }
            }
        }
    }
    take_detail();
    if (der.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "the pkcs11 token " + uri + " shows neither the public half of key id " +
                              hex::encode(key_id_of(*key)) + " nor a certificate for it");
    }
    const unsigned char* cursor = der.data();
    EvpPkeyPtr copy(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size())));
    if (!copy) {
        return make_error(ErrorCode::Internal, "cannot read the public key of the pkcs11 token " +
                                                   uri + take_detail().text);
    }
    return copy;
}

// ------------------------------------------------------------------ RSA ---

struct RsaMechanism {
    std::string_view name;
    const char* digest;  // OAEP and MGF1 digest; nullptr for PKCS#1 v1.5
    // What the token is asked for through libp11: the raw RSA operation
    // for OAEP (decoded here), CKM_RSA_PKCS for PKCS#1 v1.5.
    int token_padding;
};

constexpr RsaMechanism kRsaMechanisms[] = {
    {Pkcs11Keyslot::kRsaOaepSha256, "SHA256", RSA_NO_PADDING},
    {Pkcs11Keyslot::kRsaOaepSha1, "SHA1", RSA_NO_PADDING},
    {Pkcs11Keyslot::kRsaPkcs1, nullptr, RSA_PKCS1_PADDING},
};

const RsaMechanism* rsa_mechanism(std::string_view name) {
    for (const auto& mechanism : kRsaMechanisms) {
        if (mechanism.name == name) {
            return &mechanism;
        }
    }
    return nullptr;
}

Result<std::vector<uint8_t>> rsa_wrap(EVP_PKEY* public_key, const RsaMechanism& mechanism,
                                      std::span<const uint8_t> master) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, public_key, nullptr));
    const bool oaep = mechanism.digest != nullptr;
    size_t size = 0;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(),
                                     oaep ? RSA_PKCS1_OAEP_PADDING : RSA_PKCS1_PADDING) <= 0 ||
        (oaep && (EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), mechanism.digest, nullptr) <= 0 ||
                  EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), mechanism.digest, nullptr) <= 0)) ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &size, master.data(), master.size()) <= 0) {
        return make_error(
            ErrorCode::Internal,
            std::string("cannot wrap with ") + std::string(mechanism.name) + take_detail().text);
    }
    std::vector<uint8_t> wrapped(size);
    if (EVP_PKEY_encrypt(ctx.get(), wrapped.data(), &size, master.data(), master.size()) <= 0) {
        return make_error(
            ErrorCode::Internal,
            std::string("cannot wrap with ") + std::string(mechanism.name) + take_detail().text);
    }
    wrapped.resize(size);
    return wrapped;
}

// OAEP decoding of the token's raw RSA output. OpenSSL's own OAEP decrypt
// for a libp11 key does the same but leaves the encoded block, from which
// the master key follows without any key, in a buffer it frees unwiped;
// here the block stays in a SecretBuffer. The function is deprecated in
// OpenSSL 3 for lack of an EVP form; it is constant-time.
Result<SecretBuffer> oaep_decode(const SecretBuffer& block, int modulus_size, const char* digest) {
    const EVP_MD* md = EVP_get_digestbyname(digest);
    SecretBuffer message(static_cast<size_t>(modulus_size));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const int size = md == nullptr
                         ? -1
                         : RSA_padding_check_PKCS1_OAEP_mgf1(
                               message.data(), modulus_size, block.data(),
                               static_cast<int>(block.size()), modulus_size, nullptr, 0, md, md);
#pragma GCC diagnostic pop
    take_detail();
    if (size <= 0) {
        return make_error(ErrorCode::Internal,
                          "the token's RSA key did not unwrap the pkcs11 keyslot (another key, "
                          "or a damaged record)");
    }
    message.truncate(static_cast<size_t>(size));
    return message;
}

Result<SecretBuffer> rsa_unwrap(EVP_PKEY* private_key, const RsaMechanism& mechanism,
                                std::span<const uint8_t> sealed, const std::string& uri) {
    const int modulus_size = EVP_PKEY_get_size(private_key);
    if (modulus_size <= 0 || sealed.size() != static_cast<size_t>(modulus_size)) {
        return make_error(ErrorCode::Internal, "the pkcs11 keyslot's sealed data (" +
                                                   std::to_string(sealed.size()) +
                                                   " bytes) does not fit the RSA key on " + uri +
                                                   " (" + std::to_string(modulus_size) + " bytes)");
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(private_key, nullptr));
    SecretBuffer out(static_cast<size_t>(modulus_size));
    size_t size = out.size();
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), mechanism.token_padding) <= 0 ||
        EVP_PKEY_decrypt(ctx.get(), out.data(), &size, sealed.data(), sealed.size()) <= 0) {
        return make_error(ErrorCode::Internal,
                          "the pkcs11 token " + uri + " could not decrypt with its RSA key (" +
                              std::string(mechanism.name) + ")" + take_detail().text);
    }
    out.truncate(size);
    if (mechanism.digest == nullptr) {
        return out;
    }
    return oaep_decode(out, modulus_size, mechanism.digest);
}

// ------------------------------------------------------------------- EC ---

bool is_p256(EVP_PKEY* key) {
    char group[64] = {};
    size_t size = 0;
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_group_name(key, group, sizeof group, &size) == 1 &&
           std::string_view(group, size) == kP256;
}

Result<std::vector<uint8_t>> uncompressed_point(EVP_PKEY* key) {
    std::vector<uint8_t> point(kP256PointSize);
    size_t size = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(),
                                        &size) != 1 ||
        size != kP256PointSize || point[0] != 0x04) {
        return make_error(ErrorCode::Internal,
                          "cannot encode an ephemeral P-256 key" + take_detail().text);
    }
    return point;
}

// From the record, so from the database: a point not on the curve would
// make the token compute with an attacker's point.
Result<EvpPkeyPtr> p256_public_key(std::span<const uint8_t> point) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         const_cast<char*>(kP256.data()), kP256.size()),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                          const_cast<uint8_t*>(point.data()), point.size()),
        OSSL_PARAM_construct_end(),
    };
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        take_detail();
        return make_error(ErrorCode::Internal,
                          "the pkcs11 keyslot's ephemeral_public is not a P-256 point");
    }
    EvpPkeyPtr key(raw);
    EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        take_detail();
        return make_error(ErrorCode::Internal,
                          "the pkcs11 keyslot's ephemeral_public is not a point on P-256");
    }
    return key;
}

// ECDH. With a token key the derivation runs on the token (CKM_ECDH1_DERIVE
// through libp11).
Result<SecretBuffer> ecdh(EVP_PKEY* own, EVP_PKEY* peer, const std::string& where) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(own, nullptr));
    size_t size = 0;
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer) <= 0 ||
        EVP_PKEY_derive(ctx.get(), nullptr, &size) <= 0 || size == 0 || size > 132) {
        return make_error(ErrorCode::Internal, "ECDH failed " + where + take_detail().text);
    }
    SecretBuffer shared(size);
    if (EVP_PKEY_derive(ctx.get(), shared.data(), &size) <= 0) {
        return make_error(ErrorCode::Internal, "ECDH failed " + where + take_detail().text);
    }
    shared.truncate(size);
    return shared;
}

// Binds the ciphertext to the slot's key id and ephemeral key: a record
// edited to point elsewhere fails to open rather than opening wrongly.
std::vector<uint8_t> ec_associated_data(std::span<const uint8_t> key_id,
                                        std::span<const uint8_t> ephemeral) {
    std::vector<uint8_t> aad(kAadLabel.begin(), kAadLabel.end());
    aad.push_back(0);
    aad.insert(aad.end(), Pkcs11Keyslot::kEcdhP256.begin(), Pkcs11Keyslot::kEcdhP256.end());
    aad.push_back(0);
    aad.push_back(static_cast<uint8_t>(key_id.size()));
    aad.insert(aad.end(), key_id.begin(), key_id.end());
    aad.insert(aad.end(), ephemeral.begin(), ephemeral.end());
    return aad;
}

Result<SecretBuffer> wrapping_key(const SecretBuffer& shared, std::span<const uint8_t> ephemeral) {
    std::string info(kEcdhInfo);
    info.append(reinterpret_cast<const char*>(ephemeral.data()), ephemeral.size());
    return crypto::hkdf_sha256(shared.span(), info, crypto::kKeySize);
}

Result<SecretBuffer> ec_unwrap(EVP_PKEY* private_key, std::span<const uint8_t> ephemeral,
                               std::span<const uint8_t> key_id, std::span<const uint8_t> sealed,
                               const std::string& uri) {
    auto peer = p256_public_key(ephemeral);
    if (!peer) {
        return peer.error();
    }
    auto shared = ecdh(private_key, peer->get(), "on the pkcs11 token " + uri);
    if (!shared) {
        return shared.error();
    }
    auto key = wrapping_key(*shared, ephemeral);
    if (!key) {
        return key.error();
    }
    auto opened =
        crypto::aes256gcm_open(key->span(), sealed, ec_associated_data(key_id, ephemeral));
    if (!opened) {
        return make_error(ErrorCode::Internal,
                          "the token's EC key did not unwrap the pkcs11 keyslot (another key, or "
                          "a damaged record)");
    }
    return opened;
}

// --------------------------------------------------------------- record ---

struct SlotParams {
    Pkcs11Uri uri;
    std::string mechanism;
    std::vector<uint8_t> key_id;
    std::string module;
    std::vector<uint8_t> ephemeral;  // EC only
};

Error malformed(const std::string& what) {
    return make_error(ErrorCode::Internal, "the pkcs11 keyslot record is malformed: " + what);
}

Result<std::string> string_param(const nlohmann::json& params, const char* name) {
    const auto it = params.find(name);
    if (it == params.end() || !it->is_string()) {
        return malformed(std::string("no ") + name);
    }
    return it->get<std::string>();
}

Result<SlotParams> parse_params(const KeyslotRecord& record) {
    const auto& params = record.params;
    if (!params.is_object()) {
        return malformed("params is not an object");
    }
    SlotParams out;
    auto uri_text = string_param(params, "uri");
    if (!uri_text) {
        return uri_text.error();
    }
    auto uri = Pkcs11Uri::parse(*uri_text);
    if (!uri) {
        return malformed(uri.error().message);
    }
    out.uri = std::move(*uri);
    auto mechanism = string_param(params, "mechanism");
    if (!mechanism) {
        return mechanism.error();
    }
    out.mechanism = std::move(*mechanism);
    const bool ec = out.mechanism == Pkcs11Keyslot::kEcdhP256;
    if (!ec && rsa_mechanism(out.mechanism) == nullptr) {
        return malformed("unknown mechanism");
    }
    auto key_id = string_param(params, "key_id");
    if (!key_id) {
        return key_id.error();
    }
    auto id = hex::decode(*key_id);
    if (!id || id->empty() || id->size() > Pkcs11Keyslot::kMaxKeyIdSize) {
        return malformed("key_id is not a hex CKA_ID");
    }
    out.key_id = std::move(*id);
    auto module = string_param(params, "module");
    if (!module) {
        return module.error();
    }
    if (module->empty() || module->front() != '/') {
        return malformed("module is not an absolute path");
    }
    out.module = std::move(*module);
    if (ec) {
        auto ephemeral_text = string_param(params, "ephemeral_public");
        if (!ephemeral_text) {
            return ephemeral_text.error();
        }
        auto ephemeral = hex::decode(*ephemeral_text);
        if (!ephemeral || ephemeral->size() != kP256PointSize || (*ephemeral)[0] != 0x04) {
            return malformed("ephemeral_public is not an uncompressed P-256 point");
        }
        out.ephemeral = std::move(*ephemeral);
        const size_t overhead = crypto::kGcmNonceSize + crypto::kGcmTagSize;
        if (record.sealed.size() <= overhead ||
            record.sealed.size() > overhead + Pkcs11Keyslot::kMaxSecretSize) {
            return malformed("the sealed data has the wrong size");
        }
    } else if (params.contains("ephemeral_public")) {
        return malformed("an RSA keyslot with an ephemeral_public");
    } else if (record.sealed.empty() || record.sealed.size() > kMaxRsaCiphertext) {
        return malformed("the sealed data has the wrong size");
    }
    return out;
}

}  // namespace

Result<void> Pkcs11Keyslot::enroll(const SecretBuffer& master, KeyslotRecord& record) {
    const ErrorQueueGuard errors;
    if (master.empty() || master.size() > kMaxSecretSize) {
        return make_error(ErrorCode::InvalidArgument,
                          "a pkcs11 keyslot wraps 1 to " + std::to_string(kMaxSecretSize) +
                              " bytes, not " + std::to_string(master.size()));
    }
    auto uri = Pkcs11Uri::parse(options_.uri);
    if (!uri) {
        return uri.error();
    }
    if (uri->type && *uri->type != "private" && *uri->type != "public") {
        return make_error(ErrorCode::InvalidArgument,
                          "the PKCS#11 URI must name a key pair: type=" + *uri->type +
                              " names no key (leave type out, or use private or public)");
    }
    // Enrolment proves the token can unwrap what it wraps, which takes a
    // login; the same PIN opens the slot later.
    if (options_.pin.empty()) {
        return make_error(ErrorCode::InvalidArgument,
                          "enrolling a pkcs11 keyslot needs the token's PIN");
    }
    auto pin = pin_for_login(options_.pin);
    if (!pin) {
        return pin.error();
    }
    auto module = allowlist_.resolve_module(*uri);
    if (!module) {
        return module.error();
    }

    auto session = TokenSession::open(*module, *uri);
    if (!session) {
        return session.error();
    }
    if (auto login = (*session)->login(*pin); !login) {
        return login.error();
    }
    const std::string& shown = (*session)->uri();
    auto key = (*session)->find_private_key(*uri, std::nullopt, ErrorCode::InvalidArgument);
    if (!key) {
        return key.error();
    }
    const std::vector<uint8_t> key_id(key_id_of(**key).begin(), key_id_of(**key).end());
    if (key_id.empty() || key_id.size() > kMaxKeyIdSize) {
        return make_error(ErrorCode::InvalidArgument, "the key on the pkcs11 token " + shown +
                                                          " has no id (CKA_ID) of 1 to " +
                                                          std::to_string(kMaxKeyIdSize) +
                                                          " bytes, so it could not be found again");
    }
    auto private_key = private_key_of(*key, shown);
    if (!private_key) {
        return private_key.error();
    }
    auto public_key = software_public_key((*session)->token(), *key, private_key->get(), shown);
    if (!public_key) {
        return public_key.error();
    }

    std::string mechanism;
    std::vector<uint8_t> sealed;
    std::vector<uint8_t> ephemeral_point;
    if (EVP_PKEY_get_base_id(public_key->get()) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(public_key->get()) < kMinRsaBits) {
            return make_error(ErrorCode::InvalidArgument,
                              "the RSA key on the pkcs11 token " + shown + " has " +
                                  std::to_string(EVP_PKEY_get_bits(public_key->get())) +
                                  " bits; at least " + std::to_string(kMinRsaBits) + " are needed");
        }
        std::vector<int> failed_paddings;
        std::string failures;
        for (const auto& candidate : kRsaMechanisms) {
            // OAEP-SHA1 asks the token for the very operation OAEP-SHA256
            // did; one refusal of it is enough.
            if (std::find(failed_paddings.begin(), failed_paddings.end(),
                          candidate.token_padding) != failed_paddings.end()) {
                continue;
            }
            auto wrapped = rsa_wrap(public_key->get(), candidate, master.span());
            if (!wrapped) {
                return wrapped.error();
            }
            auto unwrapped = rsa_unwrap(private_key->get(), candidate, *wrapped, shown);
            if (unwrapped && crypto::equal_ct(unwrapped->span(), master.span())) {
                mechanism = std::string(candidate.name);
                sealed = std::move(*wrapped);
                break;
            }
            failed_paddings.push_back(candidate.token_padding);
            failures += std::string(failures.empty() ? "" : "; ") +
                        (unwrapped ? std::string(candidate.name) + ": wrong result"
                                   : unwrapped.error().message);
        }
        if (mechanism.empty()) {
            return make_error(ErrorCode::InvalidArgument,
                              "the RSA key on the pkcs11 token " + shown +
                                  " cannot decrypt with any of rsa-oaep-sha256, rsa-oaep-sha1, "
                                  "rsa-pkcs1 (a signing-only key?): " +
                                  failures);
        }
    } else if (is_p256(public_key->get())) {
        mechanism = std::string(kEcdhP256);
        EvpPkeyPtr ephemeral(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
        if (!ephemeral) {
            return make_error(ErrorCode::Internal,
                              "cannot make an ephemeral P-256 key" + take_detail().text);
        }
        auto point = uncompressed_point(ephemeral.get());
        if (!point) {
            return point.error();
        }
        ephemeral_point = std::move(*point);
        auto shared = ecdh(ephemeral.get(), public_key->get(), "in software");
        // Only the token can compute the shared secret from here on.
        ephemeral.reset();
        if (!shared) {
            return shared.error();
        }
        auto wrapping = wrapping_key(*shared, ephemeral_point);
        if (!wrapping) {
            return wrapping.error();
        }
        auto wrapped = crypto::aes256gcm_seal(wrapping->span(), master.span(),
                                              ec_associated_data(key_id, ephemeral_point));
        if (!wrapped) {
            return wrapped.error();
        }
        sealed = std::move(*wrapped);
        auto unwrapped = ec_unwrap(private_key->get(), ephemeral_point, key_id, sealed, shown);
        if (!unwrapped) {
            return make_error(
                ErrorCode::InvalidArgument,
                "the EC key on the pkcs11 token " + shown +
                    " cannot derive (CKM_ECDH1_DERIVE): " + unwrapped.error().message);
        }
        if (!crypto::equal_ct(unwrapped->span(), master.span())) {
            return make_error(ErrorCode::Internal, "the pkcs11 token " + shown +
                                                       " unwrapped something else than was "
                                                       "wrapped to it");
        }
    } else {
        return make_error(ErrorCode::InvalidArgument,
                          "the key on the pkcs11 token " + shown +
                              " is neither RSA nor EC P-256; the pkcs11 keyslot takes those");
    }

    // Out-parameters change only on success.
    record.type = std::string(kType);
    record.params = {
        {"uri", shown},
        {"mechanism", mechanism},
        {"key_id", hex::encode(key_id)},
        {"module", *module},
    };
    if (!ephemeral_point.empty()) {
        record.params["ephemeral_public"] = hex::encode(ephemeral_point);
    }
    record.sealed = std::move(sealed);
    return {};
}

Result<SecretBuffer> Pkcs11Keyslot::unseal(const KeyslotRecord& record,
                                           const UnlockCredentials& credentials) {
    const ErrorQueueGuard errors;
    auto params = parse_params(record);
    if (!params) {
        return params.error();
    }
    // Before the module is even loaded: a login without a PIN could only
    // cost the token a try.
    if (credentials.pin.empty()) {
        return make_error(ErrorCode::AccessDenied,
                          "the pkcs11 token " + params->uri.to_string() +
                              " needs its PIN (a PIN file, the pkcs11-pin credential, or Unlock)");
    }
    auto pin = pin_for_login(credentials.pin);
    if (!pin) {
        return pin.error();
    }
    // Checked again at every unseal: the allowlist may have narrowed, or the
    // path now resolve elsewhere, since enrolment.
    auto module = allowlist_.resolve(params->module);
    if (!module) {
        return make_error(ErrorCode::Internal, module.error().message);
    }

    auto session = TokenSession::open(*module, params->uri);
    if (!session) {
        return session.error();
    }
    if (auto login = (*session)->login(*pin); !login) {
        return login.error();
    }
    const std::string& shown = (*session)->uri();
    auto key = (*session)->find_private_key(params->uri, std::span<const uint8_t>(params->key_id),
                                            ErrorCode::Internal);
    if (!key) {
        return key.error();
    }
    auto private_key = private_key_of(*key, shown);
    if (!private_key) {
        return private_key.error();
    }
    if (params->mechanism == kEcdhP256) {
        if (PKCS11_get_key_type(*key) != EVP_PKEY_EC) {
            return make_error(ErrorCode::Internal,
                              "the key on the pkcs11 token " + shown + " is no longer an EC key");
        }
        return ec_unwrap(private_key->get(), params->ephemeral, params->key_id, record.sealed,
                         shown);
    }
    if (PKCS11_get_key_type(*key) != EVP_PKEY_RSA) {
        return make_error(ErrorCode::Internal,
                          "the key on the pkcs11 token " + shown + " is no longer an RSA key");
    }
    auto unwrapped =
        rsa_unwrap(private_key->get(), *rsa_mechanism(params->mechanism), record.sealed, shown);
    if (unwrapped && (unwrapped->empty() || unwrapped->size() > kMaxSecretSize)) {
        return make_error(ErrorCode::Internal, "the pkcs11 keyslot unwrapped to " +
                                                   std::to_string(unwrapped->size()) +
                                                   " bytes, not a master key");
    }
    return unwrapped;
}

}  // namespace apikeyd
