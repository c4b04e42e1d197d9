#include "common/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace exitrec {

Result<ListenAddress> parseListenAddress(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidInput,
                 "listen address \"" + std::string(address) + "\": " + std::string(why));
  };
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos)
    return bad("expected HOST:PORT or :PORT");
  std::string_view host = address.substr(0, colon);
  const std::string_view portText = address.substr(colon + 1);
  int port = -1;
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (portText.empty() || ec != std::errc() || ptr != portText.data() + portText.size() ||
      port < 0 || port > 65535) {
    return bad("port must be a number in 0..65535");
  }
  ListenAddress out;
  out.port = port;
  if (host.empty())
    return out;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']')
      return bad("unterminated or empty [IPv6] host");
    std::string inner(host.substr(1, host.size() - 2));
    in6_addr a6{};
    if (::inet_pton(AF_INET6, inner.c_str(), &a6) != 1)
      return bad("\"" + inner + "\" is not an IPv6 address");
    if (IN6_IS_ADDR_UNSPECIFIED(&a6))
      return out;  // "[::]:P": both families, like Go
    out.host = inner;
    return out;
  }
  std::string h(host);
  if (h.find(':') != std::string::npos)
    return bad("IPv6 hosts must be bracketed, e.g. [::1]:8080");
  in_addr a4{};
  if (::inet_pton(AF_INET, h.c_str(), &a4) != 1)
    return bad("host \"" + h + "\" is not a numeric IPv4 address (use [v6] for IPv6)");
  out.host = h;
  return out;
}

}  // namespace exitrec
