#!/usr/bin/env bash
# Installs, with apt, every Debian 12 package the build and the tests need that
# is not already installed. Safe to run repeatedly; a no-op when all is present.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ ccache pkg-config
  # libraries
  libcpprest-dev libssl-dev nlohmann-json3-dev prometheus-cpp-dev libboost-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev libsimdjson-dev zlib1g-dev libzstd-dev libbrotli-dev
  # tests
  libgtest-dev libgmock-dev python3 python3-yaml python3-kubernetes
  # fuzzing (clang + its sanitizer runtimes), and the format check
  clang libclang-rt-14-dev clang-format
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
