#include "dbus/caller_cache.hpp"

#include <gtest/gtest.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "dbus/sdbus.hpp"

namespace apikeyd {
namespace {

// Credentials made from a PID are read from /proc: exactly what an
// augmented EUID is. The accepting side, an EUID the bus vouched for, is
// what every integration test as root and as nobody exercises.
TEST(TrustedEuid, RefusesAnEuidReadFromProc) {
    sd_bus_creds* raw = nullptr;
    ASSERT_GE(sd_bus_creds_new_from_pid(&raw, getpid(), SD_BUS_CREDS_EUID), 0);
    const sdbus::CredsPtr creds(raw);
    uid_t from_proc = 0;
    ASSERT_GE(sd_bus_creds_get_euid(creds.get(), &from_proc), 0);
    ASSERT_EQ(from_proc, geteuid());
    ASSERT_NE(sd_bus_creds_get_augmented_mask(creds.get()) & SD_BUS_CREDS_EUID, 0u);

    const auto euid = bus::trusted_euid(creds.get());

    ASSERT_FALSE(euid);
    EXPECT_EQ(euid.error().code, ErrorCode::AccessDenied);
    EXPECT_EQ(euid.error().message, "The bus could not tell who is calling");
}

}  // namespace
}  // namespace apikeyd
