#pragma once
// The table of org.apikeyd1.Manager's methods and signals, as sd-bus
// registers it (dbus/methods.cpp).

#include <systemd/sd-bus.h>

namespace apikeyd::bus {

const sd_bus_vtable* manager_vtable();

}  // namespace apikeyd::bus
