// Go-style listen addresses (common/listen_address.h).
#include "common/listen_address.h"

#include <gtest/gtest.h>

namespace exitrec {
namespace {

TEST(ListenAddressTest, GoFormsMapToHostAndPort) {
  struct Case {
    const char* in;
    const char* host;
    int port;
  };
  for (auto c :
       {Case{":8080", "", 8080}, Case{"[::]:9443", "", 9443}, Case{"0.0.0.0:8081", "0.0.0.0", 8081},
        Case{"127.0.0.1:0", "127.0.0.1", 0}, Case{"[::1]:9090", "::1", 9090},
        Case{"[fe80::1]:1", "fe80::1", 1}, Case{"10.1.2.3:65535", "10.1.2.3", 65535}}) {
    auto r = parseListenAddress(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message;
    EXPECT_EQ(r->host, c.host) << c.in;
    EXPECT_EQ(r->port, c.port) << c.in;
  }
}

TEST(ListenAddressTest, BadInputsAreInvalidInputNamingTheValue) {
  for (const char* bad :
       {"8080", ":http", ":70000", "::1:80", "127.0.0.1:", ":-1", "", "[::1:80", "[]:80",
        "[::1]x:80", "localhost:8080", "256.1.1.1:80", "[127.0.0.1]:80", ":80 ", ":+80"}) {
    auto r = parseListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput) << bad;
    EXPECT_NE(r.error().message.find("\"" + std::string(bad) + "\""), std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace exitrec
