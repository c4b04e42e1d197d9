#include "common/clock.h"

#include <ctime>

namespace exitrec {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

std::string formatRfc3339(Clock::WallTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace exitrec
