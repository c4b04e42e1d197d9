#pragma once
// Kubernetes label and field selectors, as accepted by list/watch requests.
// Grammar of labelSelector (k8s.io/apimachinery labels.Parse): comma-separated
// requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
// fieldSelector: comma-separated `path=v`, `path==v`, `path!=v`.
// Values are immutable after parsing; matching is thread-safe.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace exitrec {

class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;
  };

  // kInvalidInput with a message shaped like the API server's on a syntax error.
  static Result<LabelSelector> parse(std::string_view text);

  bool empty() const { return reqs_.empty(); }
  bool matches(const std::map<std::string, std::string>& labels) const;

 private:
  std::vector<Requirement> reqs_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;  // e.g. "metadata.name"
    bool equals = true;
    std::string value;
  };
  static Result<FieldSelector> parse(std::string_view text);
  bool empty() const { return reqs_.empty(); }
  const std::vector<Requirement>& requirements() const { return reqs_; }

 private:
  std::vector<Requirement> reqs_;
};

}  // namespace exitrec
