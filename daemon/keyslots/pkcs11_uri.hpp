#pragma once
// PKCS#11 URIs (RFC 7512) as the pkcs11 keyslot takes them, and the check
// that decides which PKCS#11 modules the daemon may load.
//
// A URI names a token and a key on it: `pkcs11:token=PIV%20Card;id=%03` or
// `pkcs11:serial=00f3...;object=apikeyd?module-path=/usr/lib/softhsm/libsofthsm2.so`.
// Only what the keyslot can act on is accepted; everything else is refused
// with a message naming the attribute, so a typo never widens a match:
//   path:  token, manufacturer, serial, model, object, id, type
//   query: module-path
// `pin-value` and `pin-source` are refused: the URI is stored with the
// keyslot, and a PIN in it would land in the database. The PIN comes from a
// PIN file, a systemd credential or a prompt instead.
//
// Loading a module is running its code in the daemon, so a module path goes
// through realpath() and must then lie under an allowlisted directory (by
// default the ones Debian's packages install PKCS#11 modules to), be a
// regular file and be writable by its owner only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/result.hpp"

namespace apikeyd {

struct Pkcs11Uri {
    // Hard limits: the URI comes over D-Bus and is stored with the keyslot.
    static constexpr size_t kMaxUriSize = 2048;         // characters of URI text
    static constexpr size_t kMaxValueSize = 256;        // decoded bytes of one attribute
    static constexpr size_t kMaxModulePathSize = 1024;  // decoded bytes of module-path

    // Path attributes, percent-decoded. Absent: matches anything. The text
    // ones never hold a NUL byte (they are compared with C strings).
    std::optional<std::string> token;         // CK_TOKEN_INFO.label
    std::optional<std::string> manufacturer;  // CK_TOKEN_INFO.manufacturerID
    std::optional<std::string> serial;        // CK_TOKEN_INFO.serialNumber
    std::optional<std::string> model;         // CK_TOKEN_INFO.model
    std::optional<std::string> object;        // CKA_LABEL
    std::optional<std::vector<uint8_t>> id;   // CKA_ID, any bytes
    std::optional<std::string> type;          // public, private, cert, secret-key, data
    // Query attribute: an absolute path (not yet resolved or checked).
    std::optional<std::string> module_path;

    // Never throws (bar bad_alloc) and never crashes, whatever the input: it
    // comes from callers on the bus. Errors are InvalidArgument; their text
    // names attributes but never repeats a value from the query part, where
    // a PIN could be.
    static Result<Pkcs11Uri> parse(std::string_view text);

    // Canonical text: attributes in a fixed order, every byte outside
    // RFC 3986's unreserved set percent-encoded ('/' kept in module-path).
    // parse(to_string()) gives back an equal Pkcs11Uri.
    std::string to_string() const;

    bool operator==(const Pkcs11Uri&) const = default;
};

// Which PKCS#11 modules may be loaded.
class Pkcs11ModuleAllowlist {
  public:
    // default_directories().
    Pkcs11ModuleAllowlist();
    // Absolute directories; each is itself resolved with realpath() when a
    // path is checked (a directory that does not exist allows nothing).
    explicit Pkcs11ModuleAllowlist(std::vector<std::string> directories);

    // Where Debian installs PKCS#11 modules, as realpath() sees them (the
    // .../pkcs11/ entries are mostly symlinks into the multiarch directory):
    // /usr/lib/<triplet>/pkcs11, /usr/lib/<triplet>/softhsm, /usr/lib/softhsm,
    // /usr/lib/<triplet> (opensc-pkcs11.so, pkcs11-spy.so).
    static std::vector<std::string> default_directories();
    // OpenSC's module, in the order tried when a URI names no module-path.
    static std::vector<std::string> default_module_candidates();

    const std::vector<std::string>& directories() const { return directories_; }

    // realpath(path), then the checks above. Returns the resolved path, which
    // is what must be loaded (not `path`: a symlink could change meanwhile).
    // Errors are InvalidArgument and name the path.
    Result<std::string> resolve(std::string_view path) const;
    // The URI's module-path, or the first of default_module_candidates()
    // that exists when it has none.
    Result<std::string> resolve_module(const Pkcs11Uri& uri) const;

  private:
    std::vector<std::string> directories_;
};

}  // namespace apikeyd
