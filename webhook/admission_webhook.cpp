#include "webhook/admission_webhook.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "certs/certificates.h"
#include "common/http_server.h"

namespace exitrec {

namespace {

std::string strField(const nlohmann::json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The value of the LAST member named `key`, as parseAdmissionReview reads it:
// nlohmann::json keeps the last of duplicate keys (so does Go's encoding/json),
// simdjson's at_key() the first. Reading the first here let a review with
// "kind" twice be allowed by the fast path and rejected by the full one.
bool lastAt(const simdjson::dom::object& o, std::string_view key, simdjson::dom::element& out) {
  bool found = false;
  for (simdjson::dom::key_value_pair field : o) {
    if (field.key == key) {
      out = field.value;
      found = true;
    }
  }
  return found;
}

std::string_view svAt(const simdjson::dom::object& o, std::string_view key) {
  simdjson::dom::element e;
  std::string_view v;
  if (!lastAt(o, key, e) || e.get_string().get(v) != simdjson::SUCCESS)
    return {};
  return v;
}

bool objAt(const simdjson::dom::object& o, std::string_view key, simdjson::dom::object& out) {
  simdjson::dom::element e;
  return lastAt(o, key, e) && e.get_object().get(out) == simdjson::SUCCESS;
}

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

std::optional<std::string> fastOutOfScopeResponse(std::string_view body,
                                                  const NotExitTaskCheck* notExitTask) {
  // One parser per server thread: its buffers are reused across requests.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS)
    return std::nullopt;  // the full path words the 400
  simdjson::dom::object root, req, kind, object, meta, labels, annotations;
  if (doc.get_object().get(root) != simdjson::SUCCESS)
    return std::nullopt;
  const std::string_view apiVersion = svAt(root, "apiVersion");
  if ((apiVersion != "admission.k8s.io/v1" && apiVersion != "admission.k8s.io/v1beta1") ||
      svAt(root, "kind") != "AdmissionReview" || !objAt(root, "request", req)) {
    return std::nullopt;
  }
  const std::string_view uid = svAt(req, "uid");
  if (uid.empty())
    return std::nullopt;
  std::string_view kindKind, kindGroup;
  if (objAt(req, "kind", kind)) {
    kindKind = svAt(kind, "kind");
    kindGroup = svAt(kind, "group");
  }
  bool outOfScope = kindKind != "Pod" || !kindGroup.empty() || svAt(req, "operation") != "CREATE";
  if (!outOfScope) {
    if (!objAt(req, "object", object))
      return std::nullopt;  // a Pod CREATE without a Pod: 400 from the full path
    PodIdentity id;
    simdjson::dom::array owners;
    std::string_view ownerUid;
    if (objAt(object, "metadata", meta)) {
      if (objAt(meta, "labels", labels)) {
        id.runId = std::string(svAt(labels, kLabelRunId));
        id.workflowName = std::string(svAt(labels, kLabelWorkflow));
        id.onExitLabel = svAt(labels, kLabelOnExit) == "true";
      }
      if (!id.runId.empty() && objAt(meta, "annotations", annotations)) {
        id.nodeName = std::string(svAt(annotations, kAnnotationNodeName));
        id.runtimeRole = std::string(svAt(annotations, kAnnotationRuntimeRole));
      }
      simdjson::dom::element ownersElement;
      if (lastAt(meta, "ownerReferences", ownersElement) &&
          ownersElement.get_array().get(owners) == simdjson::SUCCESS) {
        for (simdjson::dom::element o : owners) {
          simdjson::dom::object ref;
          if (o.get_object().get(ref) == simdjson::SUCCESS && svAt(ref, "kind") == "Workflow") {
            ownerUid = svAt(ref, "uid");
            break;
          }
        }
      }
      id.namespace_ = std::string(svAt(meta, "namespace"));
      id.name = std::string(svAt(meta, "name"));
    }
    if (id.namespace_.empty())
      id.namespace_ = std::string(svAt(req, "namespace"));
    outOfScope = !ExitTaskResolver::worthResolving(id);
    if (!outOfScope && !id.onExitLabel && notExitTask != nullptr && *notExitTask)
      outOfScope = (*notExitTask)(id, ownerUid);
  }
  if (!outOfScope)
    return std::nullopt;
  // As admissionResponse(apiVersion, uid, nullptr) writes it (same key order).
  std::string out;
  out.reserve(96 + apiVersion.size() + uid.size());
  out += "{\"apiVersion\":";
  appendJsonString(out, apiVersion);
  out += ",\"kind\":\"AdmissionReview\",\"response\":{\"allowed\":true,\"uid\":";
  appendJsonString(out, uid);
  out += "}}";
  return out;
}

Result<AdmissionRequestView> parseAdmissionReview(std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    return Error(ErrorCode::kInvalidInput, "malformed AdmissionReview: body is not valid JSON");
  }
  if (!doc.is_object()) {
    return Error(ErrorCode::kInvalidInput, "malformed AdmissionReview: body is not a JSON object");
  }
  AdmissionRequestView v;
  v.apiVersion = strField(doc, "apiVersion");
  if (v.apiVersion != "admission.k8s.io/v1" && v.apiVersion != "admission.k8s.io/v1beta1") {
    return Error(ErrorCode::kInvalidInput,
                 "malformed AdmissionReview: apiVersion must be admission.k8s.io/v1, got \"" +
                     v.apiVersion + "\"");
  }
  if (strField(doc, "kind") != "AdmissionReview") {
    return Error(ErrorCode::kInvalidInput,
                 "malformed AdmissionReview: kind must be AdmissionReview");
  }
  auto req = doc.find("request");
  if (req == doc.end() || !req->is_object()) {
    return Error(ErrorCode::kInvalidInput, "malformed AdmissionReview: request is missing");
  }
  v.uid = strField(*req, "uid");
  if (v.uid.empty()) {
    return Error(ErrorCode::kInvalidInput, "malformed AdmissionReview: request.uid is missing");
  }
  auto kind = req->find("kind");
  if (kind != req->end() && kind->is_object()) {
    v.kind = strField(*kind, "kind");
    v.group = strField(*kind, "group");
  }
  v.operation = strField(*req, "operation");
  v.namespace_ = strField(*req, "namespace");
  auto obj = req->find("object");
  if (obj != req->end())
    v.object = std::move(*obj);
  if (v.kind == "Pod" && v.group.empty() && v.operation == "CREATE" && !v.object.is_object()) {
    return Error(ErrorCode::kInvalidInput,
                 "malformed AdmissionReview: request.object must be a Pod for a Pod CREATE");
  }
  return v;
}

std::string admissionResponse(std::string_view apiVersion, std::string_view uid,
                              const nlohmann::json* patch) {
  nlohmann::json resp = {{"uid", uid}, {"allowed", true}};
  if (patch != nullptr && patch->is_array() && !patch->empty()) {
    resp["patchType"] = "JSONPatch";
    resp["patch"] = base64Encode(patch->dump());
  }
  nlohmann::json review = {
      {"apiVersion", apiVersion}, {"kind", "AdmissionReview"}, {"response", std::move(resp)}};
  return review.dump();
}

struct AdmissionWebhook::Job {
  nlohmann::json pod;
  std::string ns;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  ExitTaskDecision decision;
  std::string failure;  // non-empty: the decision threw (the worker's barrier)
};

AdmissionWebhook::AdmissionWebhook(AdmissionWebhookOptions options, RunStateProvider& provider,
                                   Clock& clock, WebhookMetrics* metrics)
    : options_(std::move(options)),
      provider_(provider),
      resolver_(provider, clock),
      clock_(clock),
      metrics_(metrics) {
  // A KFP launcher pod without the on-exit label is out of scope unless the
  // run's spec makes it a 2.0-2.3 sibling exit task: decided on the server
  // thread when the spec is cached (as the resolver would decide it).
  notExitTask_ = [this](const PodIdentity& pod, std::string_view ownerUid) {
    auto spec = provider_.cachedWorkflowSpec(pod.namespace_, pod.workflowName, ownerUid);
    return spec != nullptr && !identifyExitTask(*spec, pod).has_value();
  };
}

AdmissionWebhook::~AdmissionWebhook() {
  stop();
}

Status AdmissionWebhook::start() {
  if (options_.certFile.empty()) {
    return Error(ErrorCode::kInvalidInput, "webhook: a TLS certificate file is required");
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = false;
    for (int i = 0; i < std::max(1, options_.workers); ++i) {
      workers_.emplace_back([this] { workerLoop(); });
    }
  }
  HttpServer::Options so;
  so.address = options_.address;
  so.port = options_.port;
  so.threads = options_.serverThreads;
  so.certFile = options_.certFile;
  so.keyFile = options_.keyFile;
  so.maxBodyBytes = 8u << 20;
  so.socketTimeoutMs = 10000;
  so.onHandlerException = [](std::string_view what) {
    spdlog::error("webhook: HTTP handler failed with an exception: {}", what);
  };
  server_ = std::make_unique<HttpServer>(so);
  server_->handle(options_.path, [this](const HttpRequest& req, HttpResponseWriter& w) {
    if (req.method != "POST") {
      w.send(405, {{"Content-Type", "text/plain"}, {"Allow", "POST"}}, "use POST\n");
      return;
    }
    AdmissionReply r = review(req.body);
    const char* type = r.httpStatus == 200 ? "application/json" : "text/plain";
    w.send(r.httpStatus, {{"Content-Type", type}}, r.body);
  });
  server_->handle("/healthz", [](const HttpRequest&, HttpResponseWriter& w) {
    w.send(200, {{"Content-Type", "text/plain"}}, "ok\n");
  });
  Status s = server_->start();
  if (!s.ok()) {
    stop();
    return s;
  }
  if (metrics_ != nullptr) {
    auto notAfter = certificateNotAfter(options_.certFile);
    metrics_->certificateLoaded(notAfter.ok(), notAfter.ok() ? notAfter.value() : 0);
  }
  return Status();
}

void AdmissionWebhook::stop() {
  if (server_)
    server_->stop();
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable())
      t.join();
  }
  workers_.clear();
  server_.reset();
}

int AdmissionWebhook::port() const {
  return server_ ? server_->port() : 0;
}

std::string AdmissionWebhook::baseUrl() const {
  return server_ ? server_->baseUrl() : std::string();
}

Status AdmissionWebhook::reloadCertificates() {
  if (!server_)
    return Error(ErrorCode::kInvalidInput, "webhook: not started");
  Status s = server_->reloadCertificates();
  if (metrics_ != nullptr) {
    auto notAfter = certificateNotAfter(options_.certFile);
    metrics_->certificateLoaded(s.ok() && notAfter.ok(), notAfter.ok() ? notAfter.value() : 0);
  }
  return s;
}

std::uint64_t AdmissionWebhook::count(InjectionResult r) const {
  return counts_[static_cast<std::size_t>(r)].load();
}

void AdmissionWebhook::record(InjectionResult r, bool inScope, Clock::SteadyTime started) {
  counts_[static_cast<std::size_t>(r)].fetch_add(1);
  if (metrics_ != nullptr) {
    metrics_->reviewed(r, inScope, std::chrono::duration<double>(clock_.now() - started).count());
  }
}

void AdmissionWebhook::workerLoop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    // The pool thread's exception barrier: a pod or Workflow that makes the
    // decision throw is admitted unchanged (counted `error`), and this
    // thread goes on with the next pod.
    ExitTaskDecision d;
    std::string failure;
    try {
      d = resolver_.decide(job->pod, job->ns);
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "non-standard exception";
    }
    {
      std::lock_guard<std::mutex> g(job->mu);
      job->decision = std::move(d);
      job->failure = std::move(failure);
      job->done = true;
    }
    job->cv.notify_all();
  }
}

AdmissionReply AdmissionWebhook::review(std::string_view body) {
  const auto started = clock_.now();
  // The request thread's barrier: a review that throws is answered 500 (the
  // API server applies the webhook's failurePolicy) and counted `error`.
  try {
    return reviewUnguarded(body, started);
  } catch (const std::exception& e) {
    spdlog::error("webhook: review failed with an exception: {}", e.what());
  } catch (...) {
    spdlog::error("webhook: review failed with a non-standard exception");
  }
  AdmissionReply reply;
  reply.httpStatus = 500;
  reply.body = "internal error while reviewing the pod\n";
  reply.result = InjectionResult::kError;
  record(reply.result, false, started);
  return reply;
}

AdmissionReply AdmissionWebhook::reviewUnguarded(std::string_view body, Clock::SteadyTime started) {
  AdmissionReply reply;
  // Most pods are out of scope: decide those from a few fields, no DOM copy.
  if (auto fast = fastOutOfScopeResponse(body, &notExitTask_)) {
    reply.body = std::move(*fast);
    reply.result = InjectionResult::kOutOfScope;
    record(reply.result, false, started);
    return reply;
  }
  auto parsed = parseAdmissionReview(body);
  if (!parsed.ok()) {
    reply.httpStatus = 400;
    reply.body = parsed.error().message + "\n";
    reply.result = InjectionResult::kBadRequest;
    record(reply.result, false, started);
    return reply;
  }
  AdmissionRequestView& req = parsed.value();
  auto allowUnchanged = [&](InjectionResult r, bool inScope) {
    reply.body = admissionResponse(req.apiVersion, req.uid, nullptr);
    reply.result = r;
    reply.inScope = inScope;
    record(r, inScope, started);
    return reply;
  };

  if (req.kind != "Pod" || !req.group.empty() || req.operation != "CREATE") {
    return allowUnchanged(InjectionResult::kOutOfScope, false);
  }
  PodIdentity id = podIdentityOf(req.object);
  if (id.namespace_.empty())
    id.namespace_ = req.namespace_;
  if (!ExitTaskResolver::worthResolving(id))
    return allowUnchanged(InjectionResult::kOutOfScope, false);

  auto job = std::make_shared<Job>();
  job->pod = std::move(req.object);
  job->ns = req.namespace_;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_ || workers_.empty() || queue_.size() >= options_.maxPending) {
      spdlog::warn("webhook: decision pool saturated; pod {}/{} allowed unchanged", id.namespace_,
                   id.name);
      return allowUnchanged(InjectionResult::kDeadlineExceeded, true);
    }
    queue_.push_back(job);
  }
  cv_.notify_one();

  bool done;
  {
    std::unique_lock<std::mutex> lk(job->mu);
    done = clock_.waitUntil(lk, job->cv, started + options_.deadline, [&] { return job->done; });
  }
  if (!done) {
    spdlog::warn("webhook: no decision within {} ms for pod {}/{}; allowed unchanged",
                 options_.deadline.count(), id.namespace_, id.name);
    return allowUnchanged(InjectionResult::kDeadlineExceeded, true);
  }
  // The worker no longer touches the job once done is set.
  if (!job->failure.empty()) {
    spdlog::error("webhook: deciding pod {}/{} threw ({}); allowed unchanged", id.namespace_,
                  id.name, job->failure);
    return allowUnchanged(InjectionResult::kError, true);
  }
  ExitTaskDecision& d = job->decision;
  using O = ExitTaskDecision::Outcome;
  switch (d.outcome) {
    case O::kOutOfScope:
      return allowUnchanged(InjectionResult::kOutOfScope, false);
    case O::kNoUserCode:
      return allowUnchanged(InjectionResult::kSkipped, true);
    case O::kAlreadyInjected:
      return allowUnchanged(InjectionResult::kAlreadyInjected, true);
    case O::kStateUnavailable:
      spdlog::warn("webhook: state of pod {}/{} unavailable ({}); allowed unchanged", id.namespace_,
                   id.name, d.error ? d.error->describe() : std::string("unknown"));
      return allowUnchanged(InjectionResult::kApiUnavailable, true);
    case O::kInject:
      break;
  }
  reply.body = admissionResponse(req.apiVersion, req.uid, &d.plan.patch);
  reply.result = InjectionResult::kInjected;
  reply.inScope = true;
  spdlog::info("webhook: injected {} into exit-task pod {}/{} (exit handler {}, run so far {})",
               fmt::join(d.plan.items, ","), id.namespace_, id.name,
               phaseName(d.state.exitHandlerStatus), phaseName(d.state.workflowStatus));
  record(reply.result, true, started);
  return reply;
}

}  // namespace exitrec
