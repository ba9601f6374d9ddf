#pragma once
// Binds a record's metadata to the master key, so that editing the database
// by hand (widening scopes, changing the owner, un-revoking, extending an
// expiry) makes the record fail closed instead of granting more.

#include <cstdint>
#include <vector>

#include "daemon/crypto.hpp"
#include "daemon/key_record.hpp"

namespace apikeyd::record_seal {

// An unambiguous (length-prefixed) encoding of every bound field.
std::vector<uint8_t> mac_input(const KeyRecord& record);

// Sets record.mac.
Result<void> seal(const SecretBuffer& mac_key, KeyRecord& record);
// True only when record.mac matches the record's current fields.
bool verify(const SecretBuffer& mac_key, const KeyRecord& record);

// Associated data for an imported secret's ciphertext: it cannot be moved to
// another record or owner.
std::vector<uint8_t> secret_associated_data(const KeyRecord& record);

}  // namespace apikeyd::record_seal
