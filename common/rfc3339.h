#pragma once
// RFC 3339 date-times (section 5.6), the one parser in the project; the
// formatter is formatRfc3339 in common/clock.h (seconds) and
// formatRfc3339Micros here (Kubernetes MicroTime). Pure, thread-safe.
//
// Accepted: YYYY-MM-DD"T"hh:mm:ss[.fraction]("Z" | ±hh:mm), with "t" and "z"
// also allowed (RFC 3339 5.6, note). The fraction is dropped (Kubernetes and
// KFP timestamps have second precision; KFP compares Unix seconds). Ranges are
// checked (month 1-12, day 1-31, hour 0-23, minute 0-59, second 0-60); nothing
// may follow. This is the layout Go's time.RFC3339 parses, which is what the
// API server and KFP write.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace exitrec {

// Unix seconds, or nullopt for anything that is not an RFC 3339 date-time.
std::optional<std::int64_t> parseRfc3339Seconds(std::string_view text);

// The same as a wall-clock time; kInvalidInput quotes the text and shows the
// expected form.
Result<Clock::WallTime> parseRfc3339(std::string_view text);

// With the fraction kept to the microsecond (metav1.MicroTime, e.g. a Lease's
// renewTime; later digits are dropped). nullopt as parseRfc3339Seconds, and
// for years outside 1740-2199 (WallTime's range).
std::optional<Clock::WallTime> parseRfc3339Micros(std::string_view text);
// metav1.MicroTime's layout, UTC: "2026-11-28T13:12:12.123456Z".
std::string formatRfc3339Micros(Clock::WallTime t);

}  // namespace exitrec
