#!/usr/bin/env bash
# Install Debian's chromium for the browser tests of the HTML report, when it is missing.
# Needs root and apt-get (runs `apt-get update` first). Otherwise it says why and the
# browser tests skip; with CS_SYNC_REQUIRE_CHROMIUM=1 (.ci/run) it fails instead.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
fail() {
  echo "chromium: $1; the browser tests of the HTML report will skip" >&2
  [ "${CS_SYNC_REQUIRE_CHROMIUM:-}" = 1 ] && { echo "CS_SYNC_REQUIRE_CHROMIUM=1: stopping" >&2; exit 1; }
  exit 0
}
[ "$(id -u)" = 0 ] || fail "not installed, and installing it needs root (apt-get install chromium)"
command -v apt-get >/dev/null 2>&1 || fail "not installed, and there is no apt-get to install it"
echo "installing Debian's chromium for the browser tests (apt-get)" >&2
apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
  || fail "apt-get install chromium failed"
command -v chromium >/dev/null 2>&1 || fail "installed, but not on PATH"
