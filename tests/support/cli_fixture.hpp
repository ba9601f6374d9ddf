#pragma once
// DaemonTest with apikeyctl at hand: runs it against the fixture's bus and
// reads its JSON.

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli.hpp"
#include "tests/support/fixture.hpp"

namespace apikeyd::test {

class CliTest : public DaemonTest {
  protected:
    ProcessResult cli(const std::vector<std::string>& args, const std::string& stdin_text = "",
                      const std::vector<std::string>& extra_env = {}) {
        return run_cli(bus().address(), args, stdin_text, extra_env);
    }
    // Runs a command that prints JSON; fails the test unless it exits with
    // `expected_exit` and prints valid JSON.
    nlohmann::json cli_json(const std::vector<std::string>& args,
                            const std::string& stdin_text = "", int expected_exit = 0) {
        const auto r = cli(args, stdin_text);
        EXPECT_EQ(r.exit_code, expected_exit) << r.describe();
        const auto parsed = nlohmann::json::parse(r.out, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << r.describe();
        return parsed.is_discarded() ? nlohmann::json() : parsed;
    }
};

}  // namespace apikeyd::test
