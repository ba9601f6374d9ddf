// apikeyd: creates, keeps and checks API keys; serves org.apikeyd1 on the
// system bus. One sd-event loop: the bus, SIGTERM/SIGINT, the usage flush
// timer, the group commit of changes and the watchdog.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bus_names.hpp"
#include "daemon/commit_scheduler.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/key_service.hpp"
#include "daemon/keyslot_admin.hpp"
#include "daemon/keyslot_manager.hpp"
#include "daemon/keyslots/pkcs11_keyslot.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/keyslots/tpm2_keyslot.hpp"
#include "daemon/log.hpp"
#include "daemon/pin_file.hpp"
#include "daemon/process_hardening.hpp"
#include "daemon/store.hpp"
#include "dbus/manager_object.hpp"
#include "dbus/sdbus.hpp"
#include "version.hpp"

namespace apikeyd {
namespace {

constexpr uint64_t kUsageFlushIntervalUsec = 1'000'000;
constexpr const char* kDefaultStateDirectory = "/var/lib/apikeyd";

struct Flags {
    std::string state_directory;
    std::string tpm2_device;
    std::string pkcs11_uri;
    std::string pkcs11_pin_file;
    std::vector<std::string> pkcs11_module_directories;
    bool insecure_software_keyslot = false;
};

std::string errno_text(int error) {
    return std::strerror(error < 0 ? -error : error);
}

std::filesystem::path resolve_state_directory(const Flags& flags) {
    if (!flags.state_directory.empty()) {
        return flags.state_directory;
    }
    // systemd may pass several directories separated by ':'; ours is the first.
    if (const char* env = getenv("STATE_DIRECTORY"); env && *env) {
        const std::string dirs(env);
        return dirs.substr(0, dirs.find(':'));
    }
    return kDefaultStateDirectory;
}

// One daemon per state directory: a second one would race the first on the
// database and the keyslots.
Result<int> lock_state_directory(const std::filesystem::path& dir) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(ErrorCode::Internal, "Cannot create state directory " + dir.string() +
                                                   ": " + errno_text(errno));
    }
    const auto lock_path = dir / "apikeyd.lock";
    const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return make_error(ErrorCode::Internal,
                          "Cannot open " + lock_path.string() + ": " + errno_text(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return make_error(ErrorCode::Internal, "Another apikeyd is already using " + dir.string());
    }
    return fd;
}

// The PKCS#11 PIN this start was given: the file named by
// --pkcs11-pin-file, else the systemd credential, else none.
Result<SecretBuffer> startup_pkcs11_pin(const Flags& flags) {
    if (!flags.pkcs11_pin_file.empty()) {
        return read_pin_file(flags.pkcs11_pin_file, Pkcs11Keyslot::kMaxPinSize);
    }
    if (const auto credential = pkcs11_pin_credential()) {
        return read_pin_file(*credential, Pkcs11Keyslot::kMaxPinSize);
    }
    return SecretBuffer();
}

Result<void> prepare_keyslots(KeyslotManager& keyslots, const Flags& flags,
                              const std::filesystem::path& dir) {
    auto initialized = keyslots.initialized();
    if (!initialized) {
        return initialized.error();
    }
    auto pin = startup_pkcs11_pin(flags);
    if (!pin) {
        return pin.error();
    }
    if (*initialized && !flags.pkcs11_uri.empty()) {
        log::notice(
            "--pkcs11-uri only applies on a first start; this state directory has "
            "keyslots already (add one with AddKeyslot)");
    }
    if (!*initialized) {
        // An explicit choice wins; otherwise the TPM, where there is one.
        if (!flags.pkcs11_uri.empty()) {
            if (pin->empty()) {
                return make_error(ErrorCode::InvalidArgument,
                                  "--pkcs11-uri needs the token's PIN: give --pkcs11-pin-file or "
                                  "the systemd credential pkcs11-pin");
            }
            Pkcs11Keyslot pkcs11(Pkcs11EnrollOptions{flags.pkcs11_uri, std::move(*pin)},
                                 keyslots.pkcs11_modules());
            if (auto ok = keyslots.initialize(pkcs11); !ok) {
                return make_error(
                    ok.error().code,
                    "Cannot seal a new master key with the pkcs11 token: " + ok.error().message);
            }
            log::notice("Created a new master key sealed by the pkcs11 token " +
                        keyslots.keyslots().front().params.value("uri", std::string()));
        } else if (flags.insecure_software_keyslot) {
            SoftwareKeyslot software(dir);
            if (auto ok = keyslots.initialize(software); !ok) {
                return ok;
            }
            log::notice("Created a new master key in a software keyslot");
        } else if (const auto tcti =
                       flags.tpm2_device.empty() ? Tpm2Keyslot::default_tcti() : flags.tpm2_device;
                   !tcti.empty()) {
            Tpm2Keyslot tpm2(Tpm2EnrollOptions{tcti, {}, SecretBuffer()});
            if (auto ok = keyslots.initialize(tpm2); !ok) {
                return make_error(ok.error().code, "Cannot seal a new master key with the TPM at " +
                                                       tcti + ": " + ok.error().message);
            }
            log::notice("Created a new master key sealed by the TPM at " + tcti);
        } else {
            return make_error(
                ErrorCode::InvalidArgument,
                "This state directory has no keyslot yet and there is no TPM at /dev/tpmrm0. "
                "Choose how to seal the master key: --tpm2-device=TCTI (e.g. "
                "swtpm:host=127.0.0.1,port=2321), --pkcs11-uri=URI with "
                "--pkcs11-pin-file=FILE, or, for development only, "
                "--insecure-software-keyslot.");
        }
    } else {
        keyslots.unlock(UnlockCredentials{std::move(*pin), SecretBuffer()});
    }
    if (keyslots.has_keyslot_of_type(SoftwareKeyslot::kType)) {
        log::warning("INSECURE: a software keyslot is in use; the master key lies unprotected in " +
                     dir.string() + " (development only)");
    }
    if (keyslots.locked()) {
        log::warning("Starting locked: " + keyslots.lock_reason());
    }
    return {};
}

int on_stop_signal(sd_event_source* source, const signalfd_siginfo*, void*) {
    log::notice("Stopping");
    return sd_event_exit(sd_event_source_get_event(source), 0);
}

// What the one-second timer flushes: batched usage and the summaries of
// refusal lines whose throttle window has ended.
struct Flushed {
    KeyService& keys;
    KeyslotAdmin& keyslots;
};

// Called by sd-event: no exception may unwind through its C frames. A flush
// that fails in any way is logged and tried again on the next tick.
int on_flush_timer(sd_event_source* source, uint64_t, void* userdata) {
    auto* flushed = static_cast<Flushed*>(userdata);
    try {
        flushed->keyslots.write_log_summaries();
        if (auto ok = flushed->keys.flush_usage(); !ok) {
            log::error("Cannot record key usage (will retry): " + ok.error().message);
        }
    } catch (const std::exception& e) {
        log::error(std::string("Cannot record key usage (will retry): ") + e.what());
    } catch (...) {
        log::error("Cannot record key usage (will retry): unknown exception");
    }
    return sd_event_source_set_time_relative(source, kUsageFlushIntervalUsec);
}

// dbus-daemon closes our connection when it stops, or when a message of
// ours breaks its limits (a reply over its max_message_size): no caller can
// reach apikeyd any more. A failure exit lets Restart=on-failure bring it
// back; a clean one would leave the service down.
int on_bus_lost(sd_bus_message*, void* event, sd_bus_error*) {
    log::error(
        "Lost the connection to the system bus (it stopped, or closed the connection over a "
        "message of ours it would not carry); exiting with a failure so that the service "
        "manager starts apikeyd again");
    return sd_event_exit(static_cast<sd_event*>(event), EXIT_FAILURE);
}

// Each signal gets its own source, so a failure to add one can never leave
// two owners of the same source.
Result<EventSourcePtr> watch_stop_signal(sd_event* event, int signal, const char* name) {
    sd_event_source* raw = nullptr;
    const int r = sd_event_add_signal(event, &raw, signal, on_stop_signal, nullptr);
    if (r < 0) {
        return make_error(ErrorCode::Internal,
                          std::string("Cannot watch ") + name + ": " + errno_text(r));
    }
    return EventSourcePtr(raw);
}

int serve(const Flags& flags) {
    const auto dir = resolve_state_directory(flags);
    auto lock_fd = lock_state_directory(dir);
    if (!lock_fd) {
        log::error(lock_fd.error().message);
        return EXIT_FAILURE;
    }
    auto store = Store::open(dir / Store::kFileName);
    if (!store) {
        log::error(store.error().message);
        return EXIT_FAILURE;
    }
    SystemClock clock;
    KeyslotManager keyslots(**store, dir, clock,
                            flags.pkcs11_module_directories.empty()
                                ? Pkcs11ModuleAllowlist()
                                : Pkcs11ModuleAllowlist(flags.pkcs11_module_directories));
    if (auto ok = prepare_keyslots(keyslots, flags, dir); !ok) {
        log::error(ok.error().message);
        return EXIT_FAILURE;
    }
    CommitScheduler commits(**store);
    KeyService service(**store, keyslots, clock, commits);
    KeyslotAdmin keyslot_admin(keyslots);
    // systemctl status showed "Locked" since the start; it is not any more.
    keyslot_admin.on_unlocked([] { sd_notify(0, "STATUS=Serving"); });

    sd_event* raw_event = nullptr;
    if (int r = sd_event_default(&raw_event); r < 0) {
        log::error("Cannot create the event loop: " + errno_text(r));
        return EXIT_FAILURE;
    }
    EventPtr event(raw_event);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const auto sigterm = watch_stop_signal(event.get(), SIGTERM, "SIGTERM");
    if (!sigterm) {
        log::error(sigterm.error().message);
        return EXIT_FAILURE;
    }
    const auto sigint = watch_stop_signal(event.get(), SIGINT, "SIGINT");
    if (!sigint) {
        log::error(sigint.error().message);
        return EXIT_FAILURE;
    }
    Flushed flushed{service, keyslot_admin};
    sd_event_source* raw_timer = nullptr;
    int r = sd_event_add_time_relative(event.get(), &raw_timer, CLOCK_MONOTONIC,
                                       kUsageFlushIntervalUsec, 0, on_flush_timer, &flushed);
    EventSourcePtr flush_timer(raw_timer);
    if (r < 0 || sd_event_source_set_enabled(flush_timer.get(), SD_EVENT_ON) < 0) {
        log::error("Cannot start the usage flush timer");
        return EXIT_FAILURE;
    }
    sd_event_set_watchdog(event.get(), true);
    if (auto ok = commits.attach(event.get()); !ok) {
        log::error(ok.error().message);
        return EXIT_FAILURE;
    }

    sd_bus* raw_bus = nullptr;
    if (r = sd_bus_open_system(&raw_bus); r < 0) {
        log::error("Cannot connect to the system bus: " + errno_text(r));
        return EXIT_FAILURE;
    }
    sdbus::BusPtr bus(raw_bus);
    if (r = sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL); r < 0) {
        log::error("Cannot attach the bus to the event loop: " + errno_text(r));
        return EXIT_FAILURE;
    }
    // sd-bus's own Disconnected message, synthesized locally: no AddMatch.
    sd_bus_slot* raw_slot = nullptr;
    r = sd_bus_match_signal(bus.get(), &raw_slot, "org.freedesktop.DBus.Local", nullptr,
                            "org.freedesktop.DBus.Local", "Disconnected", on_bus_lost, event.get());
    const sdbus::SlotPtr bus_lost(raw_slot);
    if (r < 0) {
        log::error("Cannot watch the bus connection: " + errno_text(r));
        return EXIT_FAILURE;
    }
    bus::Subscribers subscribers(bus.get());
    auto manager =
        bus::ManagerObject::create(bus.get(), {service, keyslot_admin, commits, subscribers});
    if (!manager) {
        log::error(manager.error().message);
        return EXIT_FAILURE;
    }
    if (r = sd_bus_request_name(bus.get(), bus_names::kBusName, 0); r < 0) {
        log::error(std::string("Cannot own the bus name ") + bus_names::kBusName + ": " +
                   errno_text(r) +
                   " (is another apikeyd running, or does the bus policy not allow this user?)");
        return EXIT_FAILURE;
    }

    log::notice(std::string("apikeyd ") + kVersion + " serving " + bus_names::kBusName +
                "; state directory " + dir.string() + (keyslots.locked() ? "; LOCKED" : ""));
    sd_notify(0, keyslots.locked() ? "READY=1\nSTATUS=Locked: no keyslot could unlock"
                                   : "READY=1\nSTATUS=Serving");
    r = sd_event_loop(event.get());
    sd_notify(0, "STOPPING=1");
    // Changes still waiting for their COMMIT are committed and answered
    // before exit (the bus flushes the replies as it closes); a failure is
    // logged, and answered, by the batch's listeners.
    (void)commits.commit_now();
    if (auto ok = service.flush_usage(); !ok) {
        log::error("Cannot record key usage at shutdown: " + ok.error().message);
    }
    if (r < 0) {
        log::error("The event loop failed: " + errno_text(r));
        return EXIT_FAILURE;
    }
    // The loop's exit code: 0 from a stop signal, EXIT_FAILURE without a bus.
    return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace
}  // namespace apikeyd

int main(int argc, char** argv) {
    // tpm2-tss logs to stderr by default; keep its chatter out unless asked.
    setenv("TSS2_LOG", "all+none", 0);
    if (auto ok = apikeyd::harden_process(); !ok) {
        apikeyd::log::error(ok.error().message);
        return EXIT_FAILURE;
    }
    apikeyd::Flags flags;
    CLI::App app{"apikeyd: creates, keeps and checks API keys sealed by hardware, over D-Bus"};
    app.add_option("--state-directory", flags.state_directory,
                   "Where the database and keyslots live (default: $STATE_DIRECTORY, else "
                   "/var/lib/apikeyd)");
    app.add_option("--tpm2-device", flags.tpm2_device,
                   "On a first start, seal the master key with the TPM at this TCTI (default: "
                   "device:/dev/tpmrm0 where it exists)");
    auto* pkcs11_uri = app.add_option(
        "--pkcs11-uri", flags.pkcs11_uri,
        "On a first start, seal the master key with the key this PKCS#11 URI (RFC 7512) names "
        "on a smartcard or token");
    app.add_option("--pkcs11-pin-file", flags.pkcs11_pin_file,
                   "The token's user PIN, for a first start with --pkcs11-uri and for unlocking "
                   "pkcs11 keyslots at every start (default: the systemd credential "
                   "pkcs11-pin); tried once per start, never retried");
    app.add_option("--pkcs11-module-directory", flags.pkcs11_module_directories,
                   "Load PKCS#11 modules only from this directory (repeatable; default: where "
                   "Debian installs them)");
    auto* software =
        app.add_flag("--insecure-software-keyslot", flags.insecure_software_keyslot,
                     "On a first start, keep the master key unprotected in the state directory "
                     "(development only)");
    auto* tpm2 = app.get_option("--tpm2-device");
    pkcs11_uri->excludes(software)->excludes(tpm2);
    software->excludes(tpm2);
    app.set_version_flag("--version", apikeyd::kVersion);
    CLI11_PARSE(app, argc, argv);
    return apikeyd::serve(flags);
}
