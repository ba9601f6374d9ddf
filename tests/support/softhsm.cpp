#include "tests/support/softhsm.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "tests/support/process.hpp"

namespace apikeyd::test {
namespace {

// RSA key generation is SoftHSM finding two primes: under a second alone,
// much more on two loaded cores.
constexpr std::chrono::seconds kToolTimeout{120};

std::filesystem::path first_existing(std::initializer_list<const char*> candidates) {
    for (const char* candidate : candidates) {
        if (access(candidate, R_OK) == 0) {
            return candidate;
        }
    }
    return {};
}

}  // namespace

SoftHsm::SoftHsm() {
    if (module_path().empty()) {
        throw std::runtime_error("SoftHSM2's PKCS#11 module is not installed (package softhsm2)");
    }
    config_ = dir_ / "softhsm2.conf";
    tokens_ = dir_ / "tokens";
    std::filesystem::create_directory(tokens_);
    // Removable slots off: a token's slot id then stays put between loads.
    // Errors only in the log: SoftHSM logs to syslog.
    write_file(config_, "directories.tokendir = " + tokens_.string() +
                            "\n"
                            "objectstore.backend = file\n"
                            "log.level = ERROR\n"
                            "slots.removable = false\n");
    if (const char* previous = std::getenv("SOFTHSM2_CONF")) {
        previous_conf_ = previous;
    }
    setenv("SOFTHSM2_CONF", config_.c_str(), 1);
}

SoftHsm::~SoftHsm() {
    if (previous_conf_) {
        setenv("SOFTHSM2_CONF", previous_conf_->c_str(), 1);
    } else {
        unsetenv("SOFTHSM2_CONF");
    }
}

std::string SoftHsm::environment_entry() const {
    return "SOFTHSM2_CONF=" + config_.string();
}

std::filesystem::path SoftHsm::module_path() {
    return first_existing({"/usr/lib/softhsm/libsofthsm2.so",
                           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"});
}

std::filesystem::path SoftHsm::spy_module_path() {
    return first_existing({"/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
                           "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so",
                           "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
                           "/usr/lib/aarch64-linux-gnu/pkcs11/pkcs11-spy.so"});
}

std::string SoftHsm::run(const std::vector<std::string>& argv) const {
    auto env = base_environment();
    env.push_back(environment_entry());
    const ProcessResult result = run_process(argv, "", env, kToolTimeout);
    if (result.exit_code != 0 || result.timed_out) {
        throw std::runtime_error(argv.front() + " failed: " + result.describe());
    }
    return result.out;
}

void SoftHsm::init_token(const std::string& label, const std::string& pin,
                         const std::string& so_pin) {
    run({"softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin",
         so_pin});
}

void SoftHsm::generate_key(const std::string& token_label, const std::string& pin, KeyType type,
                           const std::string& id_hex, const std::string& key_label) {
    run({"pkcs11-tool", "--module", module_path().string(), "--token-label", token_label, "--login",
         "--pin", pin, "--keypairgen", "--key-type",
         type == KeyType::Rsa2048 ? "rsa:2048" : "EC:prime256v1", "--id", id_hex, "--label",
         key_label});
}

void SoftHsm::delete_token(const std::string& label) {
    run({"softhsm2-util", "--delete-token", "--token", label});
}

}  // namespace apikeyd::test
