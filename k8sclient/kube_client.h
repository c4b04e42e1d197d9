#pragma once
// KubeClient: REST operations against the Kubernetes API, with errors
// classified once (api_error.h) and bearer-token handling (token_source.h).
//
// Large objects: list and watch hand each object to the caller as raw JSON
// text (a view valid only during the callback), cut out of the response by a
// structural scanner, so a multi-megabyte list never becomes one DOM. The
// single-object operations return nlohmann::json.
//
// Auth: the token is sent as "Authorization: Bearer"; on a 401 the token
// source is re-read and the request retried once. Tokens never appear in log
// lines or error messages (errors are scrubbed as a second line of defence).
//
// Thread-safety: all methods may be called concurrently; watch() blocks the
// calling thread (run it on a std::thread you own).

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "common/url_encoding.h"  // urlEncode for query values
#include "k8sclient/http_transport.h"
#include "k8sclient/token_source.h"

namespace exitrec {

// Identifies a resource collection. group "" is the core group (/api/v1).
struct ResourceRef {
  std::string group;
  std::string version;
  std::string plural;
  bool namespaced = true;

  std::string apiPrefix() const;  // "/api/v1" or "/apis/<group>/<version>"
  // Collection path; `ns` empty means all namespaces (or a cluster-scoped resource).
  std::string collectionPath(std::string_view ns) const;
  std::string objectPath(std::string_view ns, std::string_view name) const;
  std::string apiVersion() const;  // "v1" or "<group>/<version>"
};

namespace resources {
inline const ResourceRef kPods{"", "v1", "pods", true};
inline const ResourceRef kEvents{"", "v1", "events", true};
inline const ResourceRef kNamespaces{"", "v1", "namespaces", false};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", true};
inline const ResourceRef kWorkflows{"argoproj.io", "v1alpha1", "workflows", true};
}  // namespace resources

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int limit = 500;              // page size; 0 = unpaginated
  std::string resourceVersion;  // "" = consistent read (honours limit/continue)
};

struct ListMeta {
  std::string resourceVersion;  // the list's RV: start the watch here
  std::size_t items = 0;
  int pages = 0;
};

// Receives the raw JSON of one list item. A non-ok Status aborts the list.
using ItemCallback = std::function<Status(std::string_view rawItem)>;

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };
std::string_view watchEventTypeName(WatchEventType t);

struct WatchOptions {
  std::string resourceVersion;
  std::string labelSelector;
  std::string fieldSelector;
  bool allowWatchBookmarks = true;
  std::chrono::seconds timeoutSeconds{300};  // server-side lifetime
  // Client idle timeout; must exceed timeoutSeconds (0 = timeoutSeconds + 30 s).
  std::chrono::milliseconds idleTimeout{0};
};

// Receives one event with the raw JSON of its object. Return false to stop.
using WatchCallback = std::function<bool(WatchEventType type, std::string_view rawObject)>;

struct WatchEnd {
  StreamEnd end = StreamEnd::kEof;
  std::size_t events = 0;  // events delivered (bookmarks included)
  // Set when the stream ended with an in-stream ERROR event (e.g. 410
  // Expired) or an undecodable line: the classified error.
  std::optional<Error> streamError;
  bool errorEvent = false;  // streamError came from an ERROR event
};

struct KubeClientOptions {
  std::chrono::milliseconds requestTimeout{std::chrono::seconds(30)};
  std::string userAgent = "kfp-exit-reconciler/0.1";
};

class KubeClient {
 public:
  // `server` e.g. "https://127.0.0.1:6443". The transport is shared.
  KubeClient(std::shared_ptr<HttpTransport> transport, std::string server,
             const TokenSource& tokens, KubeClientOptions options = {});

  Result<std::string> getRaw(const ResourceRef& r, std::string_view ns, std::string_view name);
  Result<nlohmann::json> get(const ResourceRef& r, std::string_view ns, std::string_view name);

  // Lists every page, calling onItem for each item. On 410 (expired
  // continue token) returns kGone: restart with resourceVersion "".
  Result<ListMeta> list(const ResourceRef& r, std::string_view ns, const ListOptions& opts,
                        const ItemCallback& onItem);

  Result<nlohmann::json> create(const ResourceRef& r, std::string_view ns,
                                const nlohmann::json& obj);
  // PUT; the object's metadata.resourceVersion guards it (409 when stale).
  Result<nlohmann::json> update(const ResourceRef& r, std::string_view ns, std::string_view name,
                                const nlohmann::json& obj);
  // application/merge-patch+json; with guardResourceVersion the patch carries
  // metadata.resourceVersion and a mismatch gives kConflict.
  Result<nlohmann::json> mergePatch(const ResourceRef& r, std::string_view ns,
                                    std::string_view name, const nlohmann::json& patch,
                                    const std::optional<std::string>& guardResourceVersion = {});
  // application/merge-patch+json with a body already serialized; returns the
  // patched object's JSON exactly as the server sent it (no parse), like
  // getRaw: the caller reads it once, with the engine's reader.
  Result<std::string> mergePatchRaw(const ResourceRef& r, std::string_view ns,
                                    std::string_view name, std::string patchJson);
  // application/json-patch+json; a failed `test` op (422) gives kConflict.
  Result<nlohmann::json> jsonPatch(const ResourceRef& r, std::string_view ns, std::string_view name,
                                   const nlohmann::json& ops);
  Status remove(const ResourceRef& r, std::string_view ns, std::string_view name);

  // Streams a watch until it ends, `onEvent` stops it or `cancel` fires.
  // Error results: the watch request itself failed (e.g. kGone for HTTP 410,
  // kTransient for connection failures, kCancelled).
  Result<WatchEnd> watch(const ResourceRef& r, std::string_view ns, const WatchOptions& opts,
                         const WatchCallback& onEvent, CancelSource& cancel);

  const std::string& server() const { return server_; }

 private:
  struct Call {
    std::string method;
    std::string path;   // no query
    std::string query;  // without '?'
    std::string contentType;
    std::string body;
    bool jsonPatchWithTest = false;
  };
  Result<HttpResponse> execute(const Call& call);
  // execute() with the 2xx body handed to onChunk as it arrives.
  Result<HttpResponse> executeChunked(const Call& call, const ChunkCallback& onChunk);
  // Both: build the request, send it with `send`, retry once on a 401 with a
  // re-read token, classify errors.
  using SendFn = std::function<Result<HttpResponse>(const HttpRequest&)>;
  Result<HttpResponse> executeVia(const Call& call, const SendFn& send);
  Result<nlohmann::json> executeJson(const Call& call);
  Result<HttpRequest> buildRequest(const Call& call, std::chrono::milliseconds timeout);
  Error scrub(Error e);

  std::shared_ptr<HttpTransport> transport_;
  std::string server_;
  TokenSource tokens_;
  KubeClientOptions options_;
};

// metadata fields the client machinery needs from any object.
struct ObjectMeta {
  std::string namespaceName;
  std::string name;
  std::string uid;
  std::string resourceVersion;
};
// Reads metadata from raw object JSON without parsing the rest.
Result<ObjectMeta> readObjectMeta(std::string_view rawObject);

}  // namespace exitrec
