#include "daemon/clock.hpp"

#include <time.h>

namespace apikeyd {

uint64_t SystemClock::now_usec() const {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * kUsecPerSec +
           static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace apikeyd
