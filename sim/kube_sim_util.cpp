// The Kubernetes API simulator's helpers: API errors as Status bodies, object
// field access, names and uids (see kube_sim_internal.h).
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/clock.h"
#include "common/yaml_json.h"
#include "sim/kube_sim_internal.h"

namespace exitrec::kubesim {

json statusJson(const ApiError& e) {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"},   {"metadata", json::object()},
            {"status", "Failure"}, {"message", e.message}, {"reason", e.reason},
            {"code", e.code}};
  if (!e.details.is_null())
    s["details"] = e.details;
  if (e.reason.empty())
    s.erase("reason");
  return s;
}

json resDetails(const ResourceType& t, const std::string& name) {
  json d = {{"name", name}, {"kind", t.plural}};
  if (!t.group.empty())
    d["group"] = t.group;
  return d;
}

ApiError notFound(const ResourceType& t, const std::string& name) {
  return {404, "NotFound", t.qualifiedResource() + " \"" + name + "\" not found",
          resDetails(t, name)};
}
ApiError alreadyExists(const ResourceType& t, const std::string& name) {
  return {409, "AlreadyExists", t.qualifiedResource() + " \"" + name + "\" already exists",
          resDetails(t, name)};
}
ApiError conflict(const ResourceType& t, const std::string& name) {
  return {409, "Conflict",
          "Operation cannot be fulfilled on " + t.qualifiedResource() + " \"" + name +
              "\": the object has been modified; please apply your changes to the latest "
              "version and try again",
          resDetails(t, name)};
}
ApiError invalid(const ResourceType& t, const std::string& name, const std::string& field,
                 const std::string& causeReason, const std::string& causeMessage) {
  json d = {
      {"name", name},
      {"kind", t.kind},
      {"causes",
       json::array({{{"reason", causeReason}, {"message", causeMessage}, {"field", field}}})}};
  if (!t.group.empty())
    d["group"] = t.group;
  return {422, "Invalid",
          t.qualifiedKind() + " \"" + name + "\" is invalid: " + field + ": " + causeMessage, d};
}
ApiError badRequest(const std::string& msg) {
  return {400, "BadRequest", msg, nullptr};
}
ApiError pathNotFound() {
  return {404, "NotFound", "the server could not find the requested resource", json::object()};
}
ApiError methodNotAllowed() {
  return {405, "MethodNotAllowed",
          "the server does not allow this method on the requested resource", json::object()};
}
ApiError expired(const std::string& msg) {
  return {410, "Expired", msg, nullptr};
}

ApiError statusForCode(int code, const std::string& why) {
  ApiError e;
  e.code = code;
  e.message = why;
  switch (code) {
    case 400:
      e.reason = "BadRequest";
      break;
    case 401:
      e.reason = "Unauthorized";
      break;
    case 403:
      e.reason = "Forbidden";
      break;
    case 404:
      e.reason = "NotFound";
      break;
    case 409:
      e.reason = "Conflict";
      break;
    case 410:
      e.reason = "Gone";
      break;
    case 422:
      e.reason = "Invalid";
      break;
    case 429:
      e.reason = "TooManyRequests";
      break;
    case 500:
      e.reason = "InternalError";
      break;
    case 503:
      e.reason = "ServiceUnavailable";
      break;
    case 504:
      e.reason = "Timeout";
      break;
    default:
      e.reason = code >= 500 ? "InternalError" : "BadRequest";
      break;
  }
  return e;
}

std::optional<bool> parseGoBool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True")
    return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return std::nullopt;
}

std::string randomSuffix(std::size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  unsigned char buf[16];
  RAND_bytes(buf, sizeof(buf));
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(kAlphabet[buf[i % 16] % 27]);
  return out;
}

std::string newUid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string nowRfc3339() {
  return formatRfc3339(std::chrono::system_clock::now());
}

bool validName(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return false;
  if (!std::isalnum(static_cast<unsigned char>(name.front())) ||
      !std::isalnum(static_cast<unsigned char>(name.back()))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

Labels labelsOf(const json& obj) {
  Labels out;
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object())
    return out;
  auto l = m->find("labels");
  if (l == m->end() || !l->is_object())
    return out;
  for (auto it = l->begin(); it != l->end(); ++it) {
    if (it.value().is_string())
      out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

std::string strField(const json& obj, const char* a, const char* b) {
  auto x = obj.find(a);
  if (x == obj.end())
    return "";
  if (b == nullptr)
    return x->is_string() ? x->get<std::string>() : "";
  if (!x->is_object())
    return "";
  auto y = x->find(b);
  return (y != x->end() && y->is_string()) ? y->get<std::string>() : "";
}

std::string fieldValue(const json& obj, const std::string& path) {
  const json* cur = &obj;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t dot = path.find('.', pos);
    if (dot == std::string::npos)
      dot = path.size();
    std::string part = path.substr(pos, dot - pos);
    if (!cur->is_object())
      return "";
    auto it = cur->find(part);
    if (it == cur->end())
      return "";
    cur = &*it;
    pos = dot + 1;
  }
  if (cur->is_string())
    return cur->get<std::string>();
  if (cur->is_null())
    return "";
  return cur->dump();
}

bool fieldsMatch(const FieldSelector& fs, const std::string& ns, const std::string& name,
                 const std::string& data) {
  if (fs.empty())
    return true;
  std::optional<json> parsed;
  for (const auto& r : fs.requirements()) {
    std::string v;
    if (r.field == "metadata.name") {
      v = name;
    } else if (r.field == "metadata.namespace") {
      v = ns;
    } else {
      if (!parsed)
        parsed = json::parse(data);
      v = fieldValue(*parsed, r.field);
    }
    if ((v == r.value) != r.equals)
      return false;
  }
  return true;
}

void sendJson(HttpResponseWriter& w, int code, const std::string& body, HttpHeaders extra) {
  extra.emplace_back("Content-Type", "application/json");
  extra.emplace_back("Cache-Control", "no-cache, private");
  w.send(code, extra, body);
}

void sendError(HttpResponseWriter& w, const ApiError& e) {
  HttpHeaders h;
  if (e.retryAfter > 0)
    h.emplace_back("Retry-After", std::to_string(e.retryAfter));
  sendJson(w, e.code, statusJson(e).dump(), std::move(h));
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos)
      slash = path.size();
    if (slash > pos)
      out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

std::string mediaType(const HttpRequest& req) {
  std::string contentType = req.header("Content-Type").value_or("");
  return contentType.substr(0, contentType.find(';'));
}

bool parseBody(const HttpRequest& req, HttpResponseWriter& w, json& out) {
  std::string ctype = mediaType(req);
  try {
    if (ctype == "application/yaml" || ctype == "application/apply-patch+yaml") {
      auto docs = parseYamlDocuments(req.body);
      if (!docs || docs->size() != 1) {
        sendError(w,
                  badRequest(docs ? "expected exactly one YAML document" : docs.error().message));
        return false;
      }
      out = std::move((*docs)[0]);
    } else {
      out = json::parse(req.body);
    }
  } catch (const json::exception& e) {
    sendError(w,
              badRequest(std::string("the body of the request could not be decoded: ") + e.what()));
    return false;
  }
  return true;
}

}  // namespace exitrec::kubesim
