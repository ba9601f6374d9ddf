#include "daemon/ids.hpp"

#include <array>

#include "daemon/crypto.hpp"
#include "daemon/validation.hpp"

namespace apikeyd {
namespace {

Result<std::string> random_base32(std::string_view prefix, size_t count) {
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
    std::array<uint8_t, 32> bytes{};
    if (count > bytes.size()) {
        return make_error(ErrorCode::Internal, "Id too long");
    }
    if (auto ok = crypto::random_bytes(std::span(bytes).first(count)); !ok) {
        return ok.error();
    }
    std::string id(prefix);
    for (size_t i = 0; i < count; ++i) {
        id += kAlphabet[bytes[i] & 31u];
    }
    return id;
}

}  // namespace

Result<std::string> new_key_id() {
    return random_base32("k_", limits::kKeyIdRandomChars);
}

Result<std::string> new_keyslot_id() {
    return random_base32("ks_", 8);
}

}  // namespace apikeyd
