#!/usr/bin/env bash
# The project's one test command (README "Test"; .ci/run calls it).
# As root on Debian it first installs the tools the kernel-peer tests drive.
# TAPSTACK_REQUIRE_ROOT=1 (set by CI) turns a skipped root-only test into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(iproute2 iputils-ping arping tshark tcpdump socat netcat-openbsd curl wrk python3 ethtool)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== go test -race"
go test -race -count=1 -timeout 30m ./...
echo "== bench: vet, tests, -quick (tapstack beside gVisor, smoke sizes)"
(cd bench && go vet ./... && go test -count=1 ./... && go run . -quick)
if [ "$(id -u)" = 0 ]; then
  echo "== demo (the README's main command, non-interactive)"
  ./scripts/demo.sh --check
elif [ "${TAPSTACK_REQUIRE_ROOT:-}" = 1 ]; then
  echo "the demo check needs root (TAPSTACK_REQUIRE_ROOT=1)"; exit 1
fi
