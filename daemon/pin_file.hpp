#pragma once
// Reads a PIN handed to the daemon in a file: --pkcs11-pin-file, or the
// systemd credential $CREDENTIALS_DIRECTORY/pkcs11-pin (LoadCredential=).
// The PIN goes straight into a SecretBuffer; messages name the file, never
// its content.

#include <filesystem>
#include <optional>

#include "common/secret.hpp"
#include "daemon/result.hpp"

namespace apikeyd {

// The file's content with one trailing line break ("\n" or "\r\n") removed,
// as `echo PIN > file` and editors leave one. Refused: an empty PIN, one
// longer than `max_size` bytes, and anything that is not a regular file.
Result<SecretBuffer> read_pin_file(const std::filesystem::path& path, size_t max_size);

// The systemd credential "pkcs11-pin" when the service has one, else nullopt.
std::optional<std::filesystem::path> pkcs11_pin_credential();

}  // namespace apikeyd
