#include "dbus/caller_cache.hpp"

#include <cstring>

namespace apikeyd::bus {
namespace {
// A bound in case a NameOwnerChanged signal is ever missed: clearing costs
// only a few re-queries.
constexpr size_t kMaxCachedCallers = 16384;
}  // namespace

Result<uid_t> trusted_euid(sd_bus_creds* creds) {
    uid_t euid = 0;
    if ((sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID) != 0 ||
        sd_bus_creds_get_euid(creds, &euid) < 0) {
        return make_error(ErrorCode::AccessDenied, "The bus could not tell who is calling");
    }
    return euid;
}

Result<std::unique_ptr<CallerCache>> CallerCache::create(sd_bus* bus) {
    std::unique_ptr<CallerCache> cache(new CallerCache());
    sd_bus_slot* slot = nullptr;
    // arg2='' (no new owner): only names that leave, not every name taken.
    const int r = sd_bus_add_match(bus, &slot,
                                   "type='signal',sender='org.freedesktop.DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                   "arg2=''",
                                   &CallerCache::on_name_owner_changed, cache.get());
    if (r < 0) {
        return make_error(
            ErrorCode::Internal,
            std::string("Cannot subscribe to NameOwnerChanged: ") + std::strerror(-r));
    }
    cache->match_.reset(slot);
    return cache;
}

int CallerCache::on_name_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<CallerCache*>(userdata);
    const char* name = nullptr;
    const char* old_owner = nullptr;
    const char* new_owner = nullptr;
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner[0] == '\0') {
        self->callers_.erase(name);
    }
    return 0;
}

Result<Caller> CallerCache::caller_of(sd_bus_message* m) {
    const char* sender = sd_bus_message_get_sender(m);
    if (!sender) {
        return make_error(ErrorCode::AccessDenied, "The call has no sender");
    }
    if (const auto it = callers_.find(sender); it != callers_.end()) {
        return it->second;
    }
    sd_bus_creds* raw = nullptr;
    // EXE and UNIT come from /proc (SD_BUS_CREDS_AUGMENT), racily: good
    // enough for a person reading the audit, never used to decide. The EUID
    // must not: trusted_euid refuses it if the bus did not provide it.
    const int r =
        sd_bus_query_sender_creds(m,
                                  SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_EXE |
                                      SD_BUS_CREDS_UNIT | SD_BUS_CREDS_AUGMENT,
                                  &raw);
    sdbus::CredsPtr creds(raw);
    if (r < 0) {
        return make_error(ErrorCode::AccessDenied, "The bus could not tell who is calling");
    }
    const auto euid = trusted_euid(creds.get());
    if (!euid) {
        return euid.error();
    }
    pid_t pid = 0;
    // The PID is only for people reading the audit log; it decides nothing.
    (void)sd_bus_creds_get_pid(creds.get(), &pid);
    if (callers_.size() >= kMaxCachedCallers) {
        callers_.clear();
    }
    Caller caller{static_cast<uint32_t>(*euid), static_cast<uint32_t>(pid)};
    const char* text = nullptr;
    if (sd_bus_creds_get_exe(creds.get(), &text) >= 0 && text) {
        caller.exe = caller_text(text);
    }
    if (sd_bus_creds_get_unit(creds.get(), &text) >= 0 && text) {
        caller.unit = caller_text(text);
    }
    callers_.emplace(sender, caller);
    return caller;
}

}  // namespace apikeyd::bus
