#include "dbus/manager_object.hpp"

#include <cstring>
#include <string>

#include "daemon/log.hpp"
#include "dbus/methods.hpp"

namespace apikeyd::bus {

Result<std::unique_ptr<ManagerObject>> ManagerObject::create(sd_bus* bus, Core core) {
    std::unique_ptr<ManagerObject> object(new ManagerObject(core));
    auto callers = CallerCache::create(bus);
    if (!callers) {
        return callers.error();
    }
    object->callers_ = std::move(*callers);
    sd_bus_slot* slot = nullptr;
    const int r = sd_bus_add_object_vtable(bus, &slot, bus_names::kObjectPath,
                                           bus_names::kInterface, manager_vtable(), object.get());
    if (r < 0) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot register the Manager object: ") + std::strerror(-r));
    }
    object->vtable_slot_.reset(slot);
    return object;
}

void ManagerObject::answer_when_durable(sd_bus_message* call, sdbus::MessagePtr reply,
                                        KeySignal signal) {
    struct Parked {
        sdbus::MessagePtr call;
        sdbus::MessagePtr reply;
    };
    // Shared: the scheduler's callbacks are copyable, the messages are not.
    auto parked = std::make_shared<Parked>(
        Parked{sdbus::MessagePtr(sd_bus_message_ref(call)), std::move(reply)});
    Subscribers& subscribers = core_.subscribers;
    core_.commits.after_durable(
        [parked, &subscribers, signal = std::move(signal)](const Result<void>& outcome) {
            sd_bus_message* m = parked->call.get();
            int r = 0;
            if (outcome) {
                subscribers.send(signal);
                r = sd_bus_send(sd_bus_message_get_bus(m), parked->reply.get(), nullptr);
            } else {
                sdbus::Error error;
                reply_error(error.get(), outcome.error(), sd_bus_message_get_member(m));
                r = sd_bus_reply_method_error(m, error.get());
            }
            if (r < 0) {
                log::warning(std::string("Cannot answer ") + sd_bus_message_get_member(m) + ": " +
                             std::strerror(-r));
            }
        });
}

}  // namespace apikeyd::bus
