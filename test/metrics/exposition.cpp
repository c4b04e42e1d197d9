#include "test/metrics/exposition.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <vector>

namespace exitrec::testing {
namespace {

std::string key(const std::string& name, const std::map<std::string, std::string>& labels) {
  if (labels.empty())
    return name;
  std::string out = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first)
      out += ",";
    first = false;
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

// Parses `{k="v",...}` (values without escapes, which our labels never need).
std::map<std::string, std::string> parseLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  std::size_t i = 0;
  while (i < text.size()) {
    auto eq = text.find('=', i);
    if (eq == std::string::npos)
      break;
    std::string k = text.substr(i, eq - i);
    auto open = eq + 1;  // '"'
    auto close = text.find('"', open + 1);
    labels[k] = text.substr(open + 1, close - open - 1);
    i = close + 1;
    if (i < text.size() && text[i] == ',')
      ++i;
  }
  return labels;
}

}  // namespace

std::optional<double> Exposition::value(const std::string& name,
                                        const std::map<std::string, std::string>& labels) const {
  auto it = samples.find(key(name, labels));
  if (it == samples.end())
    return std::nullopt;
  return it->second;
}

int Exposition::count(const std::string& name) const {
  int n = 0;
  for (const auto& [k, v] : samples) {
    if (k == name || k.rfind(name + "{", 0) == 0)
      ++n;
  }
  return n;
}

Exposition parseExposition(const std::string& text) {
  Exposition out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      out.types[name] = type;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      out.help[rest.substr(0, sp)] = sp == std::string::npos ? "" : rest.substr(sp + 1);
      continue;
    }
    if (line[0] == '#')
      continue;
    std::string name;
    std::map<std::string, std::string> labels;
    std::string valueText;
    auto brace = line.find('{');
    auto space = line.find(' ');
    if (brace != std::string::npos && brace < space) {
      name = line.substr(0, brace);
      auto close = line.find('}', brace);
      labels = parseLabels(line.substr(brace + 1, close - brace - 1));
      valueText = line.substr(close + 2);
    } else {
      name = line.substr(0, space);
      valueText = line.substr(space + 1);
    }
    auto sp = valueText.find(' ');  // optional timestamp
    if (sp != std::string::npos)
      valueText.resize(sp);
    out.samples[key(name, labels)] = std::strtod(valueText.c_str(), nullptr);
  }
  return out;
}

HttpResponse httpGet(int port, const std::string& path) {
  HttpResponse response;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return response;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return response;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return response;
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto headerEnd = raw.find("\r\n\r\n");
  if (headerEnd == std::string::npos || raw.rfind("HTTP/", 0) != 0)
    return response;
  response.headers = raw.substr(0, headerEnd);
  response.body = raw.substr(headerEnd + 4);
  response.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
  return response;
}

}  // namespace exitrec::testing
