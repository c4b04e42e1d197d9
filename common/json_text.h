#pragma once
// JSON to compact text for anything we write out (patches, reports, NDJSON):
// invalid UTF-8, which a tenant can put in any Workflow string, is replaced
// with U+FFFD instead of throwing nlohmann's type_error 316.

#include <nlohmann/json.hpp>
#include <string>

namespace exitrec {

// Any nlohmann::basic_json: json, or ordered_json where key order is output.
template <class BasicJson>
std::string dumpJson(const BasicJson& j) {
  return j.dump(-1, ' ', false, BasicJson::error_handler_t::replace);
}

}  // namespace exitrec
