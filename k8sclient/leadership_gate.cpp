#include "k8sclient/leadership_gate.h"

namespace exitrec {

LeaseFence::LeaseFence(const Clock& clock, std::string lease)
    : clock_(clock), lease_(std::move(lease)) {}

void LeaseFence::grant(Clock::SteadyTime validUntil) {
  std::lock_guard<std::mutex> g(mu_);
  if (revoked_)
    return;
  granted_ = true;
  validUntil_ = validUntil;
}

void LeaseFence::revoke() {
  std::lock_guard<std::mutex> g(mu_);
  revoked_ = true;
}

LeaseFence::State LeaseFence::state() const {
  std::lock_guard<std::mutex> g(mu_);
  if (revoked_)
    return State::kRevoked;
  if (!granted_)
    return State::kNotLeading;
  return clock_.now() < validUntil_ ? State::kValid : State::kExpired;
}

std::optional<Clock::SteadyTime> LeaseFence::validUntil() const {
  std::lock_guard<std::mutex> g(mu_);
  if (revoked_ || !granted_)
    return std::nullopt;
  return validUntil_;
}

Status LeaseFence::mayWrite() const {
  switch (state()) {
    case State::kValid:
      return Status();
    case State::kNotLeading:
      return Error(ErrorCode::kCancelled, "not the leader of lease " + lease_);
    case State::kExpired:
      return Error(ErrorCode::kCancelled,
                   "lease " + lease_ + " not renewed within the renew deadline");
    case State::kRevoked:
      break;
  }
  return Error(ErrorCode::kCancelled, "leadership of lease " + lease_ + " lost or given up");
}

Status FencedTransport::admit(const HttpRequest& request) const {
  if (request.method == "GET" || request.method == "HEAD")
    return Status();
  Status s = gate_.mayWrite();
  if (s)
    return s;
  Error e = s.error();
  const std::string url = request.url.substr(0, request.url.find('?'));
  e.message = request.method + " " + url + " refused: " + e.message;
  return e;
}

Result<HttpResponse> FencedTransport::send(const HttpRequest& request) {
  if (Status s = admit(request); !s)
    return s.error();
  return inner_->send(request);
}

Result<HttpResponse> FencedTransport::sendChunked(const HttpRequest& request,
                                                  const ChunkCallback& onChunk) {
  if (Status s = admit(request); !s)
    return s.error();
  return inner_->sendChunked(request, onChunk);
}

Result<StreamResult> FencedTransport::stream(const HttpRequest& request, const LineCallback& onLine,
                                             CancelSource& cancel) {
  if (Status s = admit(request); !s)
    return s.error();
  return inner_->stream(request, onLine, cancel);
}

}  // namespace exitrec
