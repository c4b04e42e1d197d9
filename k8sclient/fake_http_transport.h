#pragma once
// FakeHttpTransport: a scripted HttpTransport for unit tests. Thread-safe.
//
// send(): answers from the FIFO of pushed responses, else from the handler,
// else fails the test visibly with a kPermanent error naming the request.
// stream(): takes the next pushed FakeStream; if none is queued it blocks
// (real time, no clock) until one is pushed or the request is cancelled, so a
// reflector under test parks instead of spinning. Every request is recorded.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "k8sclient/http_transport.h"

namespace exitrec {

struct FakeStream {
  std::optional<Error> error;  // transport failure instead of a response
  int status = 200;
  std::string body;  // for non-2xx
  HttpHeaders headers;
  std::vector<std::string> lines;
  StreamEnd end = StreamEnd::kEof;  // how the stream ends after the lines
  bool holdOpen = false;            // after the lines, block until cancelled
};

inline HttpResponse fakeResponse(int status, std::string body, HttpHeaders headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

class FakeHttpTransport final : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&)>;

  void setHandler(Handler h) {
    std::lock_guard<std::mutex> g(mu_);
    handler_ = std::move(h);
  }
  void pushResponse(Result<HttpResponse> r) {
    std::lock_guard<std::mutex> g(mu_);
    responses_.push_back(std::move(r));
  }
  void pushStream(FakeStream s) {
    {
      std::lock_guard<std::mutex> g(mu_);
      streams_.push_back(std::move(s));
    }
    cv_.notify_all();
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return requests_;
  }
  std::vector<HttpRequest> streamRequests() const {
    std::lock_guard<std::mutex> g(mu_);
    return streamRequests_;
  }
  // Number of stream() calls currently blocked waiting for a script.
  int waitingStreams() const {
    std::lock_guard<std::mutex> g(mu_);
    return waitingStreams_;
  }
  std::size_t pendingResponses() const {
    std::lock_guard<std::mutex> g(mu_);
    return responses_.size();
  }

  Result<HttpResponse> send(const HttpRequest& request) override {
    Handler h;
    {
      std::lock_guard<std::mutex> g(mu_);
      requests_.push_back(request);
      if (!responses_.empty()) {
        auto r = std::move(responses_.front());
        responses_.pop_front();
        return r;
      }
      h = handler_;
    }
    if (h)
      return h(request);
    return Error(ErrorCode::kPermanent, "FakeHttpTransport: no scripted response for " +
                                            request.method + " " + request.url);
  }

  Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                              CancelSource& cancel) override {
    const auto cbId = cancel.onCancel([this] {
      std::lock_guard<std::mutex> g(mu_);
      cv_.notify_all();
    });
    struct Unregister {
      CancelSource& c;
      std::uint64_t id;
      ~Unregister() { c.removeCallback(id); }
    } unregister{cancel, cbId};

    FakeStream s;
    {
      std::unique_lock<std::mutex> lock(mu_);
      streamRequests_.push_back(request);
      ++waitingStreams_;
      cv_.wait(lock, [&] { return !streams_.empty() || cancel.cancelled(); });
      --waitingStreams_;
      if (streams_.empty())
        return Error(ErrorCode::kCancelled, "request cancelled");
      s = std::move(streams_.front());
      streams_.pop_front();
    }
    if (s.error)
      return *s.error;
    StreamResult out;
    out.response.status = s.status;
    out.response.headers = s.headers;
    if (s.status < 200 || s.status >= 300) {
      out.response.body = s.body;
      return out;
    }
    for (const auto& line : s.lines) {
      if (cancel.cancelled()) {
        out.end = StreamEnd::kCancelled;
        return out;
      }
      if (!onLine(line)) {
        out.end = StreamEnd::kStopped;
        return out;
      }
    }
    if (s.holdOpen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return cancel.cancelled(); });
      out.end = StreamEnd::kCancelled;
      return out;
    }
    out.end = s.end;
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Handler handler_;
  std::deque<Result<HttpResponse>> responses_;
  std::deque<FakeStream> streams_;
  std::vector<HttpRequest> requests_;
  std::vector<HttpRequest> streamRequests_;
  int waitingStreams_ = 0;
};

}  // namespace exitrec
