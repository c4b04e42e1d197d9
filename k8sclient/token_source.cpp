#include "k8sclient/token_source.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

namespace exitrec {

Result<std::string> readTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error(ErrorCode::kUnauthorized, "cannot read token file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  const auto b = t.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return Error(ErrorCode::kUnauthorized, "token file " + path + " is empty");
  const auto e = t.find_last_not_of(" \t\r\n");
  return t.substr(b, e - b + 1);
}

TokenSource TokenSource::fixed(std::string token) {
  TokenSource s;
  s.token_ = std::move(token);
  return s;
}

TokenSource TokenSource::file(std::string path, Clock& clock, std::chrono::seconds refresh) {
  TokenSource s;
  s.path_ = std::move(path);
  s.clock_ = &clock;
  s.refresh_ = refresh;
  return s;
}

TokenSource::TokenSource(const TokenSource& o) {
  *this = o;
}

TokenSource& TokenSource::operator=(const TokenSource& o) {
  if (this == &o)
    return *this;
  std::scoped_lock g(mu_, o.mu_);
  token_ = o.token_;
  path_ = o.path_;
  clock_ = o.clock_;
  refresh_ = o.refresh_;
  readAt_ = o.readAt_;
  forceReread_ = o.forceReread_;
  return *this;
}

Result<std::string> TokenSource::token() {
  std::lock_guard<std::mutex> g(mu_);
  if (path_.empty())
    return token_;
  const auto now = clock_->now();
  if (readAt_ && !forceReread_ && now - *readAt_ < refresh_)
    return token_;
  forceReread_ = false;
  auto fresh = readTokenFile(path_);
  if (!fresh) {
    if (readAt_) {
      spdlog::warn("k8sclient: re-reading token file {} failed ({}); keeping the previous token",
                   path_, fresh.error().message);
      readAt_ = now;
      return token_;
    }
    return fresh.error();
  }
  if (readAt_ && *fresh != token_)
    spdlog::info("k8sclient: token file {} changed; using the new token", path_);
  token_ = std::move(fresh).value();
  readAt_ = now;
  return token_;
}

bool TokenSource::invalidate() {
  std::lock_guard<std::mutex> g(mu_);
  forceReread_ = true;
  return !path_.empty();
}

}  // namespace exitrec
