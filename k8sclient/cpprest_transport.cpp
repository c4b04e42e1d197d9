#include "k8sclient/cpprest_transport.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <pplx/pplxtasks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

namespace exitrec {
namespace {

namespace http = web::http;
using http::client::http_client;
using http::client::http_client_config;

// Splits "https://host:port/path?q" into ("https://host:port", "/path?q").
bool splitUrl(const std::string& url, std::string& base, std::string& rest) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos)
    return false;
  const auto slash = url.find('/', scheme + 3);
  base = url.substr(0, slash);
  rest = slash == std::string::npos ? "/" : url.substr(slash);
  return true;
}

bool looksLikeTls(std::string_view what) {
  return what.find("SSL") != std::string_view::npos ||
         what.find("handshake") != std::string_view::npos ||
         what.find("certificate") != std::string_view::npos;
}

class CpprestTransport final : public HttpTransport {
 public:
  static constexpr std::size_t kReadBlock = std::size_t{64} * 1024;

  explicit CpprestTransport(TlsOptions tls) : tls_(std::move(tls)) {}

  // One request path for both: the 2xx body is read in blocks either way.
  Result<HttpResponse> send(const HttpRequest& request) override {
    std::string body;
    auto r = sendChunked(request, [&](std::string_view piece) {
      body.append(piece);
      return true;
    });
    if (r && r->status >= 200 && r->status < 300)
      r->body = std::move(body);
    return r;
  }

  Result<HttpResponse> sendChunked(const HttpRequest& request,
                                   const ChunkCallback& onChunk) override {
    std::string base, rest;
    if (!splitUrl(request.url, base, rest)) {
      return Error(ErrorCode::kInvalidInput, "not an absolute URL: " + request.url);
    }
    auto client = sharedClient(base, request.timeout);
    const bool idempotent = request.method == "GET";
    for (int attempt = 0;; ++attempt) {
      bool delivered = false;
      try {
        auto msg = buildMessage(request, rest);
        http::http_response resp = client->request(msg).get();
        if (resp.status_code() < 200 || resp.status_code() >= 300)
          return toResponse(resp);
        HttpResponse out;
        out.status = resp.status_code();
        for (const auto& [name, value] : resp.headers())
          out.headers.set(name, value);
        readBlocks(resp, [&](std::string_view piece) {
          delivered = true;
          return onChunk(piece);
        });
        return out;
      } catch (const std::exception& e) {
        const std::string what = e.what();
        // cpprestsdk#660/#195: a pooled connection closed by the server.
        if (idempotent && attempt == 0 && !delivered &&
            what.find("Failed to read HTTP status line") != std::string::npos) {
          spdlog::debug("k8sclient: retrying {} {} after stale pooled connection", request.method,
                        base + pathOnly(rest));
          continue;
        }
        return connectionError(request, base, rest, what);
      }
    }
  }

  Result<StreamResult> stream(const HttpRequest& request, const LineCallback& onLine,
                              CancelSource& cancel) override {
    std::string base, rest;
    if (!splitUrl(request.url, base, rest)) {
      return Error(ErrorCode::kInvalidInput, "not an absolute URL: " + request.url);
    }
    // One client (and so one connection) per stream, with its own idle timeout.
    http_client client(base, makeConfig(request.timeout));
    pplx::cancellation_token_source cts;
    const auto cbId = cancel.onCancel([cts]() mutable { cts.cancel(); });
    struct Unregister {
      CancelSource& c;
      std::uint64_t id;
      ~Unregister() { c.removeCallback(id); }
    } unregister{cancel, cbId};

    StreamResult out;
    auto lastActivity = std::chrono::steady_clock::now();
    try {
      auto msg = buildMessage(request, rest);
      http::http_response resp = client.request(msg, cts.get_token()).get();
      out.response.status = resp.status_code();
      for (const auto& [name, value] : resp.headers())
        out.response.headers.set(name, value);
      if (out.response.status < 200 || out.response.status >= 300) {
        auto bytes = resp.extract_vector().get();
        out.response.body.assign(bytes.begin(), bytes.end());
        return out;
      }
      // Read in blocks and cut lines here: cpprest's read_line takes a lock
      // and a task per byte, which made a watch of ~100 KB objects the
      // controller's main CPU cost.
      std::string pending;  // the start of a line not finished yet
      // Delivers one complete line; false when the callback stopped the stream.
      auto deliver = [&](std::string_view line) {
        if (!line.empty() && line.back() == '\r')
          line.remove_suffix(1);
        return line.empty() || onLine(line);
      };
      bool stopped = false;
      readBlocks(resp, [&](std::string_view data) {
        lastActivity = std::chrono::steady_clock::now();
        for (std::size_t nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n')) {
          bool more = true;
          if (pending.empty()) {
            more = deliver(data.substr(0, nl));
          } else {
            pending.append(data.substr(0, nl));
            more = deliver(pending);
            pending.clear();
          }
          if (!more) {
            stopped = true;
            return false;
          }
          data.remove_prefix(nl + 1);
        }
        pending.append(data);
        return !cancel.cancelled();
      });
      if (stopped) {
        out.end = StreamEnd::kStopped;
        return out;
      }
      if (cancel.cancelled()) {
        out.end = StreamEnd::kCancelled;
        return out;
      }
      // A last line without a newline still counts.
      if (!deliver(pending)) {
        out.end = StreamEnd::kStopped;
        return out;
      }
      out.end = StreamEnd::kEof;
      return out;
    } catch (const pplx::task_canceled&) {
      out.end = StreamEnd::kCancelled;
    } catch (const std::exception& e) {
      if (cancel.cancelled()) {
        out.end = StreamEnd::kCancelled;
      } else if (out.response.status != 0 &&
                 std::chrono::steady_clock::now() - lastActivity >= request.timeout * 9 / 10) {
        // The idle timer fired: a normal reconnect, not an error.
        out.end = StreamEnd::kIdleTimeout;
      } else {
        return connectionError(request, base, rest, e.what());
      }
    }
    if (out.response.status == 0)
      return Error(ErrorCode::kCancelled, "request cancelled");
    return out;
  }

 private:
  // Hands the body to `onBlock` in pieces of at most kReadBlock bytes as they
  // arrive, until the end of the body or `onBlock` returns false. Reads what
  // is buffered in one go; waits (one byte) only when nothing is. Throws what
  // cpprest throws (connection errors, cancellation).
  static void readBlocks(http::http_response& resp,
                         const std::function<bool(std::string_view)>& onBlock) {
    auto sb = resp.body().streambuf();
    std::vector<std::uint8_t> block(kReadBlock);
    while (true) {
      std::size_t n = 0;
      const std::size_t avail = sb.in_avail();
      if (avail > 0) {
        // Satisfied at once: never asks for more than is buffered.
        n = sb.getn(block.data(), std::min(avail, block.size())).get();
      } else {
        const auto c = sb.bumpc().get();
        if (c != std::char_traits<char>::eof()) {
          block[0] = static_cast<std::uint8_t>(c);
          n = 1;
        }
      }
      if (n == 0)
        return;  // end of the body
      if (!onBlock(std::string_view(reinterpret_cast<const char*>(block.data()), n)))
        return;
    }
  }

  static std::string pathOnly(const std::string& rest) { return rest.substr(0, rest.find('?')); }

  Error connectionError(const HttpRequest& request, const std::string& base,
                        const std::string& rest, const std::string& what) const {
    std::string msg;
    if (looksLikeTls(what) && base.rfind("https", 0) == 0) {
      msg = "TLS handshake with " + base + " failed (" + tls_.describeCa() + "): " + what;
    } else {
      msg = request.method + " " + base + pathOnly(rest) + " failed: " + what;
    }
    return Error(ErrorCode::kTransient, std::move(msg));
  }

  http_client_config makeConfig(std::chrono::milliseconds timeout) const {
    http_client_config cfg;
    cfg.set_timeout(timeout);
    cfg.set_validate_certificates(!tls_.insecureSkipVerify);
    TlsOptions tls = tls_;
    cfg.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) {
      if (!tls.insecureSkipVerify) {
        if (!tls.caFile.empty())
          ctx.load_verify_file(tls.caFile);
        if (!tls.caPem.empty())
          ctx.add_certificate_authority(boost::asio::buffer(tls.caPem));
      }
      if (!tls.clientCertFile.empty())
        ctx.use_certificate_chain_file(tls.clientCertFile);
      if (!tls.clientCertPem.empty())
        ctx.use_certificate_chain(boost::asio::buffer(tls.clientCertPem));
      if (!tls.clientKeyFile.empty()) {
        ctx.use_private_key_file(tls.clientKeyFile, boost::asio::ssl::context::pem);
      }
      if (!tls.clientKeyPem.empty()) {
        ctx.use_private_key(boost::asio::buffer(tls.clientKeyPem), boost::asio::ssl::context::pem);
      }
    });
    return cfg;
  }

  std::shared_ptr<http_client> sharedClient(const std::string& base,
                                            std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> g(mu_);
    auto key = std::make_pair(base, timeout.count());
    auto it = clients_.find(key);
    if (it != clients_.end())
      return it->second;
    auto client = std::make_shared<http_client>(base, makeConfig(timeout));
    clients_.emplace(key, client);
    return client;
  }

  static http::http_request buildMessage(const HttpRequest& request, const std::string& rest) {
    http::http_request msg(request.method);
    msg.set_request_uri(rest);
    std::string contentType = "application/json";
    for (const auto& [name, value] : request.headers.entries) {
      if (strcasecmp(name.c_str(), "Content-Type") == 0) {
        contentType = value;
        continue;
      }
      msg.headers().add(name, value);
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      msg.set_body(std::string(request.body), contentType);
    }
    return msg;
  }

  static HttpResponse toResponse(http::http_response& resp) {
    HttpResponse out;
    out.status = resp.status_code();
    for (const auto& [name, value] : resp.headers())
      out.headers.set(name, value);
    auto bytes = resp.extract_vector().get();
    out.body.assign(bytes.begin(), bytes.end());
    return out;
  }

  TlsOptions tls_;
  std::mutex mu_;
  std::map<std::pair<std::string, long long>, std::shared_ptr<http_client>> clients_;
};

Status checkReadable(const std::string& path, const char* what) {
  if (path.empty())
    return Status();
  std::ifstream in(path);
  if (!in)
    return Error(ErrorCode::kInvalidInput, std::string("cannot read ") + what + " " + path);
  return Status();
}

}  // namespace

Result<std::unique_ptr<HttpTransport>> makeCpprestTransport(const TlsOptions& tls) {
  for (auto [path, what] :
       {std::pair{&tls.caFile, "CA file"}, std::pair{&tls.clientCertFile, "client certificate"},
        std::pair{&tls.clientKeyFile, "client key"}}) {
    if (Status s = checkReadable(*path, what); !s)
      return s.error();
  }
  if (tls.insecureSkipVerify) {
    spdlog::warn(
        "k8sclient: insecure-skip-tls-verify is set: the API server's certificate is NOT "
        "verified");
  }
  return std::unique_ptr<HttpTransport>(std::make_unique<CpprestTransport>(tls));
}

}  // namespace exitrec
