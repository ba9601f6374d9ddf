#include "cli/errors.hpp"

#include <iostream>
#include <string_view>

#include "cli/output.hpp"

namespace apikeyd::cli {
namespace {

constexpr std::string_view kApikeydErrors = "org.apikeyd1.Error.";

// The daemon's messages are sentences that name what was wrong ("No key with
// id 'k_…' (or it is not yours)", "Invalid scope 'x': …", "Only root may add
// keyslots"), so most need no prefix; the others get one that says what kind
// of refusal it was.
constexpr std::pair<std::string_view, std::string_view> kPrefixes[] = {
    {"NotFound", ""},     {"InvalidArgument", ""},
    {"Revoked", ""},      {"Expired", ""},
    {"Locked", ""},       {"LimitExceeded", ""},
    {"Internal", ""},     {"RateLimited", "Too many failed attempts"},
    {"AccessDenied", ""},
};

// Errors that mean nobody answered: the daemon is not there, or not on this bus.
constexpr std::string_view kUnreachable[] = {
    "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",        "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.TimedOut",       "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.NoServer",
};

bool is_unreachable(const client::BusError& error) {
    if (dynamic_cast<const client::ConnectError*>(&error) != nullptr) {
        return true;
    }
    const std::string_view name = error.name();
    // Activation failures: the bus tried to start apikeyd and could not.
    if (name.starts_with("org.freedesktop.DBus.Error.Spawn.")) {
        return true;
    }
    for (const auto& n : kUnreachable) {
        if (name == n) {
            return true;
        }
    }
    return false;
}

std::string sentence(std::string text) {
    if (!text.empty() && text.back() != '.' && text.back() != '!' && text.back() != '?') {
        text += '.';
    }
    return text;
}

// Every key command fails while apikeyd is locked; say what ends that.
constexpr std::string_view kLockedHint =
    "; see 'apikeyctl status', and unlock it as root with 'apikeyctl unlock'";

std::string describe_daemon_error(std::string_view name, const std::string& message) {
    const std::string_view kind = name.substr(kApikeydErrors.size());
    for (const auto& [k, prefix] : kPrefixes) {
        if (k == kind) {
            std::string text;
            if (message.empty()) {
                text = prefix.empty() ? std::string(kind) : std::string(prefix);
            } else {
                text = prefix.empty() ? message : std::string(prefix) + ": " + message;
            }
            return kind == "Locked" ? text + std::string(kLockedHint) : text;
        }
    }
    // An error this client does not know yet: a newer daemon.
    return "apikeyd refused the request (" + std::string(kind) + ")" +
           (message.empty() ? "" : ": " + message);
}

}  // namespace

int report_bus_error(const client::BusError& error) {
    const std::string message = printable(error.what());
    const std::string_view name = error.name();
    std::string text;
    int status = kExitDaemonError;
    if (is_unreachable(error)) {
        text = "apikeyd is not running (" + message + ")";
        status = kExitUnreachable;
    } else if (name == "org.freedesktop.DBus.Error.AccessDenied") {
        text = "The bus does not let you call apikeyd (" + message + ")";
        status = kExitUnreachable;
    } else if (name.starts_with(kApikeydErrors)) {
        text = describe_daemon_error(name, message);
    } else {
        text = "D-Bus error " + printable(name) + (message.empty() ? "" : ": " + message);
    }
    std::cerr << "apikeyctl: " << sentence(std::move(text)) << std::endl;
    return status;
}

}  // namespace apikeyd::cli
