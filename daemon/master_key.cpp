#include "daemon/master_key.hpp"

namespace apikeyd {

Result<SecretBuffer> MasterKey::generate() {
    return crypto::random_secret(crypto::kKeySize);
}

Result<MasterKey> MasterKey::derive(const SecretBuffer& master) {
    auto pepper = crypto::hkdf_sha256(master.span(), "apikeyd v1 lookup pepper", crypto::kKeySize);
    auto record =
        crypto::hkdf_sha256(master.span(), "apikeyd v1 record encryption", crypto::kKeySize);
    auto mac = crypto::hkdf_sha256(master.span(), "apikeyd v1 record mac", crypto::kKeySize);
    if (!pepper || !record || !mac) {
        return make_error(ErrorCode::Internal, "HKDF failed while deriving subkeys");
    }
    return MasterKey(std::move(*pepper), std::move(*record), std::move(*mac));
}

Result<crypto::Mac> MasterKey::check_value(const SecretBuffer& master) {
    return crypto::hmac_sha256(master.span(), crypto::bytes_of("apikeyd v1 master key check"));
}

}  // namespace apikeyd
