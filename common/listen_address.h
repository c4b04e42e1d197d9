#pragma once
// One parser for Go-style listen addresses (--health-addr, --metrics-addr,
// --webhook-addr), with Go's meaning (net.Listen("tcp", addr)):
//
//   ":PORT", "[::]:PORT"  all addresses of both families (one dual-stack
//                         IPv6 socket accepting IPv4 too; host "")
//   "0.0.0.0:PORT"        all IPv4 addresses only
//   "127.0.0.1:P", "[::1]:P", any numeric IP literal: that address only
//
// IPv6 literals must be bracketed. Host names are refused (a listener binds
// addresses; resolving a name at start-up would pick one family silently).
// Errors are kInvalidInput and quote the value.

#include <string>
#include <string_view>

#include "common/result.h"

namespace exitrec {

struct ListenAddress {
  // Numeric IP literal without brackets, or "" for all addresses of both
  // families (HttpServer binds "::" dual-stack, falling back to IPv4 on a
  // host without IPv6).
  std::string host;
  int port = 0;
};

Result<ListenAddress> parseListenAddress(std::string_view address);

}  // namespace exitrec
