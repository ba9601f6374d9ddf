#pragma once
// Owning handles for sd-bus objects, shared by the daemon and the client.
// Nothing here knows about apikeyd's contract.

#include <systemd/sd-bus.h>

#include "common/c_handle.hpp"

namespace apikeyd::sdbus {

// Flushes before closing so that a reply queued just before shutdown still
// leaves the process.
using BusPtr = CHandle<sd_bus, sd_bus_flush_close_unref>;
using MessagePtr = CHandle<sd_bus_message, sd_bus_message_unref>;
using SlotPtr = CHandle<sd_bus_slot, sd_bus_slot_unref>;
using CredsPtr = CHandle<sd_bus_creds, sd_bus_creds_unref>;
using TrackPtr = CHandle<sd_bus_track, sd_bus_track_unref>;

class Error {
  public:
    Error() = default;
    ~Error() { sd_bus_error_free(&error_); }
    Error(const Error&) = delete;
    Error& operator=(const Error&) = delete;

    sd_bus_error* get() { return &error_; }
    const sd_bus_error* get() const { return &error_; }
    bool is_set() const { return sd_bus_error_is_set(&error_) > 0; }
    const char* name() const { return error_.name ? error_.name : ""; }
    const char* message() const { return error_.message ? error_.message : ""; }

  private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace apikeyd::sdbus
