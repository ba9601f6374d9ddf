#include "tests/support/cli.hpp"

#include "tests/support/timing.hpp"

namespace apikeyd::test {

ProcessResult run_cli(const std::string& bus_address, const std::vector<std::string>& args,
                      const std::string& stdin_text, const std::vector<std::string>& extra_env) {
    std::vector<std::string> argv = {APIKEYCTL_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto env = base_environment();
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_address);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return run_process(argv, stdin_text, env, scaled(std::chrono::seconds(30)));
}

}  // namespace apikeyd::test
