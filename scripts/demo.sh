#!/usr/bin/env bash
# The README's main command: build tapstack and bring up a stack with every
# service on a TAP device in a fresh network namespace (tsdemo), with the
# Linux kernel on the other side of the TAP as its peer.
#
#   sudo ./scripts/demo.sh          run until Ctrl-C
#   sudo ./scripts/demo.sh --check  talk to it from the kernel side, then stop
#   ./scripts/demo.sh               without root: a simulation instead
#
# The namespace's kernel side is 10.0.0.1/24, the stack 10.0.0.2/24. While it
# runs, try from another shell:
#   sudo ip netns exec tsdemo ping 10.0.0.2
#   echo hi | sudo ip netns exec tsdemo socat - UDP4:10.0.0.2:7
#   sudo ip netns exec tsdemo curl http://10.0.0.2/
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = --check ] && check=true

go build -o tapstack ./cmd/tapstack
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: not root, so no namespace or TAP: running a simulation instead"
	echo "(two stacks on a simulated wire with 1% loss; 'sudo $0' for the real thing)."
	exec ./tapstack sim --seed 1 --loss 1% --reorder 1% --delay 10ms --bytes 4000000 --conns 4
fi
need=()
for p in iproute2 iputils-ping socat curl; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

ns=tsdemo
root=$(mktemp -d)
echo "hello from tapstack's http service" >"$root/index.txt"
scripts/netns.sh up "$ns" --addr 10.0.0.1/24 >/dev/null
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	scripts/netns.sh down "$ns" >/dev/null
	rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

ip netns exec "$ns" ./tapstack up --dev tap0 --addr 10.0.0.2/24 \
	--serve echo=7,discard=9,chargen=19,http=80 --http-root "$root" &
pid=$!
for _ in $(seq 50); do
	ip netns exec "$ns" ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "demo.sh: tapstack exited" >&2; exit 1; }
done

echo "--- from the kernel side (namespace $ns):"
ip netns exec "$ns" ping -c 3 -i 0.2 10.0.0.2
reply=$(echo "hello through tapstack" | ip netns exec "$ns" socat -T 2 - UDP4:10.0.0.2:7)
echo "UDP echo replied: $reply"
[ "$reply" = "hello through tapstack" ]
page=$(ip netns exec "$ns" curl -sf --max-time 5 http://10.0.0.2/index.txt)
echo "HTTP GET replied: $page"
[ "$page" = "hello from tapstack's http service" ]
if $check; then
	echo "demo.sh: ok"
	exit 0
fi
echo "--- tapstack is up; try: sudo ip netns exec $ns ping 10.0.0.2   (Ctrl-C stops it)"
wait "$pid"
