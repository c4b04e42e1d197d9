// (c) the engine, kept in a file of its own: engine_ab compiles it a second
// time against another tree's engine, with -Dexitrec=exitrec_base, which makes
// it exitrec_base::bench::engineEvaluate (see bench/CMakeLists.txt).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "bench/synthetic_workflow.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec::bench {

// Reads the same padded buffer as the floor, in place, as `audit` does
// (readWorkflows with an owner), so neither side pays for a copy of the input.
bool engineEvaluate(const std::shared_ptr<const simdjson::padded_string>& text) {
  bool misreported = false;
  Status st = readWorkflows(text, std::string_view(text->data(), text->size()),
                            [&](Result<Workflow> wf, std::string_view) {
                              if (!wf.ok()) {
                                std::fprintf(stderr, "engine rejected the synthetic workflow: %s\n",
                                             wf.error().message.c_str());
                                std::exit(1);
                              }
                              misreported = evaluate(*wf).misreported;
                            });
  if (!st.ok()) {
    std::fprintf(stderr, "engine rejected the synthetic workflow: %s\n",
                 st.error().message.c_str());
    std::exit(1);
  }
  return misreported;
}

}  // namespace exitrec::bench
