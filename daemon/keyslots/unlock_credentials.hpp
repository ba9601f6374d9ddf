#pragma once
// What a person or a service hands in to open a slot that wants more than
// the hardware: a PIN (tpm2 with PolicyAuthValue, pkcs11) or a recovery key.

#include "common/secret.hpp"

namespace apikeyd {

struct UnlockCredentials {
    SecretBuffer pin;
    SecretBuffer recovery_key;
};

}  // namespace apikeyd
