// The fast Workflow read path: simdjson On-Demand, decoding straight into the
// compact model with no DOM of the whole object (errors: see json_decoder.h).
//
// The reader is split along its seams: the decoder's building blocks
// (json_decoder.h), the Workflow fields (this file), the fast nodes scan
// (json_node_scan.cpp) and stream splitting (json_stream.cpp).
#include "engine/json_reader.h"

#include <atomic>
#include <charconv>
#include <memory>
#include <string>

#include "engine/json_decoder.h"
#include "engine/json_node_scan.h"
#include "engine/workflow.h"

namespace exitrec {

namespace jsonread {

namespace {

std::atomic<bool> gNodeScanFastPath{true};

bool decodeNode(Decoder& d, Workflow& wf, od::value& v, std::string_view id, bool idIsStable,
                const Path& path, Node& node) {
  // The id is the map key: a view into the input when the key had no escapes.
  node.id = idIsStable ? id : wf.intern(id);
  bool haveName = false;
  bool haveType = false;
  bool haveTemplateRef = false;
  // Reads a string straight into the workflow's arena.
  auto text = [&](od::value& val, std::string_view& out, const Path& p, bool nullOk = true) {
    return d.viewString(val, out, p, wf, nullOk);
  };
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        switch (key.empty() ? '\0' : key[0]) {
          case 'n':
            if (is(key, "name")) {
              haveName = true;
              return text(val, node.name, p, false);
            }
            if (is(key, "nodeFlag")) {
              return d.object(val, p, [&](std::string_view k, od::value& fv) {
                if (is(k, "hooked"))
                  return d.boolean(fv, node.hooked, p.field(k));
                if (is(k, "retried"))
                  return d.boolean(fv, node.retried, p.field(k));
                return true;
              });
            }
            return true;
          case 'd':
            if (is(key, "displayName"))
              return text(val, node.displayName, p);
            if (is(key, "daemoned"))
              return d.boolean(val, node.daemoned, p);
            return true;
          case 't':
            if (is(key, "type")) {
              std::string_view s;
              if (!d.viewString(val, s, p, wf, false))
                return false;
              node.type = parseNodeType(s);
              haveType = true;
            } else if (is(key, "templateName")) {
              // templateRef.template wins (Argo's failures report it).
              if (!haveTemplateRef)
                return text(val, node.templateName, p);
            } else if (is(key, "templateRef")) {
              return d.object(val, p, [&](std::string_view k, od::value& fv) {
                if (k != "template")
                  return true;
                std::string_view s;
                if (!d.string(fv, s, p.field(k)))
                  return false;
                if (!s.empty()) {
                  node.templateName = wf.intern(s);
                  haveTemplateRef = true;
                }
                return true;
              });
            }
            return true;
          case 'p':
            if (is(key, "phase")) {
              std::string_view s;
              if (!d.viewString(val, s, p, wf))
                return false;
              node.phase = parsePhase(s);
            }
            return true;
          case 'b':
            if (is(key, "boundaryID"))
              return text(val, node.boundaryId, p);
            return true;
          case 'm':
            if (is(key, "message"))
              return text(val, node.message, p);
            return true;
          case 'f':
            if (is(key, "finishedAt"))
              return text(val, node.finishedAt, p);
            return true;
          case 'c':
            if (is(key, "children")) {
              std::vector<std::string_view>& scratch = d.scratch();
              scratch.clear();
              bool r = d.array(val, p, [&](std::size_t i, od::value& el) {
                std::string_view s;
                if (!d.viewString(el, s, p.at(i), wf, false))
                  return false;
                scratch.push_back(s);
                return true;
              });
              node.children = wf.internViews(scratch);
              return r;
            }
            return true;
          default:
            return true;
        }
      },
      /*nullOk=*/false);
  if (!ok)
    return false;
  if (!haveName)
    d.fieldError(path.field("name"), "missing (required)");
  if (!haveType)
    d.fieldError(path.field("type"), "missing (required)");
  return true;
}

bool decodeNodes(Decoder& d, od::value& v, const Path& path, Workflow& wf) {
  const Backing& buf = d.backing();
  if (wf.nodes.empty() && d.nodeHint() > 0)
    wf.nodes.reserve(d.nodeHint());
  // The fast path needs views into a kept buffer; it declines (changing
  // nothing) whatever it is not sure of, and in builds without it.
  if (buf && gNodeScanFastPath.load(std::memory_order_relaxed) &&
      scanNodeMap(v, wf, d.nodeKeyHashes()))
    return true;
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    wf.nodes.emplace_back();
    bool stable = buf && buf.contains(key);
    return decodeNode(d, wf, val, key, stable, path.key(key), wf.nodes.back());
  });
}

bool decodeContinueOn(Decoder& d, od::value& v, const Path& p, bool& failed, bool& error) {
  return d.object(v, p, [&](std::string_view k, od::value& fv) {
    if (is(k, "failed"))
      return d.boolean(fv, failed, p.field(k));
    if (is(k, "error"))
      return d.boolean(fv, error, p.field(k));
    return true;
  });
}

// hooks: {exit: {template: X}}; only the exit hook matters here.
bool decodeHooks(Decoder& d, od::value& v, const Path& p, std::string& exitTemplate) {
  return d.object(v, p, [&](std::string_view k, od::value& hv) {
    if (k != "exit")
      return true;
    Path hp = p.field(k);
    return d.object(hv, hp, [&](std::string_view hk, od::value& tv) {
      if (is(hk, "template"))
        return d.string(tv, exitTemplate, hp.field(hk));
      if (is(hk, "templateRef")) {
        Path rp = hp.field(hk);
        return d.object(tv, rp, [&](std::string_view rk, od::value& rv) {
          if (is(rk, "template"))
            return d.string(rv, exitTemplate, rp.field(rk));
          return true;
        });
      }
      return true;
    });
  });
}

bool decodeTemplateRef(Decoder& d, od::value& v, const Path& p, std::string& templateName) {
  return d.object(v, p, [&](std::string_view k, od::value& fv) {
    if (is(k, "template"))
      return d.string(fv, templateName, p.field(k));
    return true;
  });
}

bool decodeDagTask(Decoder& d, od::value& v, const Path& path, DagTask& task) {
  std::string onExit;
  std::string hookExit;
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, task.name, p, false);
        if (is(key, "template")) {
          if (task.templateName.empty())
            return d.string(val, task.templateName, p);
          return true;
        }
        if (is(key, "templateRef"))
          return decodeTemplateRef(d, val, p, task.templateName);
        if (is(key, "depends"))
          return d.string(val, task.depends, p);
        if (is(key, "dependencies"))
          return d.stringList(val, task.dependencies, p);
        if (is(key, "continueOn")) {
          return decodeContinueOn(d, val, p, task.continueOnFailed, task.continueOnError);
        }
        if (is(key, "onExit"))
          return d.string(val, onExit, p);
        if (is(key, "hooks"))
          return decodeHooks(d, val, p, hookExit);
        if (is(key, "arguments")) {
          return d.object(val, p, [&](std::string_view ak, od::value& av) {
            if (ak != "parameters")
              return true;
            Path pp = p.field(ak);
            return d.array(av, pp, [&](std::size_t i, od::value& pv) {
              std::string name;
              std::string value;
              Path ip = pp.at(i);
              bool r = d.object(pv, ip, [&](std::string_view pk, od::value& fv) {
                if (is(pk, "name"))
                  return d.string(fv, name, ip.field(pk));
                if (is(pk, "value"))
                  return d.scalarText(fv, value, ip.field(pk));
                return true;
              });
              if (r)
                task.parameters.emplace_back(std::move(name), std::move(value));
              return r;
            });
          });
        }
        return true;
      },
      false);
  task.exitHookTemplate = !hookExit.empty() ? hookExit : onExit;
  return ok;
}

bool decodeStep(Decoder& d, od::value& v, const Path& path, Step& step) {
  std::string onExit;
  std::string hookExit;
  bool ok = d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, step.name, p);
        if (is(key, "template")) {
          if (step.templateName.empty())
            return d.string(val, step.templateName, p);
          return true;
        }
        if (is(key, "templateRef"))
          return decodeTemplateRef(d, val, p, step.templateName);
        if (is(key, "continueOn")) {
          return decodeContinueOn(d, val, p, step.continueOnFailed, step.continueOnError);
        }
        if (is(key, "onExit"))
          return d.string(val, onExit, p);
        if (is(key, "hooks"))
          return decodeHooks(d, val, p, hookExit);
        return true;
      },
      false);
  step.exitHookTemplate = !hookExit.empty() ? hookExit : onExit;
  return ok;
}

std::optional<std::int64_t> parseInt(std::string_view s) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size())
    return std::nullopt;
  return v;
}

bool decodeTemplate(Decoder& d, od::value& v, const Path& path, Template& tmpl) {
  return d.object(
      v, path,
      [&](std::string_view key, od::value& val) {
        Path p = path.field(key);
        if (is(key, "name"))
          return d.string(val, tmpl.name, p, false);
        if (is(key, "dag")) {
          tmpl.isDag = true;
          return d.object(val, p, [&](std::string_view dk, od::value& dv) {
            Path dp = p.field(dk);
            if (is(dk, "target"))
              return d.string(dv, tmpl.dagTarget, dp);
            if (is(dk, "failFast")) {
              od::json_type t{};
              if (!d.type(dv, t, dp))
                return false;
              if (t == od::json_type::null)
                return d.consumeNull(dv, dp);
              bool b = true;
              if (!d.boolean(dv, b, dp))
                return false;
              if (t == od::json_type::boolean)
                tmpl.dagFailFast = b;
              return true;
            }
            if (is(dk, "tasks")) {
              return d.array(dv, dp, [&](std::size_t i, od::value& tv) {
                tmpl.dagTasks.emplace_back();
                return decodeDagTask(d, tv, dp.at(i), tmpl.dagTasks.back());
              });
            }
            return true;
          });
        }
        if (is(key, "steps")) {
          tmpl.isSteps = true;
          return d.array(val, p, [&](std::size_t i, od::value& gv) {
            tmpl.stepGroups.emplace_back();
            Path gp = p.at(i);
            return d.array(gv, gp, [&](std::size_t j, od::value& sv) {
              tmpl.stepGroups[i].emplace_back();
              return decodeStep(d, sv, gp.at(j), tmpl.stepGroups[i].back());
            });
          });
        }
        if (is(key, "retryStrategy")) {
          od::json_type t{};
          if (!d.type(val, t, p))
            return false;
          if (t == od::json_type::null)
            return d.consumeNull(val, p);
          tmpl.hasRetryStrategy = true;
          return d.object(val, p, [&](std::string_view rk, od::value& rv) {
            Path rp = p.field(rk);
            if (is(rk, "limit")) {
              std::string text;
              if (!d.scalarText(rv, text, rp))
                return false;
              tmpl.retryLimit = parseInt(text);
              return true;
            }
            if (is(rk, "retryPolicy"))
              return d.string(rv, tmpl.retryPolicy, rp);
            return true;
          });
        }
        return true;
      },
      false);
}

struct StatusExtras {
  std::string compressedNodes;
  bool sawNodes = false;
};

bool decodeMetadata(Decoder& d, od::value& v, const Path& path, Workflow& wf, bool& haveName,
                    bool& haveGenerateName) {
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "name")) {
      haveName = true;
      return d.string(val, wf.name, p, false);
    }
    if (is(key, "generateName")) {
      haveGenerateName = true;
      return true;
    }
    if (is(key, "namespace"))
      return d.string(val, wf.namespace_, p);
    if (is(key, "uid"))
      return d.string(val, wf.uid, p);
    if (is(key, "resourceVersion"))
      return d.string(val, wf.resourceVersion, p);
    if (is(key, "labels"))
      return d.stringMap(val, wf.labels, p);
    if (is(key, "annotations"))
      return d.stringMap(val, wf.annotations, p);
    return true;
  });
}

bool decodeSpec(Decoder& d, od::value& v, const Path& path, Workflow& wf) {
  std::string hookExit;
  std::string onExit;
  bool ok = d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "entrypoint"))
      return d.string(val, wf.entrypoint, p);
    if (is(key, "onExit"))
      return d.string(val, onExit, p);
    if (is(key, "hooks"))
      return decodeHooks(d, val, p, hookExit);
    if (is(key, "shutdown")) {
      std::string s;
      if (!d.string(val, s, p))
        return false;
      wf.hasShutdown = !s.empty();
      return true;
    }
    if (is(key, "templates")) {
      return d.array(val, p, [&](std::size_t i, od::value& tv) {
        wf.templates.emplace_back();
        return decodeTemplate(d, tv, p.at(i), wf.templates.back());
      });
    }
    return true;
  });
  wf.onExit = !onExit.empty() ? onExit : hookExit;
  return ok;
}

bool decodeStatus(Decoder& d, od::value& v, const Path& path, Workflow& wf, StatusExtras& extras) {
  return d.object(v, path, [&](std::string_view key, od::value& val) {
    Path p = path.field(key);
    if (is(key, "nodes")) {
      extras.sawNodes = true;
      return decodeNodes(d, val, p, wf);
    }
    if (is(key, "phase")) {
      std::string_view s;
      if (!d.string(val, s, p))
        return false;
      wf.phase = parsePhase(s);
      return true;
    }
    if (is(key, "message"))
      return d.string(val, wf.message, p);
    if (is(key, "startedAt"))
      return d.string(val, wf.startedAt, p);
    if (is(key, "finishedAt"))
      return d.string(val, wf.finishedAt, p);
    if (is(key, "compressedNodes"))
      return d.string(val, extras.compressedNodes, p);
    if (is(key, "offloadNodeStatusVersion"))
      return d.string(val, wf.offloadNodeStatusVersion, p);
    return true;
  });
}

// Parses the decompressed nodes map with a parser of its own (the outer one
// is mid-document).
void decodeCompressedNodes(Decoder& outer, const std::string& compressed, Workflow& wf) {
  bool overLimit = false;
  auto text = decompressNodes(compressed, maxDecompressedNodeBytes(), overLimit);
  if (!text && overLimit) {
    // Not an error in the object: too big to read here (evaluate() says so).
    wf.nodeStatusOverLimit = text.error().message;
    wf.nodesWereCompressed = true;
    return;
  }
  if (!text) {
    outer.recordError(text.error());
    return;
  }
  Backing padded = Backing::copyOf(*text);
  wf.keepAlive(padded.owner);
  ParserLease lease;
  od::parser& parser = lease.get();
  od::document doc;
  Path root{nullptr, Path::Kind::kRoot, "status.compressedNodes(decoded)", 0};
  Decoder d(padded);
  d.hintNodesFromSize(padded.size);
  if (auto e = parser.iterate(padded.view()).get(doc)) {
    d.fatal(e, root);
  } else {
    od::value v;
    if (auto e2 = doc.get_value().get(v)) {
      d.fatal(e2, root);
    } else if (decodeNodes(d, v, root, wf) && !docAtEnd(doc)) {
      d.fieldError(root, "trailing content after the nodes map");
    }
  }
  if (d.hasError())
    outer.recordError(d.takeError());
  wf.nodesWereCompressed = true;
}

}  // namespace

bool decodeWorkflowBody(Decoder& d, od::object& obj, Workflow& wf, const Path& root,
                        const std::function<bool(std::size_t, od::value&)>* onItem, bool& isList) {
  StatusExtras extras;
  bool haveName = false;
  bool haveGenerateName = false;
  bool ok = d.fields(obj, root, [&](std::string_view key, od::value& val) {
    Path p = root.field(key);
    if (is(key, "metadata"))
      return decodeMetadata(d, val, p, wf, haveName, haveGenerateName);
    if (is(key, "spec"))
      return decodeSpec(d, val, p, wf);
    if (is(key, "status"))
      return decodeStatus(d, val, p, wf, extras);
    if (is(key, "apiVersion"))
      return d.string(val, wf.apiVersion, p);
    if (is(key, "kind"))
      return d.string(val, wf.kind, p);
    if (is(key, "items") && onItem != nullptr) {
      od::json_type t{};
      if (!d.type(val, t, p))
        return false;
      if (t != od::json_type::array) {
        d.fieldError(p, std::string("expected an array, got ") + Decoder::typeName(t));
        return true;
      }
      isList = true;
      return d.array(val, p, *onItem);
    }
    return true;
  });
  if (!ok || isList)
    return ok;
  if (!haveName) {
    d.fieldError(root.field("metadata.name"),
                 haveGenerateName ? "missing (required; only generateName is set: a Workflow "
                                    "spec that was never submitted is not a run)"
                                  : "missing (required)");
  }
  if (wf.nodes.empty() && !extras.compressedNodes.empty()) {
    decodeCompressedNodes(d, extras.compressedNodes, wf);
  }
  if (!wf.nodes.empty() && d.backing())
    wf.keepAlive(d.backing().owner);
  wf.buildIndex(d.nodeKeyHashes());
  return true;
}

namespace {

Result<Workflow> decodeOne(od::value& v, const Path& root, Backing backing) {
  std::size_t bytes = backing.size;
  Decoder d(std::move(backing));
  d.hintNodesFromSize(bytes);
  Workflow wf;
  od::json_type t{};
  if (!d.type(v, t, root))
    return d.takeError();
  if (t != od::json_type::object) {
    std::string where = root.str();
    return makeError(ErrorCode::kInvalidInput, (where.empty() ? "" : where + ": ") +
                                                   "expected a Workflow object, got " +
                                                   Decoder::typeName(t));
  }
  od::object obj;
  if (auto e = v.get_object().get(obj)) {
    d.fatal(e, root);
    return d.takeError();
  }
  bool isList = false;
  decodeWorkflowBody(d, obj, wf, root, nullptr, isList);
  if (d.hasError())
    return d.takeError();
  return wf;
}

}  // namespace

}  // namespace jsonread

void setNodeScanFastPath(bool enabled) {
  jsonread::gNodeScanFastPath.store(enabled, std::memory_order_relaxed);
}

bool nodeScanFastPathCompiled() {
  return jsonread::nodeScanCompiled();
}

std::uint64_t nodeScanFastPathReads() {
  return jsonread::nodeScanFastReads();
}

Result<Workflow> parseWorkflowJson(std::string_view json) {
  using jsonread::Backing;
  using jsonread::Decoder;
  using jsonread::Path;
  namespace od = simdjson::ondemand;
  Backing padded = Backing::copyOf(json);
  jsonread::ParserLease lease;
  od::parser& parser = lease.get();
  od::document doc;
  Path root;
  Decoder d(padded);
  if (auto e = parser.iterate(padded.view()).get(doc)) {
    d.fatal(e, root);
    return d.takeError();
  }
  od::value v;
  if (auto e = doc.get_value().get(v)) {
    d.fatal(e, root);
    return d.takeError();
  }
  auto wf = jsonread::decodeOne(v, root, padded);
  if (!wf)
    return wf;
  if (!jsonread::docAtEnd(doc)) {
    return makeError(ErrorCode::kInvalidInput,
                     "invalid JSON: trailing content after the Workflow object");
  }
  return wf;
}

}  // namespace exitrec
