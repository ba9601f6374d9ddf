#pragma once
// Log lines on stderr with sd-daemon priority prefixes ("<3>..."), which
// journald turns into priorities. Never pass key text, secrets or PINs here:
// name keys by id.

#include <string_view>

namespace apikeyd::log {

enum class Priority { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

void write(Priority priority, std::string_view message);

inline void error(std::string_view message) {
    write(Priority::Error, message);
}
inline void warning(std::string_view message) {
    write(Priority::Warning, message);
}
inline void notice(std::string_view message) {
    write(Priority::Notice, message);
}
inline void info(std::string_view message) {
    write(Priority::Info, message);
}

}  // namespace apikeyd::log
