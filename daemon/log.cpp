#include "daemon/log.hpp"

#include <cstdio>
#include <string>

namespace apikeyd::log {

void write(Priority priority, std::string_view message) {
    // One write per line so concurrent writers cannot interleave within it.
    std::string line = "<" + std::to_string(static_cast<int>(priority)) + ">";
    line.append(message);
    line += '\n';
    fwrite(line.data(), 1, line.size(), stderr);
    fflush(stderr);
}

}  // namespace apikeyd::log
