// Stream splitting: one JSON Workflow, a List, or a stream of them (NDJSON /
// concatenated JSON), each document decoded by the Workflow decoder
// (json_reader.cpp).
#include <optional>
#include <string>
#include <string_view>

#include "engine/json_decoder.h"
#include "engine/json_reader.h"

namespace exitrec {

using jsonread::Backing;
using jsonread::Decoder;
using jsonread::ParserLease;
using jsonread::Path;
namespace od = simdjson::ondemand;

namespace {

// Finds the end of the JSON value starting at `pos` (which must be '{' or
// '['), honouring strings; returns npos when it is not closed.
std::size_t jsonValueEnd(std::string_view text, std::size_t pos) {
  int depth = 0;
  bool inString = false;
  for (std::size_t i = pos; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        inString = true;
        break;
      case '{':
      case '[':
        ++depth;
        break;
      case '}':
      case ']':
        if (--depth == 0)
          return i + 1;
        break;
      default:
        break;
    }
  }
  return std::string_view::npos;
}

bool isWs(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// Decodes one iterated JSON document (a Workflow or a List) and sinks its
// workflows; `origin` prefixes item origins. Returns an error when the
// document is broken beyond its items (a syntax error); items sunk before it
// stay sunk.
// With `held`, a lone Workflow is stored there instead of being sunk (the
// caller decides its origin once it knows whether more documents follow);
// List items are always sunk at once.
Status readJsonDocument(od::document& doc, const Backing& backing, const std::string& origin,
                        const WorkflowSink& sink, std::optional<Result<Workflow>>* held = nullptr) {
  Path root;
  Decoder d(backing);
  d.hintNodesFromSize(backing.size);  // items decode with hint-less decoders
  auto syntax = [&](simdjson::error_code e) {
    d.fatal(e, root);
    return Status(d.takeError());
  };
  od::json_type t{};
  if (auto e = doc.type().get(t))
    return syntax(e);
  if (t != od::json_type::object) {
    return Status(
        makeError(ErrorCode::kInvalidInput,
                  std::string("expected a Workflow or List object, got ") + Decoder::typeName(t)));
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj))
    return syntax(e);
  Workflow wf;
  bool isList = false;
  std::function<bool(std::size_t, od::value&)> onItem = [&](std::size_t i, od::value& item) {
    std::string itemOrigin =
        (origin.empty() ? "" : origin + ": ") + "items[" + std::to_string(i) + "]";
    Decoder itemDecoder(backing);
    od::json_type it{};
    if (!itemDecoder.type(item, it, root)) {
      Error e = itemDecoder.takeError();
      e.message = itemOrigin + ": " + e.message;
      d.recordError(std::move(e));
      return false;
    }
    if (it != od::json_type::object) {
      sink(makeError(ErrorCode::kInvalidInput,
                     std::string("expected a Workflow object, got ") + Decoder::typeName(it)),
           itemOrigin);
      return true;
    }
    od::object itemObj;
    if (auto e = item.get_object().get(itemObj)) {
      itemDecoder.fatal(e, root);
      Error err = itemDecoder.takeError();
      err.message = itemOrigin + ": " + err.message;
      d.recordError(std::move(err));
      return false;
    }
    Workflow itemWf;
    bool nestedList = false;
    if (!jsonread::decodeWorkflowBody(itemDecoder, itemObj, itemWf, root, nullptr, nestedList)) {
      // A syntax error inside an item ends the whole document.
      Error e = itemDecoder.takeError();
      e.message = itemOrigin + ": " + e.message;
      d.recordError(std::move(e));
      return false;
    }
    if (itemDecoder.hasError()) {
      sink(itemDecoder.takeError(), itemOrigin);
    } else {
      sink(std::move(itemWf), itemOrigin);
    }
    return true;
  };
  if (!jsonread::decodeWorkflowBody(d, obj, wf, root, &onItem, isList))
    return Status(d.takeError());
  if (d.hasError()) {
    // For a List: an ill-typed top-level field.
    if (held != nullptr && !isList) {
      held->emplace(d.takeError());
    } else {
      sink(d.takeError(), origin);
    }
  } else if (!isList) {
    if (held != nullptr) {
      held->emplace(std::move(wf));
    } else {
      sink(std::move(wf), origin);
    }
  }
  return Status::okStatus();
}

}  // namespace

Status readJsonStream(std::string_view text, const WorkflowSink& sink) {
  return readJsonStream(nullptr, text, sink);
}

Status readJsonStream(std::shared_ptr<const void> owner, std::string_view text,
                      const WorkflowSink& sink) {
  std::size_t pos = 0;
  while (pos < text.size() && isWs(text[pos]))
    ++pos;
  ParserLease lease;
  od::parser& parser = lease.get();
  {
    // The common case is one document: parse it once from the whole buffer,
    // then see whether anything follows it (NDJSON / concatenated JSON).
    std::string_view first = text.substr(pos);
    // With an owner the caller's padded buffer is read in place (see Backing).
    Backing padded =
        owner ? Backing{std::move(owner), first.data(), first.size()} : Backing::copyOf(first);
    od::document doc;
    // Unbalanced as a whole: skip straight to reading document by document,
    // so the good ones are still read and the broken one is named.
    if (parser.iterate(padded.view()).get(doc) == simdjson::SUCCESS) {
      std::optional<Result<Workflow>> held;
      Status st = readJsonDocument(doc, padded, "", sink, &held);
      if (!st.ok())
        return st;
      const char* next = nullptr;
      bool more = doc.current_location().get(next) == simdjson::SUCCESS && next != nullptr &&
                  next >= padded.data && next < padded.data + first.size();
      if (held)
        sink(std::move(*held), more ? "line 1" : "");
      if (!more)
        return Status::okStatus();
      pos += static_cast<std::size_t>(next - padded.data);
    }
  }
  // A stream of documents (NDJSON or concatenated JSON): one parse each.
  std::size_t line = 1;
  std::size_t lineCountedTo = 0;
  while (pos < text.size()) {
    while (pos < text.size() && isWs(text[pos]))
      ++pos;
    if (pos >= text.size())
      break;
    for (; lineCountedTo < pos; ++lineCountedTo) {
      if (text[lineCountedTo] == '\n')
        ++line;
    }
    std::string origin = "line " + std::to_string(line);
    if (text[pos] != '{' && text[pos] != '[') {
      return Status(makeError(ErrorCode::kInvalidInput,
                              origin + ": invalid JSON: expected '{' to start a document"));
    }
    std::size_t end = jsonValueEnd(text, pos);
    if (end == std::string_view::npos) {
      return Status(makeError(ErrorCode::kInvalidInput,
                              origin + ": invalid JSON: the document is not closed (truncated)"));
    }
    Backing padded = Backing::copyOf(text.substr(pos, end - pos));
    od::document doc;
    Status st;
    if (auto e = parser.iterate(padded.view()).get(doc)) {
      st = Status(makeError(ErrorCode::kInvalidInput,
                            std::string("invalid JSON: ") + simdjson::error_message(e)));
    } else {
      st = readJsonDocument(doc, padded, origin, sink);
    }
    // A broken document is reported; the stream goes on with the next one.
    if (!st.ok())
      sink(st.error(), origin);
    pos = end;
  }
  return Status::okStatus();
}

}  // namespace exitrec
