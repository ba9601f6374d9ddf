#pragma once
// The org.apikeyd1.Manager object at /org/apikeyd1: reads and checks the
// arguments, asks the bus who is calling, hands the call to the KeyService,
// emits the change signal and writes the reply; a change's signal and reply
// wait for the COMMIT that makes it durable (GroupCommit). It decides
// nothing itself.

#include <systemd/sd-bus.h>

#include <memory>

#include "daemon/key_service.hpp"
#include "daemon/keyslot_admin.hpp"
#include "dbus/caller_cache.hpp"
#include "dbus/group_commit.hpp"
#include "dbus/sdbus.hpp"

namespace apikeyd::bus {

inline constexpr const char* kBusName = "org.apikeyd1";
inline constexpr const char* kObjectPath = "/org/apikeyd1";
inline constexpr const char* kInterface = "org.apikeyd1.Manager";

class ManagerObject {
  public:
    static Result<std::unique_ptr<ManagerObject>> create(sd_bus* bus, KeyService& service,
                                                         KeyslotAdmin& keyslots);

    // One handler per method; public only so the vtable can name them.
    int create_key(sd_bus_message* m, sd_bus_error* ret);
    int import_secret(sd_bus_message* m, sd_bus_error* ret);
    int list_keys(sd_bus_message* m, sd_bus_error* ret);
    int get_key(sd_bus_message* m, sd_bus_error* ret);
    int revoke_key(sd_bus_message* m, sd_bus_error* ret);
    int verify_key(sd_bus_message* m, sd_bus_error* ret);
    int get_secret(sd_bus_message* m, sd_bus_error* ret);
    int get_status(sd_bus_message* m, sd_bus_error* ret);
    int add_keyslot(sd_bus_message* m, sd_bus_error* ret);
    int remove_keyslot(sd_bus_message* m, sd_bus_error* ret);
    int unlock(sd_bus_message* m, sd_bus_error* ret);
    int update_key(sd_bus_message* m, sd_bus_error* ret);
    int rotate_key(sd_bus_message* m, sd_bus_error* ret);
    int sign(sd_bus_message* m, sd_bus_error* ret);
    int get_usage(sd_bus_message* m, sd_bus_error* ret);
    int get_usage_by_day(sd_bus_message* m, sd_bus_error* ret);
    int identify_key(sd_bus_message* m, sd_bus_error* ret);

  private:
    ManagerObject(KeyService& service, KeyslotAdmin& keyslots)
        : service_(service), keyslots_(keyslots) {}
    // The reply to a change made in the open batch, sent (after `signal`)
    // once the batch commits; `r` < 0 if building the reply failed.
    int answer_after_commit(sd_bus_message* m, sdbus::MessagePtr reply, int r, const char* signal,
                            std::string id);

    KeyService& service_;
    KeyslotAdmin& keyslots_;
    std::unique_ptr<CallerCache> callers_;
    std::unique_ptr<GroupCommit> commits_;
    sdbus::SlotPtr vtable_slot_;
};

}  // namespace apikeyd::bus
