#pragma once
// Runs code as a second, unprivileged user: a forked child drops to
// nobody (uid/gid 65534, no supplementary groups), runs the function and
// sends its result back to the test process as JSON.
//
// The function runs in another process: gtest assertions inside it are lost.
// Return what the test should check instead; an exception it throws comes back
// as the `error` of the outcome.

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace apikeyd::test {

inline constexpr unsigned kNobodyUid = 65534;
inline constexpr unsigned kNobodyGid = 65534;

struct ChildOutcome {
    bool ok = false;       // the function returned
    nlohmann::json value;  // what it returned
    std::string error;     // else: what went wrong in the child (exception, crash, timeout)
};

ChildOutcome run_as_nobody(const std::function<nlohmann::json()>& fn);

}  // namespace apikeyd::test
