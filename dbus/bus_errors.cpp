#include "dbus/bus_errors.hpp"

#include <cerrno>
#include <string>

#include "daemon/log.hpp"

namespace apikeyd::bus {
namespace {

struct NamedError {
    ErrorCode code;
    const char* name;
};
// StorageFull is the host's failure, not the call's: Internal on the bus.
constexpr NamedError kNames[] = {{ErrorCode::NotFound, "org.apikeyd1.Error.NotFound"},
                                 {ErrorCode::InvalidArgument, "org.apikeyd1.Error.InvalidArgument"},
                                 {ErrorCode::Revoked, "org.apikeyd1.Error.Revoked"},
                                 {ErrorCode::Expired, "org.apikeyd1.Error.Expired"},
                                 {ErrorCode::RateLimited, "org.apikeyd1.Error.RateLimited"},
                                 {ErrorCode::Locked, "org.apikeyd1.Error.Locked"},
                                 {ErrorCode::AccessDenied, "org.apikeyd1.Error.AccessDenied"},
                                 {ErrorCode::LimitExceeded, "org.apikeyd1.Error.LimitExceeded"},
                                 {ErrorCode::NotSubscribed, "org.apikeyd1.Error.NotSubscribed"}};

}  // namespace

const char* error_name(ErrorCode code) {
    for (const auto& named : kNames) {
        if (named.code == code) {
            return named.name;
        }
    }
    return "org.apikeyd1.Error.Internal";
}

int reply_error(sd_bus_error* ret, const Error& error, const char* method) {
    if (error.code == ErrorCode::StorageFull) {
        log::error(std::string(method) + " failed, the state directory is full: " + error.message);
        return sd_bus_error_set(ret, error_name(error.code),
                                "apikeyd cannot write its database: the disk is full or a file "
                                "size limit was reached; nothing was changed");
    }
    if (error.code == ErrorCode::Internal) {
        log::error(std::string(method) + " failed: " + error.message);
        return sd_bus_error_set(ret, error_name(error.code),
                                "Internal error in apikeyd; the daemon's log has the details");
    }
    return sd_bus_error_set(ret, error_name(error.code), error.message.c_str());
}

}  // namespace apikeyd::bus
