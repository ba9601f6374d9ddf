#pragma once
// Owning handles for the sd-event loop the daemon runs on: the composition
// root owns the loop and its signal and timer sources, the core its commit
// sources.

#include <systemd/sd-event.h>

#include "common/c_handle.hpp"

namespace apikeyd {

using EventPtr = CHandle<sd_event, sd_event_unref>;
using EventSourcePtr = CHandle<sd_event_source, sd_event_source_unref>;

}  // namespace apikeyd
