#!/usr/bin/env bash
# Provides Debian's Prometheus 2.42 binaries (promtool, and the prometheus
# server for local end-to-end checks) without installing or running the
# daemon: the .deb is fetched with `apt-get download` and unpacked with
# `dpkg -x` into a cache directory.
#
#   scripts/prometheus-tools.sh promtool [ARGS...]   run promtool
#   scripts/prometheus-tools.sh prometheus [ARGS...] run the server binary
#   scripts/prometheus-tools.sh path promtool|prometheus  print the binary's path
#
# Cache: $EXITREC_TOOLS_CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/exitrec.
# Exits 2 with a message when the package cannot be obtained.
set -euo pipefail

CACHE="${EXITREC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exitrec}"
DEST="$CACHE/prometheus-deb"
PKG=prometheus

ensure() {
  if [ -x "$DEST/usr/bin/promtool" ] && [ -x "$DEST/usr/bin/prometheus" ]; then
    return 0
  fi
  mkdir -p "$CACHE"
  # Parallel test runs may race to unpack: serialize, then re-check.
  exec 9>"$CACHE/.prometheus-deb.lock"
  flock 9
  if [ -x "$DEST/usr/bin/promtool" ] && [ -x "$DEST/usr/bin/prometheus" ]; then
    return 0
  fi
  local tmp
  tmp="$(mktemp -d "$CACHE/download.XXXXXX")"
  # apt-get download writes into the current directory. As root, apt warns that
  # the _apt user cannot write there; the download still succeeds.
  if ! (cd "$tmp" && apt-get download -qq "$PKG" >/dev/null 2>&1); then
    echo "prometheus-tools: apt-get download $PKG failed; refreshing package lists" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq >/dev/null
    if ! (cd "$tmp" && apt-get download -qq "$PKG" >/dev/null 2>&1); then
      rm -rf "$tmp"
      echo "prometheus-tools: cannot download Debian package '$PKG'" >&2
      exit 2
    fi
  fi
  local deb
  deb="$(ls "$tmp"/${PKG}_*.deb)"
  rm -rf "$DEST.new"
  dpkg -x "$deb" "$DEST.new"
  rm -rf "$DEST"
  mv "$DEST.new" "$DEST"
  rm -rf "$tmp"
  if [ ! -x "$DEST/usr/bin/promtool" ]; then
    echo "prometheus-tools: $deb has no usr/bin/promtool" >&2
    exit 2
  fi
}

cmd="${1:-}"
case "$cmd" in
  promtool|prometheus)
    shift
    ensure
    exec "$DEST/usr/bin/$cmd" "$@"
    ;;
  path)
    ensure
    case "${2:-}" in
      promtool|prometheus) echo "$DEST/usr/bin/$2" ;;
      *) echo "usage: $0 path promtool|prometheus" >&2; exit 64 ;;
    esac
    ;;
  *)
    echo "usage: $0 promtool|prometheus [ARGS...] | path promtool|prometheus" >&2
    exit 64
    ;;
esac
