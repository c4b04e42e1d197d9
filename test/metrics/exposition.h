#pragma once
// Test helpers: a minimal Prometheus text-format reader and a loopback HTTP
// GET, so the metrics tests check exactly what a scraper would see.

#include <map>
#include <optional>
#include <string>

namespace exitrec::testing {

struct Exposition {
  // "name{k1="v1",k2="v2"}" (labels sorted by name) → value.
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family name → counter|gauge|histogram
  std::map<std::string, std::string> help;   // family name → help text

  // The value of a sample; labels given as {"k", "v"} pairs in any order.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  // Number of samples of `name` (exact sample name, e.g. a _bucket series).
  int count(const std::string& name) const;
};

Exposition parseExposition(const std::string& text);

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};
// GET http://127.0.0.1:<port><path> with HTTP/1.0; aborts the test on socket
// errors via the returned status 0.
HttpResponse httpGet(int port, const std::string& path);

}  // namespace exitrec::testing
