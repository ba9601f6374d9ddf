#include "dbus/bus_errors.hpp"

#include <cerrno>
#include <string>

#include "daemon/log.hpp"

namespace apikeyd::bus {

const char* error_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::NotFound:
            return "org.apikeyd1.Error.NotFound";
        case ErrorCode::InvalidArgument:
            return "org.apikeyd1.Error.InvalidArgument";
        case ErrorCode::Revoked:
            return "org.apikeyd1.Error.Revoked";
        case ErrorCode::Expired:
            return "org.apikeyd1.Error.Expired";
        case ErrorCode::RateLimited:
            return "org.apikeyd1.Error.RateLimited";
        case ErrorCode::Locked:
            return "org.apikeyd1.Error.Locked";
        case ErrorCode::AccessDenied:
            return "org.apikeyd1.Error.AccessDenied";
        case ErrorCode::LimitExceeded:
            return "org.apikeyd1.Error.LimitExceeded";
        case ErrorCode::StorageFull:
        case ErrorCode::Internal:
            return "org.apikeyd1.Error.Internal";
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
