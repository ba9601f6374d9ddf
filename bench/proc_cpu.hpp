#pragma once
// CPU time a process has used so far (user + system), from /proc/PID/stat:
// the load tool reads it around each round to say what one call costs the
// daemon and the bus.

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace apikeyd::bench {

inline double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) {
        throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
    }
    // The command name (field 2) may hold spaces; the fields after its ')'
    // start with field 3, and utime and stime are fields 14 and 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string skipped;
    for (int field = 3; field < 14; ++field) {
        fields >> skipped;
    }
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    fields >> utime >> stime;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace apikeyd::bench
