#include "k8sclient/kube_client.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "k8sclient/api_error.h"
#include "k8sclient/json_scan.h"

namespace exitrec {

using nlohmann::json;

std::string ResourceRef::apiPrefix() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string ResourceRef::apiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceRef::collectionPath(std::string_view ns) const {
  std::string p = apiPrefix();
  if (namespaced && !ns.empty()) {
    p += "/namespaces/";
    p += ns;
  }
  return p + "/" + plural;
}

std::string ResourceRef::objectPath(std::string_view ns, std::string_view name) const {
  return collectionPath(ns) + "/" + std::string(name);
}

std::string_view watchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
  }
  return "?";
}

Result<ObjectMeta> readObjectMeta(std::string_view rawObject) {
  const std::string_view rawMeta = jsonscan::member(rawObject, "metadata");
  if (rawMeta.empty())
    return Error(ErrorCode::kInvalidInput, "object has no metadata");
  auto m = json::parse(rawMeta, nullptr, /*allow_exceptions=*/false);
  if (!m.is_object())
    return Error(ErrorCode::kInvalidInput, "object metadata is not a JSON object");
  ObjectMeta out;
  auto s = [&](const char* k) -> std::string {
    auto it = m.find(k);
    return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.namespaceName = s("namespace");
  out.name = s("name");
  out.uid = s("uid");
  out.resourceVersion = s("resourceVersion");
  return out;
}

KubeClient::KubeClient(std::shared_ptr<HttpTransport> transport, std::string server,
                       const TokenSource& tokens, KubeClientOptions options)
    : transport_(std::move(transport)),
      server_(std::move(server)),
      tokens_(tokens),  // copyable only: it holds a mutex
      options_(std::move(options)) {
  while (!server_.empty() && server_.back() == '/')
    server_.pop_back();
}

Error KubeClient::scrub(Error e) {
  auto tok = tokens_.token();
  if (tok && tok->size() >= 4) {
    for (auto pos = e.message.find(*tok); pos != std::string::npos; pos = e.message.find(*tok)) {
      e.message.replace(pos, tok->size(), "<redacted>");
    }
  }
  return e;
}

Result<HttpRequest> KubeClient::buildRequest(const Call& call, std::chrono::milliseconds timeout) {
  HttpRequest req;
  req.method = call.method;
  req.url = server_ + call.path + (call.query.empty() ? "" : "?" + call.query);
  req.timeout = timeout;
  req.headers.set("Accept", "application/json");
  req.headers.set("User-Agent", options_.userAgent);
  if (!call.contentType.empty())
    req.headers.set("Content-Type", call.contentType);
  req.body = call.body;
  auto tok = tokens_.token();
  if (!tok)
    return tok.error();
  if (!tok->empty())
    req.headers.set("Authorization", "Bearer " + *tok);
  return req;
}

Result<HttpResponse> KubeClient::execute(const Call& call) {
  return executeVia(call, [&](const HttpRequest& req) { return transport_->send(req); });
}

Result<HttpResponse> KubeClient::executeChunked(const Call& call, const ChunkCallback& onChunk) {
  // Nothing is handed to onChunk for a non-2xx answer, so the 401 retry is clean.
  return executeVia(call,
                    [&](const HttpRequest& req) { return transport_->sendChunked(req, onChunk); });
}

Result<HttpResponse> KubeClient::executeVia(const Call& call, const SendFn& send) {
  const ErrorContext ctx{call.method + " " + call.path, call.jsonPatchWithTest};
  for (int attempt = 0;; ++attempt) {
    auto req = buildRequest(call, options_.requestTimeout);
    if (!req)
      return scrub(req.error());
    auto resp = send(*req);
    if (!resp)
      return scrub(resp.error());
    spdlog::debug("k8sclient: {} {} -> {}", call.method, call.path, resp->status);
    if (resp->status >= 200 && resp->status < 300)
      return resp;
    if (resp->status == 401 && attempt == 0 && tokens_.invalidate()) {
      spdlog::info("k8sclient: {} {} got 401; re-reading the token and retrying once", call.method,
                   call.path);
      continue;
    }
    return scrub(classifyHttpError(resp->status, resp->headers, resp->body, ctx));
  }
}

Result<json> KubeClient::executeJson(const Call& call) {
  auto resp = execute(call);
  if (!resp)
    return resp.error();
  auto j = json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Error(ErrorCode::kTransient,
                 call.method + " " + call.path + ": response body is not valid JSON");
  }
  return j;
}

Result<std::string> KubeClient::getRaw(const ResourceRef& r, std::string_view ns,
                                       std::string_view name) {
  auto resp = execute(Call{"GET", r.objectPath(ns, name), "", "", "", false});
  if (!resp)
    return resp.error();
  return std::move(resp->body);
}

Result<json> KubeClient::get(const ResourceRef& r, std::string_view ns, std::string_view name) {
  return executeJson(Call{"GET", r.objectPath(ns, name), "", "", "", false});
}

Result<ListMeta> KubeClient::list(const ResourceRef& r, std::string_view ns,
                                  const ListOptions& opts, const ItemCallback& onItem) {
  ListMeta meta;
  std::string cont;
  const std::string path = r.collectionPath(ns);
  do {
    std::string q;
    auto add = [&q](std::string_view k, std::string_view v) {
      if (!q.empty())
        q += '&';
      q += k;
      q += '=';
      q += urlEncode(v);
    };
    if (opts.limit > 0)
      add("limit", std::to_string(opts.limit));
    if (!cont.empty())
      add("continue", cont);
    if (!opts.labelSelector.empty())
      add("labelSelector", opts.labelSelector);
    if (!opts.fieldSelector.empty())
      add("fieldSelector", opts.fieldSelector);
    // A continue token pins the snapshot; the RV applies to the first page only.
    if (cont.empty() && !opts.resourceVersion.empty())
      add("resourceVersion", opts.resourceVersion);
    // The page is cut into items as it arrives: only the item being cut is
    // buffered, never the whole page (pages of large objects are tens of MB).
    std::optional<Error> failure;
    jsonscan::ListSplitter splitter([&](std::string_view item) {
      Status s = onItem(item);
      if (!s) {
        failure = s.error();
        return false;
      }
      ++meta.items;
      return true;
    });
    auto resp = executeChunked(Call{"GET", path, q, "", "", false},
                               [&](std::string_view piece) { return splitter.feed(piece); });
    if (!resp)
      return resp.error();
    ++meta.pages;
    if (failure)
      return *failure;
    if (!splitter.finish() || !splitter.sawItems()) {
      return Error(ErrorCode::kTransient, "GET " + path + ": response is not a List");
    }
    const std::string& rawMeta = splitter.metadata();
    auto m = json::parse(rawMeta.empty() ? std::string_view("{}") : std::string_view(rawMeta),
                         nullptr, false);
    if (!m.is_object())
      return Error(ErrorCode::kTransient, "GET " + path + ": bad list metadata");
    meta.resourceVersion = m.value("resourceVersion", "");
    cont = m.value("continue", "");
  } while (!cont.empty());
  return meta;
}

Result<json> KubeClient::create(const ResourceRef& r, std::string_view ns, const json& obj) {
  return executeJson(Call{"POST", r.collectionPath(ns), "", "application/json", obj.dump(), false});
}

Result<json> KubeClient::update(const ResourceRef& r, std::string_view ns, std::string_view name,
                                const json& obj) {
  return executeJson(
      Call{"PUT", r.objectPath(ns, name), "", "application/json", obj.dump(), false});
}

Result<json> KubeClient::mergePatch(const ResourceRef& r, std::string_view ns,
                                    std::string_view name, const json& patch,
                                    const std::optional<std::string>& guardResourceVersion) {
  json body = patch;
  if (guardResourceVersion)
    body["metadata"]["resourceVersion"] = *guardResourceVersion;
  return executeJson(Call{"PATCH", r.objectPath(ns, name), "", "application/merge-patch+json",
                          body.dump(), false});
}

Result<std::string> KubeClient::mergePatchRaw(const ResourceRef& r, std::string_view ns,
                                              std::string_view name, std::string patchJson) {
  auto resp = execute(Call{"PATCH", r.objectPath(ns, name), "", "application/merge-patch+json",
                           std::move(patchJson), false});
  if (!resp)
    return resp.error();
  return std::move(resp->body);
}

Result<json> KubeClient::jsonPatch(const ResourceRef& r, std::string_view ns, std::string_view name,
                                   const json& ops) {
  bool hasTest = false;
  if (ops.is_array()) {
    for (const auto& op : ops)
      hasTest = hasTest || (op.is_object() && op.value("op", "") == "test");
  }
  return executeJson(Call{"PATCH", r.objectPath(ns, name), "", "application/json-patch+json",
                          ops.dump(), hasTest});
}

Status KubeClient::remove(const ResourceRef& r, std::string_view ns, std::string_view name) {
  auto resp = execute(Call{"DELETE", r.objectPath(ns, name), "", "", "", false});
  if (!resp)
    return resp.error();
  return Status();
}

Result<WatchEnd> KubeClient::watch(const ResourceRef& r, std::string_view ns,
                                   const WatchOptions& opts, const WatchCallback& onEvent,
                                   CancelSource& cancel) {
  std::string q = "watch=true";
  if (!opts.resourceVersion.empty())
    q += "&resourceVersion=" + urlEncode(opts.resourceVersion);
  if (opts.allowWatchBookmarks)
    q += "&allowWatchBookmarks=true";
  q += "&timeoutSeconds=" + std::to_string(opts.timeoutSeconds.count());
  if (!opts.labelSelector.empty())
    q += "&labelSelector=" + urlEncode(opts.labelSelector);
  if (!opts.fieldSelector.empty())
    q += "&fieldSelector=" + urlEncode(opts.fieldSelector);
  const Call call{"GET", r.collectionPath(ns), q, "", "", false};
  const ErrorContext ctx{"WATCH " + call.path, false};
  const auto idle = opts.idleTimeout.count() > 0
                        ? opts.idleTimeout
                        : std::chrono::milliseconds(opts.timeoutSeconds + std::chrono::seconds(30));

  for (int attempt = 0;; ++attempt) {
    auto req = buildRequest(call, idle);
    if (!req)
      return scrub(req.error());
    WatchEnd out;
    auto onLine = [&](std::string_view line) {
      std::string_view type, object;
      jsonscan::forEachMember(line, [&](std::string_view k, std::string_view v) {
        if (k == "type")
          type = v;
        if (k == "object")
          object = v;
        return true;
      });
      WatchEventType t;
      if (type == "\"ADDED\"") {
        t = WatchEventType::kAdded;
      } else if (type == "\"MODIFIED\"") {
        t = WatchEventType::kModified;
      } else if (type == "\"DELETED\"") {
        t = WatchEventType::kDeleted;
      } else if (type == "\"BOOKMARK\"") {
        t = WatchEventType::kBookmark;
      } else if (type == "\"ERROR\"") {
        auto st = parseKubeStatus(object);
        out.errorEvent = true;
        out.streamError =
            st ? classifyStatusObject(*st, ctx)
               : Error(ErrorCode::kTransient, ctx.operation + ": malformed ERROR event");
        return false;
      } else {
        out.streamError =
            Error(ErrorCode::kTransient, ctx.operation + ": undecodable watch event (type " +
                                             std::string(type.substr(0, 40)) + ")");
        return false;
      }
      if (object.empty()) {
        out.streamError =
            Error(ErrorCode::kTransient, ctx.operation + ": watch event without object");
        return false;
      }
      ++out.events;
      return onEvent(t, object);
    };
    auto res = transport_->stream(*req, onLine, cancel);
    if (!res)
      return scrub(res.error());
    const int status = res->response.status;
    if (status == 401 && attempt == 0 && tokens_.invalidate()) {
      spdlog::info("k8sclient: {} got 401; re-reading the token and retrying once", ctx.operation);
      continue;
    }
    if (status < 200 || status >= 300) {
      return scrub(classifyHttpError(status, res->response.headers, res->response.body, ctx));
    }
    out.end = res->end;
    if (out.streamError)
      out.streamError = scrub(*out.streamError);
    return out;
  }
}

}  // namespace exitrec
