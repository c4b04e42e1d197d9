#pragma once
// TokenSource: the bearer token for API requests. A fixed token never
// changes; a file token (projected service-account token, kubeconfig
// tokenFile) is re-read when the cached copy is older than the refresh
// period (default 1 min, like client-go) and at once after invalidate()
// (called on every 401).
//
// Tokens are secrets: this class never logs them and its errors name only
// the file. Thread-safe.

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace exitrec {

class TokenSource {
 public:
  // No token at all (client certificates or an unauthenticated server).
  TokenSource() = default;
  static TokenSource fixed(std::string token);
  static TokenSource file(std::string path, Clock& clock,
                          std::chrono::seconds refresh = std::chrono::seconds(60));

  TokenSource(const TokenSource& o);
  TokenSource& operator=(const TokenSource& o);

  // The current token ("" when there is none). For a file: re-reads when due.
  // If a re-read fails, the previously read token is kept (and a warning
  // logged); the first read failing is an error naming the path.
  Result<std::string> token();
  // Forces a re-read on the next token() call. Returns true if this source
  // can produce a different token (i.e. it is file-backed).
  bool invalidate();

  bool fileBacked() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  mutable std::mutex mu_;
  std::string token_;
  std::string path_;
  Clock* clock_ = nullptr;
  std::chrono::seconds refresh_{60};
  std::optional<Clock::SteadyTime> readAt_;
  bool forceReread_ = false;
};

// Reads a token file, trimming surrounding whitespace.
Result<std::string> readTokenFile(const std::string& path);

}  // namespace exitrec
