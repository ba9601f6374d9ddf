// The bus policy dbus/org.apikeyd1.conf as users other than root and the
// daemon's own user meet it, on a private bus that loads it the way the
// system bus does. Whoever owns org.apikeyd1 receives every key and secret
// that clients send, so the name must stay out of reach; and a key sent to
// VerifyKey must reach the daemon alone.
//
// ownership_test.cpp already shows that nobody may call and introspect the
// daemon and cannot claim the name while it is free; this file adds the rest:
// no take-over while the daemon runs, no interface besides the four the
// policy opens (not with the unique name, not without an interface), no
// overhearing, and a control that the daemon user's section is what grants
// ownership. Mutating the policy (an interface-less send allow, an own allow
// in the default context, the apikeyd section renamed) fails these tests.

#include <systemd/sd-bus.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/bus_names.hpp"
#include "dbus/sdbus.hpp"
#include "tests/support/as_nobody.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/private_bus.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timing.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

using bus_names::kBusName;
using bus_names::kInterface;
using bus_names::kObjectPath;
constexpr const char* kDriver = "org.freedesktop.DBus";
constexpr const char* kDriverPath = "/org/freedesktop/DBus";
// A std::string, so that failed comparisons with JSON values print it.
const std::string kAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";

// RequestName flags (D-Bus specification).
constexpr uint32_t kAllowReplacement = 1;
constexpr uint32_t kReplaceExisting = 2;
constexpr uint32_t kDoNotQueue = 4;

// A raw sd-bus connection to a bus address, for calls the client proxy and
// BusConnection do not make: any interface (or none), RequestName with any
// flags, BecomeMonitor, match rules sent to the bus as they are.
class RawBus {
  public:
    explicit RawBus(const std::string& address) {
        sd_bus* raw = nullptr;
        int r = sd_bus_new(&raw);
        if (r < 0) {
            throw std::runtime_error(std::string("sd_bus_new: ") + std::strerror(-r));
        }
        bus_.reset(raw);
        if ((r = sd_bus_set_address(raw, address.c_str())) < 0 ||
            (r = sd_bus_set_bus_client(raw, 1)) < 0 || (r = sd_bus_start(raw)) < 0) {
            throw std::runtime_error("cannot connect to " + address + ": " + std::strerror(-r));
        }
    }

    sd_bus* get() const { return bus_.get(); }

    // Calls `member` with the string arguments `args`; `interface` may be
    // nullptr (no interface field). Returns "" on success, else the error name.
    std::string call(const char* destination, const char* path, const char* interface,
                     const char* member, const std::vector<std::string>& args = {}) {
        MessagePtr message = new_call(destination, path, interface, member);
        for (const auto& arg : args) {
            check(sd_bus_message_append_basic(message.get(), 's', arg.c_str()), member);
        }
        return send(message.get(), nullptr);
    }

    // RequestName(name, flags): "" when this connection became the primary
    // owner, "reply N" for another answer, else the error name.
    std::string request_name(const std::string& name, uint32_t flags) {
        MessagePtr message = new_call(kDriver, kDriverPath, kDriver, "RequestName");
        check(sd_bus_message_append(message.get(), "su", name.c_str(), flags), "RequestName");
        uint32_t answer = 0;
        const std::string error = send(message.get(), [&](sd_bus_message* reply) {
            check(sd_bus_message_read(reply, "u", &answer), "RequestName reply");
        });
        if (!error.empty()) {
            return error;
        }
        return answer == 1 ? "" : "reply " + std::to_string(answer);
    }

    // org.freedesktop.DBus.Monitoring.BecomeMonitor([], 0): "" or the error name.
    std::string become_monitor() {
        MessagePtr message =
            new_call(kDriver, kDriverPath, "org.freedesktop.DBus.Monitoring", "BecomeMonitor");
        check(sd_bus_message_append(message.get(), "asu", 0, 0u), "BecomeMonitor");
        return send(message.get(), nullptr);
    }

    // The unique name (":1.N") that owns `name`.
    std::string name_owner(const std::string& name) {
        MessagePtr message = new_call(kDriver, kDriverPath, kDriver, "GetNameOwner");
        check(sd_bus_message_append_basic(message.get(), 's', name.c_str()), "GetNameOwner");
        std::string owner;
        const std::string error = send(message.get(), [&](sd_bus_message* reply) {
            const char* text = nullptr;
            check(sd_bus_message_read(reply, "s", &text), "GetNameOwner reply");
            owner = text != nullptr ? text : "";
        });
        if (!error.empty()) {
            throw std::runtime_error("GetNameOwner(" + name + "): " + error);
        }
        return owner;
    }

  private:
    using MessagePtr = sdbus::MessagePtr;

    static void check(int r, const char* what) {
        if (r < 0) {
            throw std::runtime_error(std::string(what) + ": " + std::strerror(-r));
        }
    }

    MessagePtr new_call(const char* destination, const char* path, const char* interface,
                        const char* member) {
        sd_bus_message* raw = nullptr;
        check(
            sd_bus_message_new_method_call(bus_.get(), &raw, destination, path, interface, member),
            member);
        return MessagePtr(raw);
    }

    // Sends and waits for the reply; "" and `on_reply(reply)` on success, else
    // the error's name.
    std::string send(sd_bus_message* message,
                     const std::function<void(sd_bus_message*)>& on_reply) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message* reply = nullptr;
        const int r = sd_bus_call(bus_.get(), message, 10'000'000, &error, &reply);
        MessagePtr owned_reply(reply);
        std::string name;
        if (r < 0) {
            name = error.name != nullptr ? error.name : std::string("errno ") + std::strerror(-r);
        }
        sd_bus_error_free(&error);
        if (r >= 0 && on_reply) {
            on_reply(reply);
        }
        return name;
    }

    sdbus::BusPtr bus_;
};

using BusPolicyForOthers = DaemonTest;

TEST_F(BusPolicyForOthers, NobodyCannotTakeTheNameFromTheRunningDaemon) {
    const std::string address = bus().address();
    const auto outcome = run_as_nobody([&] {
        RawBus bus(address);
        return json{
            {"replace", bus.request_name(kBusName, kReplaceExisting | kDoNotQueue)},
            {"replace_or_queue", bus.request_name(kBusName, kReplaceExisting | kAllowReplacement)},
            {"queue", bus.request_name(kBusName, 0)},
        };
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    for (const char* attempt : {"replace", "replace_or_queue", "queue"}) {
        EXPECT_EQ(outcome.value[attempt], kAccessDenied) << attempt << ": " << outcome.value.dump();
    }
    auto observer = BusConnection::connect(address);
    EXPECT_EQ(observer.name_owner_pid(kBusName), daemon().pid()) << "the daemon lost its name";
    EXPECT_FALSE(field<bool>(root().get_status(), "locked")) << "the daemon no longer answers";
}

TEST_F(BusPolicyForOthers, NobodyReachesOnlyTheFourOpenInterfaces) {
    const std::string address = bus().address();
    const std::string unique = RawBus(address).name_owner(kBusName);
    ASSERT_EQ(unique.rfind(":", 0), 0u) << unique;
    const auto outcome = run_as_nobody([&] {
        RawBus bus(address);
        json results;
        for (const std::string& destination : {std::string(kBusName), unique}) {
            json& r = results[destination == kBusName ? "well_known" : "unique"];
            // Open: the daemon answers (or refuses with its own error).
            r["Peer.Ping"] =
                bus.call(destination.c_str(), kObjectPath, "org.freedesktop.DBus.Peer", "Ping");
            r["Manager.GetStatus"] =
                bus.call(destination.c_str(), kObjectPath, kInterface, "GetStatus");
            r["Properties.GetAll"] =
                bus.call(destination.c_str(), kObjectPath, "org.freedesktop.DBus.Properties",
                         "GetAll", {kInterface});
            // Closed: the bus refuses before the daemon sees the call.
            r["Admin.GetStatus"] =
                bus.call(destination.c_str(), kObjectPath, "org.apikeyd1.Admin", "GetStatus");
            r["ObjectManager.GetManagedObjects"] =
                bus.call(destination.c_str(), kObjectPath, "org.freedesktop.DBus.ObjectManager",
                         "GetManagedObjects");
            r["no interface GetStatus"] =
                bus.call(destination.c_str(), kObjectPath, nullptr, "GetStatus");
        }
        return results;
    });
    ASSERT_TRUE(outcome.ok) << outcome.error;
    for (const char* destination : {"well_known", "unique"}) {
        const json& r = outcome.value[destination];
        SCOPED_TRACE(std::string(destination) + " name: " + r.dump());
        EXPECT_EQ(r["Peer.Ping"], "");
        EXPECT_EQ(r["Manager.GetStatus"], "");
        EXPECT_NE(r["Properties.GetAll"], kAccessDenied);
        EXPECT_EQ(r["Admin.GetStatus"], kAccessDenied);
        EXPECT_EQ(r["ObjectManager.GetManagedObjects"], kAccessDenied);
        EXPECT_EQ(r["no interface GetStatus"], kAccessDenied)
            << "a call without an interface field must not slip past the interface list";
    }
}

// Counts, in a child running as nobody, what it receives while root keeps
// calling VerifyKey with a key and creating keys. The child subscribes and
// creates keys of its own, whose KeyCreated it hears: the control that it
// listens at all (root's KeyCreated does not reach it, signals_test.cpp).
// Eavesdropping is closed by dbus-daemon itself (1.14, Debian 12's, refuses
// BecomeMonitor and eavesdrop='true' match rules from users other than root
// on the system bus even under a policy that allows eavesdropping), so this
// guards the deployment as a whole: the policy opens no other way, and an
// ordinary match rule on calls to the daemon delivers nothing.
struct Overheard {
    int method_calls = 0;
    int key_created = 0;
};

int count_message(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* seen = static_cast<Overheard*>(userdata);
    uint8_t type = 0;
    sd_bus_message_get_type(m, &type);
    if (type == SD_BUS_MESSAGE_METHOD_CALL) {
        ++seen->method_calls;
    } else if (type == SD_BUS_MESSAGE_SIGNAL &&
               sd_bus_message_is_signal(m, kInterface, "KeyCreated") > 0) {
        ++seen->key_created;
    }
    return 0;
}

TEST_F(BusPolicyForOthers, NobodyCannotOverhearKeysSentToTheDaemon) {
    const std::string address = bus().address();
    const auto key = root().create_key("overheard?", "", {"read"}, {});

    std::atomic<bool> stop{false};
    std::string traffic_error;
    std::thread traffic;
    struct StopTraffic {
        std::atomic<bool>& stop;
        std::thread& thread;
        ~StopTraffic() {
            stop = true;
            if (thread.joinable()) {
                thread.join();
            }
        }
    } stop_traffic{stop, traffic};
    traffic = std::thread([&] {
        try {
            auto client = client::Client::connect_address(address);
            for (int i = 0; !stop; ++i) {
                client.verify_key(key.key, "read");
                if (i % 10 == 0) {
                    client.create_key("traffic", "", {}, {});
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        } catch (const std::exception& e) {
            traffic_error = e.what();
        }
    });
    const auto outcome = run_as_nobody([&] {
        json result;
        {
            RawBus monitor(address);
            result["become_monitor"] = monitor.become_monitor();
        }
        RawBus bus(address);
        Overheard seen;
        sd_bus_slot* slot = nullptr;
        if (sd_bus_add_filter(bus.get(), &slot, count_message, &seen) < 0) {
            throw std::runtime_error("sd_bus_add_filter failed");
        }
        // Sent to the bus as they are (sd-bus does not parse eavesdrop=).
        result["match_eavesdrop"] = bus.call(
            kDriver, kDriverPath, kDriver, "AddMatch",
            {std::string("type='method_call',destination='") + kBusName + "',eavesdrop='true'"});
        result["match_calls"] =
            bus.call(kDriver, kDriverPath, kDriver, "AddMatch",
                     {std::string("type='method_call',destination='") + kBusName + "'"});
        result["match_signals"] =
            bus.call(kDriver, kDriverPath, kDriver, "AddMatch",
                     {std::string("type='signal',sender='") + kBusName + "'"});
        result["subscribe"] = bus.call(kBusName, kObjectPath, kInterface, "Subscribe");
        auto own = client::Client::connect_address(address);
        own.create_key("nobody's", "", {}, {});
        own.create_key("nobody's", "", {}, {});
        // Listen until the two KeyCreated signals came by (root's VerifyKey
        // calls went on in between), or give up after a while.
        const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(20));
        while (seen.key_created < 2 && std::chrono::steady_clock::now() < deadline) {
            const int r = sd_bus_process(bus.get(), nullptr);
            if (r < 0) {
                throw std::runtime_error(std::string("sd_bus_process: ") + std::strerror(-r));
            }
            if (r == 0) {
                sd_bus_wait(bus.get(), 100'000);
            }
        }
        sd_bus_slot_unref(slot);
        result["method_calls"] = seen.method_calls;
        result["key_created"] = seen.key_created;
        return result;
    });
    stop = true;
    traffic.join();

    ASSERT_TRUE(outcome.ok) << outcome.error;
    ASSERT_EQ(traffic_error, "") << "root's calls failed meanwhile";
    const auto& r = outcome.value;
    EXPECT_EQ(r["become_monitor"], kAccessDenied) << r.dump();
    EXPECT_EQ(r["match_eavesdrop"], kAccessDenied) << r.dump();
    EXPECT_EQ(r["match_calls"], "") << "an ordinary match rule is accepted: " << r.dump();
    EXPECT_EQ(r["match_signals"], "") << r.dump();
    EXPECT_EQ(r["subscribe"], "") << r.dump();
    EXPECT_GE(r["key_created"].get<int>(), 2) << "the listener heard nothing at all: " << r.dump();
    EXPECT_EQ(r["method_calls"], 0) << "nobody overheard calls to the daemon: " << r.dump();
}

// The control for ownership_test.cpp's NobodyCannotOwnTheDaemonsName: the
// same policy with its daemon-user section naming nobody instead of apikeyd
// lets nobody own the name. So the refusal comes from that section naming
// another user, and the section does grant what it says.
TEST(BusPolicyDaemonUser, TheDaemonUsersSectionIsWhatGrantsTheName) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "runs as root, to drop to nobody";
    }
    const std::string policy = read_file(project_policy_file());
    const std::string section = "<policy user=\"apikeyd\">";
    const auto at = policy.find(section);
    ASSERT_NE(at, std::string::npos) << "the policy has no section for the apikeyd user";
    ASSERT_EQ(policy.find(section, at + 1), std::string::npos) << "two apikeyd sections";

    TempDir dir("apikeyd-policy");
    std::string as_nobody = policy;
    as_nobody.replace(at, section.size(), "<policy user=\"nobody\">");
    write_file(dir / "org.apikeyd1.conf", as_nobody);

    for (const bool daemon_user_is_nobody : {false, true}) {
        SCOPED_TRACE(daemon_user_is_nobody ? "policy for nobody" : "policy as shipped");
        PrivateBus bus({daemon_user_is_nobody ? dir / "org.apikeyd1.conf" : project_policy_file()});
        const std::string address = bus.address();
        const auto outcome = run_as_nobody([&] {
            RawBus connection(address);
            return json{{"request", connection.request_name(kBusName, kDoNotQueue)}};
        });
        ASSERT_TRUE(outcome.ok) << outcome.error;
        EXPECT_EQ(outcome.value["request"], daemon_user_is_nobody ? "" : kAccessDenied)
            << outcome.value.dump() << "\ndbus-daemon: " << bus.log();
    }
}

}  // namespace
}  // namespace apikeyd::test
