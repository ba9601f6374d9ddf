#include "daemon/keyslots/recovery_keyslot.hpp"
#include "daemon/hex.hpp"

#include <algorithm>
#include <string>

namespace apikeyd {
namespace {

constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr size_t kSaltSize = 16;

Error invalid_key() {
    return make_error(ErrorCode::InvalidArgument,
                      "A recovery key is 32 characters of a-z and 2-7, in groups of 4 separated "
                      "by dashes");
}

std::vector<uint8_t> associated_data(std::span<const uint8_t> salt) {
    const auto label = crypto::bytes_of("apikeyd recovery keyslot v1");
    std::vector<uint8_t> aad(label.size() + salt.size());
    std::copy(label.begin(), label.end(), aad.begin());
    std::copy(salt.begin(), salt.end(), aad.begin() + static_cast<ptrdiff_t>(label.size()));
    return aad;
}

}  // namespace

Result<SecretBuffer> RecoveryKeyslot::normalize(std::string_view typed) {
    SecretBuffer key(kKeyChars);
    size_t n = 0;
    for (char c : typed) {
        if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (kAlphabet.find(c) == std::string_view::npos || n == kKeyChars) {
            return invalid_key();
        }
        key.data()[n++] = static_cast<uint8_t>(c);
    }
    if (n != kKeyChars) {
        return invalid_key();
    }
    return key;
}

Result<void> RecoveryKeyslot::enroll(const SecretBuffer& master, KeyslotRecord& record) {
    auto random = crypto::random_secret(kKeyChars);
    std::vector<uint8_t> salt(kSaltSize);
    if (!random || !crypto::random_bytes(salt)) {
        return make_error(ErrorCode::Internal, "The random number generator failed");
    }
    SecretBuffer plain(kKeyChars);
    constexpr size_t kGroups = kKeyChars / kGroupChars;
    SecretBuffer grouped(kKeyChars + kGroups - 1);
    for (size_t i = 0, out = 0; i < kKeyChars; ++i) {
        // 256 is a multiple of 32, so masking keeps every character equally likely.
        const auto c = static_cast<uint8_t>(kAlphabet[random->data()[i] & 31u]);
        plain.data()[i] = c;
        if (i != 0 && i % kGroupChars == 0) {
            grouped.data()[out++] = '-';
        }
        grouped.data()[out++] = c;
    }
    auto kek = crypto::scrypt(plain.span(), salt, params_, crypto::kKeySize);
    if (!kek) {
        return kek.error();
    }
    auto sealed = crypto::aes256gcm_seal(kek->span(), master.span(), associated_data(salt));
    if (!sealed) {
        return sealed.error();
    }
    record.params = {{"kdf", "scrypt"},
                     {"n", params_.n},
                     {"r", params_.r},
                     {"p", params_.p},
                     {"salt", hex::encode(salt)}};
    record.sealed = std::move(*sealed);
    recovery_key_ = std::move(grouped);
    return {};
}

Result<SecretBuffer> RecoveryKeyslot::unseal(const KeyslotRecord& record,
                                             const UnlockCredentials& credentials) {
    if (credentials.recovery_key.empty()) {
        return make_error(ErrorCode::AccessDenied, "a recovery keyslot needs the recovery key");
    }
    auto typed = normalize(credentials.recovery_key.view());
    if (!typed) {
        return typed.error();
    }
    const auto& p = record.params;
    std::optional<std::vector<uint8_t>> salt;
    crypto::ScryptParams params;
    if (p.value("kdf", "") == "scrypt" && p.contains("salt") && p["salt"].is_string() &&
        p.contains("n") && p["n"].is_number_unsigned() && p.contains("r") &&
        p["r"].is_number_unsigned() && p.contains("p") && p["p"].is_number_unsigned()) {
        salt = hex::decode(p["salt"].get<std::string>());
        params = {p["n"].get<uint64_t>(), p["r"].get<uint32_t>(), p["p"].get<uint32_t>()};
    }
    if (!salt || salt->empty()) {
        return make_error(ErrorCode::Internal, "the recovery keyslot's parameters are damaged");
    }
    auto kek = crypto::scrypt(typed->span(), *salt, params, crypto::kKeySize);
    if (!kek) {
        return kek.error();
    }
    auto master = crypto::aes256gcm_open(kek->span(), record.sealed, associated_data(*salt));
    if (!master) {
        return make_error(ErrorCode::AccessDenied, "wrong recovery key");
    }
    return std::move(*master);
}

}  // namespace apikeyd
