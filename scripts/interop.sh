#!/usr/bin/env bash
# The interop suite at full size: tapstack up in a network namespace with
# the Linux kernel and Debian's tools as peers (ping, curl, python3, wrk,
# tshark), over a TAP device and over the raw backend on a veth pair.
#
#   sudo ./scripts/interop.sh                   every check at full size
#   sudo ./scripts/interop.sh -run Interop/curl  extra go test flags pass on
#
# Full size: ping -f 10000 (56 and 4000 bytes), curl of a 1 GiB random file
# with its sha256 checked and Range requests, TCP echo of 64 MiB in both
# directions at once, 1 GiB to discard, 256 MiB from chargen, UDP echo of
# 1000 datagrams, 1000 concurrent downloads of 1 MiB, wrk -c64 for 10 s,
# tapstack get of 256 MiB from python3's http.server, a tshark check of a
# capture, and over the raw backend ping, curl of 256 MiB, TCP echo and
# discard, UDP echo. It needs about 1.5 GiB free in $TMPDIR (or /tmp) and
# takes about a minute on two cores. Without TAPSTACK_INTEROP_FULL=1,
# `go test -run Interop ./cmd/tapstack` runs the same checks at CI sizes.
#
# It prints each check's throughput at the end (MB/s of 10^6 bytes), with
# the TCP retransmissions and timeouts of each side during the check and
# the frames the kernel dropped before they reached the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "interop.sh: namespaces, TAP and veth devices need root: run 'sudo $0'" >&2
	exit 2
fi
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

pkgs=(iproute2 iputils-ping ethtool curl python3 tshark wrk)
if command -v apt-get >/dev/null; then
	missing=()
	for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing: ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
fi

log=$(mktemp -t tapstack-interop.XXXXXX)
status=0
TAPSTACK_INTEROP_FULL=1 TAPSTACK_REQUIRE_ROOT=1 \
	go test -count=1 -run Interop -v -timeout 60m "$@" ./cmd/tapstack 2>&1 | tee "$log" || status=$?

echo
echo "== throughput (MB/s = 10^6 bytes per second)"
grep -o 'THROUGHPUT .*' "$log" | sed 's/^THROUGHPUT //' || echo "(none measured)"
echo "full log: $log"
exit "$status"
