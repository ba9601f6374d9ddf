#pragma once
// One stored key as the core and the store see it. Issued keys keep only
// HMAC(pepper, key text) in `lookup`; imported secrets keep AES-256-GCM
// ciphertext in `sealed_secret`. `mac` binds every field but the usage
// counters to the record (see record_seal.hpp).

#include <cstdint>
#include <string>
#include <vector>

namespace apikeyd {

enum class KeyKind { Issued, Imported };

struct KeyRecord {
    std::string id;
    uint32_t owner_uid = 0;
    KeyKind kind = KeyKind::Issued;
    std::string name;
    std::string description;
    std::vector<std::string> scopes;  // sorted, unique
    uint64_t created_usec = 0;
    uint64_t expires_usec = 0;  // 0 = never
    uint64_t max_uses = 0;      // 0 = unlimited
    bool revoked = false;
    uint64_t revoked_usec = 0;
    std::string revoke_reason;
    uint64_t rate_limit_per_min = 0;  // successful verifications; 0 = no limit
    std::string prefix;               // of an issued key's text; "" = not recorded (schema 1)
    std::vector<uint8_t> lookup;
    // Rotation: the text before the latest RotateKey verifies until
    // grace_until_usec, and as "rotated" after it.
    uint64_t rotated_usec = 0;  // 0 = never rotated
    std::vector<uint8_t> previous_lookup;
    uint64_t grace_until_usec = 0;
    std::vector<uint8_t> sealed_secret;
    std::vector<uint8_t> mac;
    // Usage counters change on every use; they are not covered by `mac`.
    uint64_t use_count = 0;
    uint64_t last_used_usec = 0;
};

inline const char* kind_name(KeyKind kind) {
    return kind == KeyKind::Issued ? "issued" : "imported";
}

}  // namespace apikeyd
