#pragma once
// A software TPM 2.0 (swtpm) for one test: its own state directory under
// /tmp, its own TCP port pair on 127.0.0.1, started at construction and shut
// down in order at destruction. No TSS library here: the harness speaks the
// two raw commands it needs itself, so any test binary can use it.

#include <cstdint>
#include <filesystem>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd::test {

class Swtpm {
  public:
    // Starts swtpm on an even port P (control channel on P + 1, as the swtpm
    // TCTI expects) and returns once both accept connections. Throws
    // std::runtime_error with swtpm's log if it cannot be started.
    Swtpm();
    ~Swtpm();
    Swtpm(const Swtpm&) = delete;
    Swtpm& operator=(const Swtpm&) = delete;

    // "swtpm:host=127.0.0.1,port=P".
    std::string tcti() const;
    uint16_t port() const { return port_; }
    const std::filesystem::path& state_dir() const { return state_dir_; }
    bool running() const { return process_.running(); }

    // Orderly, as a machine powering off: TPM2_Shutdown(CLEAR) first — else the
    // TPM counts a dictionary-attack failure at the next start if a
    // DA-protected object was used — then the control channel's shutdown.
    // Bounded; escalates to SIGTERM and SIGKILL.
    void stop();
    // Starts again on the same port and state (the keyslot's stored TCTI
    // names the port).
    void start();
    void restart() {
        stop();
        start();
    }
    // Power loss: SIGKILL without TPM2_Shutdown.
    void kill9();
    // Stops, deletes the state (seeds, hierarchies, NV, persistent objects),
    // starts: what a TPM2_Clear or another machine's TPM looks like to a
    // sealed blob.
    void wipe_state();

    // swtpm's stderr over all its starts.
    std::string log() const;

  private:
    // Returns false when swtpm exited early (a port taken meanwhile); throws
    // when it neither exits nor becomes reachable in time.
    bool launch();

    TempDir dir_{"apikeyd-swtpm"};
    std::filesystem::path state_dir_;
    std::filesystem::path log_path_;
    uint16_t port_ = 0;
    ChildProcess process_;
};

// An even port P with P and P + 1 free on 127.0.0.1, below the kernel's
// ephemeral range so that no outgoing connection takes it between a stop and
// a start.
uint16_t find_free_port_pair();

}  // namespace apikeyd::test
