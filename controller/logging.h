#pragma once
// spdlog setup for the long-running commands: `--log-format text|json` and
// `--log-level trace|debug|info|warn|error`. JSON lines carry ts (UTC),
// level and msg, with the message JSON-escaped. Logs go to stderr.

#include <string_view>

#include "common/result.h"

namespace exitrec {

Status setupLogging(std::string_view format, std::string_view level);

}  // namespace exitrec
