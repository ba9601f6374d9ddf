#include "dbus/subscribers.hpp"

#include <cerrno>
#include <cstring>

#include "common/bus_names.hpp"
#include "daemon/log.hpp"

namespace apikeyd::bus {

Result<void> Subscribers::subscribe(std::string_view name, uint32_t uid) {
    std::string key(name);
    if (by_name_.contains(key)) {
        return {};
    }
    if (const auto it = per_uid_.find(uid); it != per_uid_.end() && it->second >= kMaxPerUid) {
        return make_error(ErrorCode::LimitExceeded,
                          "UID " + std::to_string(uid) + " already has " +
                              std::to_string(kMaxPerUid) +
                              " subscribed connections; close one or call Unsubscribe on it");
    }
    if (by_name_.size() >= kMaxTotal) {
        return make_error(ErrorCode::LimitExceeded, "apikeyd already has " +
                                                        std::to_string(kMaxTotal) +
                                                        " subscribed connections; try later");
    }
    auto subscription = std::make_unique<Subscription>(Subscription{this, key, uid, nullptr});
    sd_bus_track* raw = nullptr;
    int r = sd_bus_track_new(bus_, &raw, &Subscribers::on_connection_gone, subscription.get());
    subscription->track.reset(raw);
    if (r >= 0) {
        r = sd_bus_track_add_name(raw, key.c_str());
    }
    if (r == -ENXIO) {
        // The bus says the name has no owner: the caller left before it
        // could be tracked, and no answer reaches it anyway.
        return make_error(ErrorCode::AccessDenied, "The calling connection has left the bus");
    }
    if (r < 0) {
        return make_error(ErrorCode::Internal,
                          "Cannot follow the subscriber " + key + ": " + std::strerror(-r));
    }
    by_name_.emplace(std::move(key), std::move(subscription));
    ++per_uid_[uid];
    return {};
}

Result<void> Subscribers::unsubscribe(std::string_view name) {
    const std::string key(name);
    if (!by_name_.contains(key)) {
        return make_error(ErrorCode::NotSubscribed, "This connection is not subscribed");
    }
    erase(key);
    return {};
}

void Subscribers::erase(const std::string& name) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) {
        return;
    }
    const uint32_t uid = it->second->uid;
    if (--per_uid_[uid] == 0) {
        per_uid_.erase(uid);
    }
    by_name_.erase(it);
}

int Subscribers::on_connection_gone(sd_bus_track*, void* userdata) {
    const auto* subscription = static_cast<const Subscription*>(userdata);
    // A copy: erasing frees the subscription. sd-bus holds its own
    // reference to the tracker while this runs.
    const std::string name = subscription->name;
    subscription->owner->erase(name);
    // Handled: a positive value keeps sd-bus from queueing the tracker again.
    return 1;
}

void Subscribers::send(const KeySignal& signal) const {
    for (const auto& [name, subscription] : by_name_) {
        if (subscription->uid != signal.owner_uid && subscription->uid != 0) {
            continue;
        }
        sd_bus_message* raw = nullptr;
        int r = sd_bus_message_new_signal(bus_, &raw, bus_names::kObjectPath, bus_names::kInterface,
                                          signal.member);
        const sdbus::MessagePtr message(raw);
        if (r >= 0) {
            r = sd_bus_message_set_destination(raw, name.c_str());
        }
        if (r >= 0) {
            r = sd_bus_message_append_basic(raw, 's', signal.id.c_str());
        }
        if (r >= 0) {
            r = sd_bus_send(bus_, raw, nullptr);
        }
        if (r < 0) {
            log::warning(std::string("Cannot send ") + signal.member + " for " + signal.id +
                         " to " + name + ": " + std::strerror(-r));
        }
    }
}

}  // namespace apikeyd::bus
