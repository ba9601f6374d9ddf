#pragma once
// The org.apikeyd1.Manager object at /org/apikeyd1. Every method runs one
// way (handle<Method>): read the arguments the method declares, ask the bus
// who is calling, call the core, then write the reply, or for a change park
// it, with its signal, until the CommitScheduler says the change is
// durable; then the change's signal goes to the subscribers who may see the
// key. Errors become named D-Bus errors in one place (bus_errors). It
// decides nothing itself.

#include <systemd/sd-bus.h>

#include <cerrno>
#include <exception>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "common/bus_names.hpp"
#include "daemon/commit_scheduler.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_admin.hpp"
#include "dbus/bus_errors.hpp"
#include "dbus/caller_cache.hpp"
#include "dbus/marshal.hpp"
#include "dbus/sdbus.hpp"
#include "dbus/subscribers.hpp"

namespace apikeyd::bus {

// What the methods call.
struct Core {
    KeyService& keys;
    KeyslotAdmin& keyslots;
    CommitScheduler& commits;
    Subscribers& subscribers;
};

class ManagerObject {
  public:
    static Result<std::unique_ptr<ManagerObject>> create(sd_bus* bus, Core core);

    // The one handler of every method: `Method` is
    // Result<Out> (Core&, const Caller&, Args...).
    template <auto Method>
    static int handle(sd_bus_message* m, void* userdata, sd_bus_error* ret);

  private:
    explicit ManagerObject(Core core) : core_(core) {}

    template <class Out>
    int reply(sd_bus_message* m, Out&& out, sd_bus_error* ret);
    template <class Out>
    int reply(sd_bus_message* m, Durable<Out>&& change, sd_bus_error* ret);
    // Sends `signal` to its subscribers and `reply` once the change is
    // durable, or answers `call` with the error if it is not.
    void answer_when_durable(sd_bus_message* call, sdbus::MessagePtr reply, KeySignal signal);

    Core core_;
    std::unique_ptr<CallerCache> callers_;
    sdbus::SlotPtr vtable_slot_;
};

// ------------------------------------------------------------ the handler

namespace detail {

template <class>
struct MethodTraits;
template <class Out, class... Args>
struct MethodTraits<Result<Out> (*)(Core&, const Caller&, Args...)> {
    using Arguments = std::tuple<std::decay_t<Args>...>;
};

// Reads the arguments in order; after the first failure reads no more.
template <class... Args>
Result<std::tuple<Args...>> read_arguments(sd_bus_message* m, const char* method,
                                           std::type_identity<std::tuple<Args...>>) {
    std::optional<Error> failure;
    const auto one = [&]<class T>(Tag<T> tag) -> T {
        if (!failure) {
            auto value = read(m, method, tag);
            if (value) {
                return std::move(*value);
            }
            failure = value.error();
        }
        return T{};
    };
    (void)one;  // a method without arguments
    // A braced list is evaluated left to right.
    std::tuple<Args...> values{one(Tag<Args>{})...};
    if (failure) {
        return *failure;
    }
    return values;
}

// A reply write() could not build: one too large for the bus is the
// caller's to shrink; anything else is sd-bus's errno.
inline int write_failed(int r, sd_bus_error* ret, const char* method) {
    if (r != -EMSGSIZE) {
        return r;
    }
    return reply_error(
        ret,
        make_error(ErrorCode::LimitExceeded, "The reply would be larger than the " +
                                                 std::to_string(kMaxReplyBytes / (1024 * 1024)) +
                                                 " MiB apikeyd sends in one message: ask for less"),
        method);
}

}  // namespace detail

template <auto Method>
int ManagerObject::handle(sd_bus_message* m, void* userdata, sd_bus_error* ret) {
    auto& self = *static_cast<ManagerObject*>(userdata);
    const char* method = sd_bus_message_get_member(m);
    // Nothing may unwind through sd-bus's C frames.
    try {
        using Arguments = typename detail::MethodTraits<decltype(Method)>::Arguments;
        auto arguments = detail::read_arguments(m, method, std::type_identity<Arguments>{});
        if (!arguments) {
            return reply_error(ret, arguments.error(), method);
        }
        auto caller = self.callers_->caller_of(m);
        if (!caller) {
            return reply_error(ret, caller.error(), method);
        }
        auto out = std::apply(
            [&](auto&... args) { return Method(self.core_, *caller, std::move(args)...); },
            *arguments);
        if (!out) {
            return reply_error(ret, out.error(), method);
        }
        return self.reply(m, std::move(*out), ret);
    } catch (const std::exception& e) {
        return reply_error(ret, make_error(ErrorCode::Internal, e.what()), method);
    }
}

template <class Out>
int ManagerObject::reply(sd_bus_message* m, Out&& out, sd_bus_error* ret) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = write(reply.get(), out);
    if (r < 0) {
        return detail::write_failed(r, ret, sd_bus_message_get_member(m));
    }
    return sd_bus_send(nullptr, reply.get(), nullptr);
}

template <class Out>
int ManagerObject::reply(sd_bus_message* m, Durable<Out>&& change, sd_bus_error* ret) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    sdbus::MessagePtr reply(raw);
    if (r >= 0)
        r = write(reply.get(), change.value);
    if (r < 0) {
        return detail::write_failed(r, ret, sd_bus_message_get_member(m));
    }
    answer_when_durable(m, std::move(reply), std::move(change.signal));
    // Handled (sd-bus would answer 0 with "Unknown method"); the reply
    // follows the commit.
    return 1;
}

}  // namespace apikeyd::bus
