#include "metrics/server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "test/metrics/exposition.h"

namespace exitrec {
namespace {

using testing::httpGet;
using testing::parseExposition;

TEST(MetricsServer, ServesTheRegistryOverHttp) {
  Metrics m;
  auto server = MetricsServer::start(m, "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.error().describe();
  int port = (*server)->port();
  ASSERT_GT(port, 0);

  auto first = httpGet(port, "/metrics");
  ASSERT_EQ(first.status, 200) << first.headers;
  EXPECT_NE(first.headers.find("text/plain"), std::string::npos) << first.headers;
  auto e = parseExposition(first.body);
  EXPECT_EQ(e.types["exit_reconciler_misreported_runs_total"], "counter");
  EXPECT_EQ(e.value("leader_election_master_status", {{"name", "kfp-exit-reconciler"}}), 0.0);

  // A standby still serves metrics; leadership and counters show up live.
  m.setLeader(true);
  m.misreportDetected("kfp-v2-hook", "hooked-task-failed");
  auto second = parseExposition(httpGet(port, "/metrics").body);
  EXPECT_EQ(second.value("leader_election_master_status", {{"name", "kfp-exit-reconciler"}}), 1.0);
  EXPECT_EQ(second.value("exit_reconciler_misreported_runs_total",
                         {{"generation", "kfp-v2-hook"}, {"cause", "hooked-task-failed"}}),
            1.0);
  EXPECT_EQ(httpGet(port, "/other").status, 404);
}

TEST(MetricsServer, PortInUseIsAnError) {
  Metrics m;
  auto first = MetricsServer::start(m, "127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.error().describe();
  auto second = MetricsServer::start(m, "127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kPermanent);
  EXPECT_NE(second.error().message.find("cannot listen"), std::string::npos);
}

TEST(MetricsServer, StopsListeningWhenDestroyed) {
  Metrics m;
  int port = 0;
  {
    auto server = MetricsServer::start(m, "127.0.0.1:0");
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
    EXPECT_EQ(httpGet(port, "/metrics").status, 200);
  }
  EXPECT_EQ(httpGet(port, "/metrics").status, 0);  // connection refused
}

TEST(MetricsServer, BadAddressIsAnInvalidInputErrorNamingIt) {
  auto bad = MetricsServer::start(Metrics(), "nonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(bad.error().message.find("nonsense"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace exitrec
