#include "daemon/keyslots/pkcs11_uri.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/c_handle.hpp"

namespace apikeyd {
namespace {

// The Debian multiarch triplet of this build: modules of another
// architecture could not be loaded anyway. APIKEYD_MULTIARCH (say, from
// CMAKE_LIBRARY_ARCHITECTURE) wins over the guess from the compiler.
#if defined(APIKEYD_MULTIARCH)
constexpr std::string_view kMultiarch = APIKEYD_MULTIARCH;
#elif defined(__x86_64__) && defined(__ILP32__)
constexpr std::string_view kMultiarch = "x86_64-linux-gnux32";
#elif defined(__x86_64__)
constexpr std::string_view kMultiarch = "x86_64-linux-gnu";
#elif defined(__aarch64__)
constexpr std::string_view kMultiarch = "aarch64-linux-gnu";
#elif defined(__arm__) && defined(__ARM_PCS_VFP)
constexpr std::string_view kMultiarch = "arm-linux-gnueabihf";
#elif defined(__arm__)
constexpr std::string_view kMultiarch = "arm-linux-gnueabi";
#elif defined(__i386__)
constexpr std::string_view kMultiarch = "i386-linux-gnu";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
constexpr std::string_view kMultiarch = "powerpc64le-linux-gnu";
#elif defined(__s390x__)
constexpr std::string_view kMultiarch = "s390x-linux-gnu";
#elif defined(__riscv) && __riscv_xlen == 64
constexpr std::string_view kMultiarch = "riscv64-linux-gnu";
#else
constexpr std::string_view kMultiarch = "";
#endif

constexpr std::string_view kScheme = "pkcs11:";
constexpr std::string_view kSupported =
    "supported: token, manufacturer, serial, model, object, id, type and, after '?', "
    "module-path";
constexpr size_t kMaxShownName = 32;
constexpr size_t kMaxShownPath = 256;

enum class Part { Path, Query };

enum class Kind {
    Text,        // decoded, no NUL
    Bytes,       // id: any bytes
    Type,        // one of a fixed set
    ModulePath,  // absolute path
    Refused,     // a PIN
    Unsupported  // RFC 7512, but nothing the keyslot acts on
};

struct Attribute {
    std::string_view name;
    Part part;
    Kind kind;
    std::optional<std::string> Pkcs11Uri::*text = nullptr;
};

constexpr std::array kAttributes = {
    Attribute{"token", Part::Path, Kind::Text, &Pkcs11Uri::token},
    Attribute{"manufacturer", Part::Path, Kind::Text, &Pkcs11Uri::manufacturer},
    Attribute{"serial", Part::Path, Kind::Text, &Pkcs11Uri::serial},
    Attribute{"model", Part::Path, Kind::Text, &Pkcs11Uri::model},
    Attribute{"object", Part::Path, Kind::Text, &Pkcs11Uri::object},
    Attribute{"id", Part::Path, Kind::Bytes},
    Attribute{"type", Part::Path, Kind::Type, &Pkcs11Uri::type},
    Attribute{"module-path", Part::Query, Kind::ModulePath, &Pkcs11Uri::module_path},
    Attribute{"pin-value", Part::Query, Kind::Refused},
    Attribute{"pin-source", Part::Query, Kind::Refused},
    Attribute{"module-name", Part::Query, Kind::Unsupported},
    Attribute{"library-manufacturer", Part::Path, Kind::Unsupported},
    Attribute{"library-description", Part::Path, Kind::Unsupported},
    Attribute{"library-version", Part::Path, Kind::Unsupported},
    Attribute{"slot-manufacturer", Part::Path, Kind::Unsupported},
    Attribute{"slot-description", Part::Path, Kind::Unsupported},
    Attribute{"slot-id", Part::Path, Kind::Unsupported},
};

constexpr std::array<std::string_view, 5> kObjectTypes = {"public", "private", "cert", "secret-key",
                                                          "data"};

Error invalid(const std::string& message) {
    return make_error(ErrorCode::InvalidArgument, "Invalid PKCS#11 URI: " + message);
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_unreserved(char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 7512's pk11-res-avail, plus '&' in the path (where ';' separates) and
// '/', '?', '|' in the query (where '&' separates).
bool is_allowed_literal(char c, Part part) {
    if (is_unreserved(c) || std::string_view(":[]@!$'()*+,=").find(c) != std::string_view::npos) {
        return true;
    }
    return part == Part::Path ? c == '&' : (c == '/' || c == '?' || c == '|');
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

std::string describe_char(char c) {
    if (c > ' ' && c < 0x7f) {
        return std::string("'") + c + "'";
    }
    char text[16];
    std::snprintf(text, sizeof text, "byte 0x%02x", static_cast<unsigned char>(c));
    return text;
}

// Names come from the caller too; only something shaped like an attribute
// name is repeated, so that a value typed in the wrong place is not.
std::string shown_name(std::string_view name) {
    const bool name_like = !name.empty() && name.size() <= kMaxShownName &&
                           std::all_of(name.begin(), name.end(),
                                       [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
    return name_like ? "'" + std::string(name) + "'" : "an attribute whose name is not valid";
}

// Paths land in error messages and logs: no control characters, no
// unbounded length.
std::string shown_path(std::string_view path) {
    std::string out;
    for (char c : path.substr(0, kMaxShownPath)) {
        if (c >= ' ' && c < 0x7f) {
            out.push_back(c);
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
            out += escaped;
        }
    }
    if (path.size() > kMaxShownPath) {
        out += "...";
    }
    return out;
}

Result<std::string> decode(std::string_view raw, Part part, std::string_view name, size_t limit) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '%') {
            const int hi = raw.size() - i >= 3 ? hex_value(raw[i + 1]) : -1;
            const int lo = raw.size() - i >= 3 ? hex_value(raw[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return invalid("a '%' in the value of '" + std::string(name) +
                               "' is not followed by two hex digits");
            }
            out.push_back(static_cast<char>(hi << 4 | lo));
            i += 2;
        } else if (is_allowed_literal(c, part)) {
            out.push_back(c);
        } else {
            return invalid(describe_char(c) + " is not allowed in the value of '" +
                           std::string(name) + "'; percent-encode it (a space is %20)");
        }
        if (out.size() > limit) {
            return invalid("the value of '" + std::string(name) + "' is longer than " +
                           std::to_string(limit) + " bytes");
        }
    }
    if (out.empty()) {
        return invalid("'" + std::string(name) + "' has an empty value");
    }
    return out;
}

const Attribute* find_attribute(std::string_view name) {
    for (const auto& attribute : kAttributes) {
        if (attribute.name == name) {
            return &attribute;
        }
    }
    return nullptr;
}

bool is_set(const Pkcs11Uri& uri, const Attribute& attribute) {
    if (attribute.kind == Kind::Bytes) {
        return uri.id.has_value();
    }
    return attribute.text != nullptr && (uri.*attribute.text).has_value();
}

Result<void> apply(Pkcs11Uri& uri, std::string_view component, Part part) {
    if (component.empty()) {
        return invalid(part == Part::Path ? "an empty path attribute (';;' or a ';' at an end)"
                                          : "an empty query attribute ('&&' or a '&' at an end)");
    }
    const auto equals = component.find('=');
    if (equals == std::string_view::npos) {
        // In the query this could be a bare PIN: say nothing of what it was.
        return invalid(part == Part::Path
                           ? shown_name(component) + " has no '=' and no value"
                           : std::string("a query attribute has no '=' and no value"));
    }
    const std::string_view name = component.substr(0, equals);
    const std::string_view raw = component.substr(equals + 1);
    const Attribute* attribute = find_attribute(name);
    if (attribute == nullptr) {
        return invalid("unknown attribute " + shown_name(name) + " (" + std::string(kSupported) +
                       ")");
    }
    const std::string quoted = "'" + std::string(attribute->name) + "'";
    if (attribute->kind == Kind::Refused) {
        return invalid(quoted +
                       " is refused: the URI is stored with the keyslot, so a PIN in it would "
                       "land in the database; give the PIN in a PIN file (--pkcs11-pin-file, "
                       "the pkcs11-pin credential) or at the prompt instead");
    }
    if (attribute->kind == Kind::Unsupported) {
        return invalid(quoted + " is not supported (" + std::string(kSupported) + ")");
    }
    if (attribute->part != part) {
        return invalid(quoted + (attribute->part == Part::Query
                                     ? " is a query attribute: put it after '?'"
                                     : " is a path attribute: put it before '?'"));
    }
    if (is_set(uri, *attribute)) {
        return invalid(quoted + " appears more than once");
    }
    const size_t limit = attribute->kind == Kind::ModulePath ? Pkcs11Uri::kMaxModulePathSize
                                                             : Pkcs11Uri::kMaxValueSize;
    auto value = decode(raw, part, attribute->name, limit);
    if (!value) {
        return value.error();
    }
    switch (attribute->kind) {
        case Kind::Bytes:
            uri.id = std::vector<uint8_t>(value->begin(), value->end());
            return {};
        case Kind::Type:
            if (std::find(kObjectTypes.begin(), kObjectTypes.end(), *value) == kObjectTypes.end()) {
                return invalid("'type' must be public, private, cert, secret-key or data");
            }
            break;
        case Kind::ModulePath:
            if (value->front() != '/') {
                return invalid("'module-path' must be an absolute path");
            }
            break;
        default:
            break;
    }
    // Token and key attributes are compared with C strings, and a path
    // with a NUL would name another file than it shows.
    if (value->find('\0') != std::string::npos) {
        return invalid("the value of " + quoted + " holds a NUL byte");
    }
    uri.*attribute->text = std::move(*value);
    return {};
}

Result<void> apply_all(Pkcs11Uri& uri, std::string_view text, char separator, Part part) {
    size_t start = 0;
    while (true) {
        const auto end = text.find(separator, start);
        if (auto applied = apply(uri, text.substr(start, end - start), part); !applied) {
            return applied;
        }
        if (end == std::string_view::npos) {
            return {};
        }
        start = end + 1;
    }
}

void append_encoded(std::string& out, std::string_view bytes, bool keep_slash, bool encode_all) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    for (char c : bytes) {
        if (!encode_all && (is_unreserved(c) || (keep_slash && c == '/'))) {
            out.push_back(c);
        } else {
            const auto b = static_cast<unsigned char>(c);
            out.push_back('%');
            out.push_back(kDigits[b >> 4]);
            out.push_back(kDigits[b & 0xF]);
        }
    }
}

std::optional<std::string> real_path(const std::string& path, int& error) {
    const CHandle<char, std::free> resolved(realpath(path.c_str(), nullptr));
    if (!resolved) {
        error = errno;
        return std::nullopt;
    }
    return std::string(resolved.get());
}

bool lies_under(std::string_view path, std::string_view directory) {
    if (directory == "/") {
        return true;
    }
    return path.size() > directory.size() + 1 && path.starts_with(directory) &&
           path[directory.size()] == '/';
}

}  // namespace

Result<Pkcs11Uri> Pkcs11Uri::parse(std::string_view text) {
    if (text.size() > kMaxUriSize) {
        return invalid("longer than " + std::to_string(kMaxUriSize) + " characters");
    }
    if (text.size() < kScheme.size() ||
        !equals_ignoring_case(text.substr(0, kScheme.size()), kScheme)) {
        return invalid("it does not start with 'pkcs11:'");
    }
    const std::string_view rest = text.substr(kScheme.size());
    const auto question = rest.find('?');
    const std::string_view path = rest.substr(0, question);
    Pkcs11Uri uri;
    // "pkcs11:" alone is valid: it matches every token.
    if (!path.empty()) {
        if (auto applied = apply_all(uri, path, ';', Part::Path); !applied) {
            return applied.error();
        }
    }
    if (question != std::string_view::npos) {
        if (auto applied = apply_all(uri, rest.substr(question + 1), '&', Part::Query); !applied) {
            return applied.error();
        }
    }
    return uri;
}

std::string Pkcs11Uri::to_string() const {
    std::string out(kScheme);
    bool first = true;
    const auto add = [&](std::string_view name, std::string_view value, bool encode_all) {
        if (!first) {
            out.push_back(';');
        }
        first = false;
        out += name;
        out.push_back('=');
        append_encoded(out, value, false, encode_all);
    };
    for (const auto& attribute : kAttributes) {
        if (attribute.part != Part::Path || attribute.kind == Kind::Unsupported) {
            continue;
        }
        if (attribute.kind == Kind::Bytes) {
            if (id) {
                add(attribute.name,
                    std::string_view(reinterpret_cast<const char*>(id->data()), id->size()), true);
            }
        } else if (attribute.text != nullptr && (this->*attribute.text)) {
            add(attribute.name, *(this->*attribute.text), false);
        }
    }
    if (module_path) {
        out += "?module-path=";
        append_encoded(out, *module_path, true, false);
    }
    return out;
}

Pkcs11ModuleAllowlist::Pkcs11ModuleAllowlist() : directories_(default_directories()) {}

Pkcs11ModuleAllowlist::Pkcs11ModuleAllowlist(std::vector<std::string> directories)
    : directories_(std::move(directories)) {}

std::vector<std::string> Pkcs11ModuleAllowlist::default_directories() {
    if (kMultiarch.empty()) {
        return {"/usr/lib/pkcs11", "/usr/lib/softhsm"};
    }
    const std::string lib = "/usr/lib/" + std::string(kMultiarch);
    return {lib + "/pkcs11", lib + "/softhsm", "/usr/lib/softhsm", lib};
}

std::vector<std::string> Pkcs11ModuleAllowlist::default_module_candidates() {
    if (kMultiarch.empty()) {
        return {"/usr/lib/pkcs11/opensc-pkcs11.so"};
    }
    const std::string lib = "/usr/lib/" + std::string(kMultiarch);
    return {lib + "/pkcs11/opensc-pkcs11.so", lib + "/opensc-pkcs11.so"};
}

Result<std::string> Pkcs11ModuleAllowlist::resolve(std::string_view path) const {
    const std::string shown = "PKCS#11 module '" + shown_path(path) + "'";
    if (path.empty() || path.size() > Pkcs11Uri::kMaxModulePathSize ||
        path.find('\0') != std::string_view::npos || path.front() != '/') {
        return make_error(ErrorCode::InvalidArgument,
                          shown + ": not an absolute path of at most " +
                              std::to_string(Pkcs11Uri::kMaxModulePathSize) + " bytes");
    }
    int error = 0;
    const auto resolved = real_path(std::string(path), error);
    if (!resolved) {
        return make_error(ErrorCode::InvalidArgument,
                          shown + " cannot be found: " + std::strerror(error));
    }
    const std::string where =
        *resolved == path ? shown : shown + " (resolved to '" + shown_path(*resolved) + "')";
    bool allowed = false;
    std::string listed;
    for (const auto& directory : directories_) {
        listed += (listed.empty() ? "" : ", ") + shown_path(directory);
        int ignored = 0;
        const auto real_directory =
            directory.starts_with('/') ? real_path(directory, ignored) : std::nullopt;
        allowed = allowed || (real_directory && lies_under(*resolved, *real_directory));
    }
    if (!allowed) {
        return make_error(ErrorCode::InvalidArgument,
                          where +
                              " lies outside the directories PKCS#11 modules may be loaded "
                              "from (" +
                              listed + ")");
    }
    struct stat st {};
    if (stat(resolved->c_str(), &st) != 0) {
        return make_error(ErrorCode::InvalidArgument,
                          where + " cannot be read: " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error(ErrorCode::InvalidArgument, where + " is not a regular file");
    }
    // Whoever may write the file decides what runs inside the daemon.
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return make_error(ErrorCode::InvalidArgument, where + " is writable by group or others");
    }
    return *resolved;
}

Result<std::string> Pkcs11ModuleAllowlist::resolve_module(const Pkcs11Uri& uri) const {
    if (uri.module_path) {
        return resolve(*uri.module_path);
    }
    std::string looked;
    for (const auto& candidate : default_module_candidates()) {
        if (access(candidate.c_str(), F_OK) == 0) {
            return resolve(candidate);
        }
        looked += (looked.empty() ? "" : ", ") + candidate;
    }
    return make_error(ErrorCode::InvalidArgument,
                      "the PKCS#11 URI names no module-path and OpenSC's module is not installed "
                      "(looked for " +
                          looked + "): install opensc-pkcs11 or add ?module-path=... to the URI");
}

}  // namespace apikeyd
