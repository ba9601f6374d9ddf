#pragma once
// Owning handles for sd-bus objects, shared by the daemon and the client.
// Nothing here knows about apikeyd.

#include <systemd/sd-bus.h>

#include <memory>

namespace apikeyd::sdbus {

template <auto Unref>
struct Unreffer {
    template <typename T>
    void operator()(T* handle) const noexcept {
        Unref(handle);
    }
};

// Flushes before closing so that a reply queued just before shutdown still
// leaves the process.
using BusPtr = std::unique_ptr<sd_bus, Unreffer<sd_bus_flush_close_unref>>;
using MessagePtr = std::unique_ptr<sd_bus_message, Unreffer<sd_bus_message_unref>>;
using SlotPtr = std::unique_ptr<sd_bus_slot, Unreffer<sd_bus_slot_unref>>;
using CredsPtr = std::unique_ptr<sd_bus_creds, Unreffer<sd_bus_creds_unref>>;

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
