#include "common/rfc3339.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace exitrec {

namespace {

// `n` decimal digits at `pos` into `out`.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size())
    return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

struct Parsed {
  std::int64_t seconds = 0;
  std::int64_t micros = 0;  // the fraction's first six digits
};

std::optional<Parsed> parse(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(y),
                                         std::chrono::month(static_cast<unsigned>(mo)),
                                         std::chrono::day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || se > 60)  // ok(): month 1-12, a day of that month
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 6)
        micros = micros * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start)
      return std::nullopt;
    for (std::size_t n = pos - start; n < 6; ++n)
      micros *= 10;
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return Parsed{static_cast<std::int64_t>(timegm(&tm)) - offset, micros};
}

// WallTime counts nanoseconds in 64 bits (about +-292 years around 1970): a
// tenant's year 9999 must not reach the conversion.
constexpr std::int64_t kYear2200 = 7258118400;

}  // namespace

std::optional<std::int64_t> parseRfc3339Seconds(std::string_view s) {
  auto p = parse(s);
  if (!p)
    return std::nullopt;
  return p->seconds;
}

std::optional<Clock::WallTime> parseRfc3339Micros(std::string_view s) {
  auto p = parse(s);
  if (!p || p->seconds >= kYear2200 || p->seconds <= -kYear2200)
    return std::nullopt;
  return Clock::WallTime(std::chrono::duration_cast<Clock::WallTime::duration>(
      std::chrono::seconds(p->seconds) + std::chrono::microseconds(p->micros)));
}

std::string formatRfc3339Micros(Clock::WallTime t) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(((us % 1000000) + 1000000) % 1000000));
  return buf;
}

Result<Clock::WallTime> parseRfc3339(std::string_view text) {
  auto secs = parseRfc3339Seconds(text);
  if (!secs) {
    return Error(ErrorCode::kInvalidInput, "\"" + std::string(text.substr(0, 64)) +
                                               "\" is not an RFC 3339 time (e.g. "
                                               "2026-01-31T00:00:00Z)");
  }
  if (*secs >= kYear2200 || *secs <= -kYear2200) {
    return Error(ErrorCode::kInvalidInput,
                 "\"" + std::string(text.substr(0, 64)) + "\" is out of range (years 1740-2199)");
  }
  return Clock::WallTime(std::chrono::seconds(*secs));
}

}  // namespace exitrec
