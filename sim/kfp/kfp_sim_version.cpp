#include "sim/kfp/kfp_sim_version.h"

#include <array>
#include <utility>

namespace exitrec {
namespace {

constexpr std::array<std::pair<KfpVersion, std::string_view>, 4> kVersions = {{
    {KfpVersion::k2_0To2_3, "2.0-2.3"},
    {KfpVersion::k2_4To2_16, "2.4-2.16"},
    {KfpVersion::k2_17, "2.17"},
    {KfpVersion::kMaster, "master"},
}};

}  // namespace

std::string_view kfpVersionName(KfpVersion v) {
  for (const auto& [version, name] : kVersions) {
    if (version == v)
      return name;
  }
  return "unknown";
}

std::optional<KfpVersion> parseKfpVersion(std::string_view name) {
  for (const auto& [version, n] : kVersions) {
    if (n == name)
      return version;
  }
  return std::nullopt;
}

std::string_view kfpVersionChoices() {
  return "2.0-2.3|2.4-2.16|2.17|master";
}

std::string_view gatewayErrorsName(GatewayErrors g) {
  switch (g) {
    case GatewayErrors::kAuto:
      return "auto";
    case GatewayErrors::kV1:
      return "v1";
    case GatewayErrors::kV2:
      return "v2";
  }
  return "auto";
}

std::optional<GatewayErrors> parseGatewayErrors(std::string_view name) {
  if (name == "auto")
    return GatewayErrors::kAuto;
  if (name == "v1")
    return GatewayErrors::kV1;
  if (name == "v2")
    return GatewayErrors::kV2;
  return std::nullopt;
}

GatewayErrors effectiveGatewayErrors(KfpVersion v, GatewayErrors g) {
  if (g != GatewayErrors::kAuto)
    return g;
  return v == KfpVersion::k2_0To2_3 ? GatewayErrors::kV1 : GatewayErrors::kV2;
}

}  // namespace exitrec
