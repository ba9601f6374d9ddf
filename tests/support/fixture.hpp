#pragma once
// The common test fixture: a private bus with the project's policy, the real
// apikeyd on a fresh state directory, and a client connected as root (the
// test process). Everything is torn down in reverse order after each test.

#include <unistd.h>

#include <optional>

#include <gtest/gtest.h>

#include "dbus/client.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/private_bus.hpp"

namespace apikeyd::test {

class DaemonTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "integration tests run as root: the bus policy lets only root (or "
                            "the apikeyd user) own org.apikeyd1, and tests drop to nobody";
        }
        bus_.emplace();
        daemon_.emplace(*bus_);
        root_.emplace(client::Client::connect_address(bus_->address()));
    }

    PrivateBus& bus() { return *bus_; }
    Daemon& daemon() { return *daemon_; }
    // A client of the test process, i.e. of root.
    client::Client& root() { return *root_; }
    // A fresh root client, e.g. after a daemon restart.
    void reconnect() { root_.emplace(client::Client::connect_address(bus_->address())); }

  private:
    std::optional<PrivateBus> bus_;
    std::optional<Daemon> daemon_;
    std::optional<client::Client> root_;
};

}  // namespace apikeyd::test
