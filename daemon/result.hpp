#pragma once
// Errors as values inside the core. The bus layer maps ErrorCode to a named
// D-Bus error; the message is written for the caller and never holds a secret.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace apikeyd {

enum class ErrorCode {
    NotFound,
    InvalidArgument,
    Revoked,
    Expired,
    RateLimited,
    Locked,
    AccessDenied,
    LimitExceeded,
    // Unsubscribe from a connection that holds no subscription.
    NotSubscribed,
    // The database could not be written for want of room (ENOSPC, EDQUOT, or
    // EFBIG past RLIMIT_FSIZE). On the bus it is an Internal error with its
    // own fixed text: the cause is the host's, not the call's.
    StorageFull,
    Internal,
};

struct Error {
    ErrorCode code;
    std::string message;
};

inline Error make_error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<T>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<T>(std::move(v_));
    }
    const T& value() const& {
        assert(ok());
        return std::get<T>(v_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const {
        assert(!ok());
        return std::get<Error>(v_);
    }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const {
        assert(!ok_);
        return error_;
    }

  private:
    Error error_{ErrorCode::Internal, {}};
    bool ok_ = true;
};

}  // namespace apikeyd
