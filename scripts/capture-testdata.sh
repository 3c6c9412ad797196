#!/usr/bin/env bash
# Captures the reference frames in testdata/pcap/ from the Linux kernel.
#
# As root: creates the namespace tscap and the veth pair tscap0 (host,
# 10.99.0.1/24) / tscap1 (in tscap, 10.99.0.2/24), turns every offload off so
# captured frames carry full checksums and real MTU-sized segments, captures
# each scenario with tcpdump on tscap0, and tears everything down on exit.
# Idempotent: leftovers of an earlier run are removed first, pcaps overwritten.
# Traffic goes only between the two ends of the pair.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "capture-testdata.sh: must run as root" >&2
	exit 1
fi

for tool in ip tcpdump ping arping ethtool python3; do
	if ! command -v "$tool" >/dev/null; then
		if command -v apt-get >/dev/null; then
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				iproute2 tcpdump iputils-ping arping ethtool python3 >/dev/null
			break
		fi
		echo "capture-testdata.sh: missing $tool" >&2
		exit 1
	fi
done

NS=tscap
HOST_IF=tscap0
NS_IF=tscap1
HOST_IP=10.99.0.1
NS_IP=10.99.0.2
OUT=testdata/pcap
PY=$(command -v python3)

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	# Deleting the namespace destroys tscap1 and with it its peer tscap0.
	ip netns del "$NS" 2>/dev/null || true
	ip link del "$HOST_IF" 2>/dev/null || true
}
trap cleanup EXIT
cleanup # leftovers of an interrupted run

ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"

# No IPv6 on the pair: keeps router/neighbour solicitations out of the captures.
sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1"
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$NS_IF.disable_ipv6=1"

ip addr add "$HOST_IP/24" dev "$HOST_IF"
ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$NS_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link set "$NS_IF" up

offloads=(rx off tx off sg off tso off gso off gro off)
ethtool -K "$HOST_IF" "${offloads[@]}" >/dev/null 2>&1 || ethtool -K "$HOST_IF" rx off tx off
ip netns exec "$NS" ethtool -K "$NS_IF" "${offloads[@]}" >/dev/null 2>&1 ||
	ip netns exec "$NS" ethtool -K "$NS_IF" rx off tx off

mkdir -p "$OUT"

# capture NAME CMD...: runs CMD while tcpdump writes $OUT/NAME.pcap.
# Immediate mode: a buffered capture loses its last block when interrupted.
capture() {
	local name=$1
	shift
	local file="$OUT/$name.pcap" log
	log=$(mktemp)
	rm -f "$file"
	tcpdump -i "$HOST_IF" -s 0 -U --immediate-mode -n -Z root -w "$file" 'not ip6' 2>"$log" &
	local tpid=$!
	pids+=("$tpid")
	for _ in $(seq 100); do
		grep -q 'listening on' "$log" && break
		sleep 0.1
	done
	"$@"
	sleep 0.5 # let the last replies reach the capture
	kill -INT "$tpid"
	wait "$tpid" || true
	echo "$name.pcap: $(grep -E 'packets captured' "$log" || true)"
	rm -f "$log"
}

# ARP: forget the neighbour, then resolve it (request + reply), twice over.
scenario_arp() {
	ip neigh flush dev "$HOST_IF"
	ip netns exec "$NS" ip neigh flush dev "$NS_IF"
	arping -q -c 2 -i "$HOST_IF" "$NS_IP" || true
	ip neigh flush dev "$HOST_IF"
	ping -q -c 1 -W 2 "$NS_IP" >/dev/null
}

scenario_icmp() {
	ping -q -c 3 -i 0.2 -W 2 "$NS_IP" >/dev/null
}

# 4000 data bytes: a 4028-byte datagram, three fragments each way at MTU 1500.
scenario_icmp_frag() {
	ping -q -c 2 -i 0.2 -s 4000 -W 2 "$NS_IP" >/dev/null
}

# UDP: an echo server in the namespace; datagrams of several sizes, the
# largest beyond the MTU so both directions fragment; then one datagram to a
# closed port, which draws an ICMP port unreachable quoting it.
scenario_udp() {
	ip netns exec "$NS" "$PY" - "$NS_IP" <<-'EOF' &
		import socket, sys
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.bind((sys.argv[1], 9000))
		s.settimeout(10)
		for _ in range(6):
		    data, peer = s.recvfrom(65535)
		    s.sendto(data, peer)
	EOF
	local spid=$!
	pids+=("$spid")
	sleep 0.3
	"$PY" - "$NS_IP" <<-'EOF'
		import socket, sys
		c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		c.bind(("10.99.0.1", 40000))
		c.settimeout(5)
		for n in (0, 1, 18, 512, 1472, 3000):
		    msg = bytes(i % 251 for i in range(n))
		    c.sendto(msg, (sys.argv[1], 9000))
		    got, _ = c.recvfrom(65535)
		    assert got == msg, (n, len(got))
		# A closed port: the namespace answers with ICMP port unreachable.
		c.sendto(b"closed", (sys.argv[1], 9999))
	EOF
	wait "$spid"
}

# TCP: 100 KB from a host client to a server in the namespace, 100 KB back,
# then both sides close. Linux's SYN carries MSS, SACK-permitted, timestamps
# and window scale. Payload byte i of each direction is i % 251.
scenario_tcp() {
	ip netns exec "$NS" "$PY" - "$NS_IP" <<-'EOF' &
		import socket, sys
		n = 100_000
		s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.bind((sys.argv[1], 9001))
		s.listen(1)
		s.settimeout(10)
		c, _ = s.accept()
		c.settimeout(10)
		got = bytearray()
		while len(got) < n:
		    b = c.recv(65536)
		    if not b:
		        break
		    got += b
		assert got == bytes(i % 251 for i in range(n)), len(got)
		c.sendall(bytes(i % 251 for i in range(n)))
		c.shutdown(socket.SHUT_WR)
		assert c.recv(1) == b""
		c.close()
	EOF
	local spid=$!
	pids+=("$spid")
	sleep 0.3
	"$PY" - "$NS_IP" <<-'EOF'
		import socket, sys
		n = 100_000
		c = socket.create_connection((sys.argv[1], 9001), timeout=10)
		c.sendall(bytes(i % 251 for i in range(n)))
		got = bytearray()
		while True:
		    b = c.recv(65536)
		    if not b:
		        break
		    got += b
		assert got == bytes(i % 251 for i in range(n)), len(got)
		c.close()
	EOF
	wait "$spid"
}

capture arp scenario_arp
capture icmp scenario_icmp
capture icmp-frag scenario_icmp_frag
capture udp scenario_udp
capture tcp scenario_tcp
ls -l "$OUT"/*.pcap
