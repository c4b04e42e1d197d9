#pragma once
// Every node field the readers fill, as one string: the fast nodes-map scan
// and the validating On-Demand decoder must produce identical digests (used by
// engine_tests and the fuzz target).

#include <string>

#include "engine/workflow.h"

namespace exitrec::testing {

inline std::string nodeDigest(const Workflow& wf) {
  std::string out;
  for (const Node& n : wf.nodes) {
    for (std::string_view s :
         {n.id, n.name, n.displayName, n.templateName, n.boundaryId, n.message, n.finishedAt}) {
      out.append(std::to_string(s.size())).push_back(':');
      out.append(s).push_back('|');
    }
    out.append(nodeTypeName(n.type)).push_back('|');
    out.append(phaseName(n.phase)).push_back('|');
    out.push_back(n.hooked ? 'H' : '-');
    out.push_back(n.retried ? 'R' : '-');
    out.push_back(n.daemoned ? 'D' : '-');
    out.push_back(n.hookName ? 'K' : '-');
    out.push_back('[');
    for (std::string_view c : n.children) {
      out.append(std::to_string(c.size())).push_back(':');
      out.append(c).push_back(',');
    }
    out.append("]\n");
  }
  return out;
}

}  // namespace exitrec::testing
