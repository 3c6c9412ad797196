#!/usr/bin/env bash
# netns.sh: a network namespace with a TAP device in it, for demos and manual
# tests of tapstack against the Linux kernel.
#
#   sudo scripts/netns.sh up NAME [--tap tap0] [--addr 10.0.0.1/24] [--user USER] [--mtu 1500]
#   sudo scripts/netns.sh down NAME
#   sudo scripts/netns.sh status NAME
#
# up creates namespace NAME holding a persistent TAP (owned by USER: the user
# who ran sudo by default) whose kernel side has --addr; tapstack opens the TAP
# from inside the namespace and takes the next address (10.0.0.2). The kernel
# in NAME is then the peer: ping, curl, nc against 10.0.0.2 from
# `ip netns exec NAME ...`. Both commands are idempotent: up repairs what is
# missing, down of an absent namespace does nothing.
set -euo pipefail

usage() {
	sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
die() {
	echo "netns.sh: $*" >&2
	exit 1
}

[ $# -ge 2 ] || usage
cmd=$1 name=$2
shift 2
tap=tap0 addr=10.0.0.1/24 mtu=1500
user=${SUDO_USER:-$(id -un)}
while [ $# -gt 0 ]; do
	case $1 in
	--tap) tap=${2:?--tap needs a name}; shift 2 ;;
	--addr) addr=${2:?--addr needs an address/prefix}; shift 2 ;;
	--user) user=${2:?--user needs a user}; shift 2 ;;
	--mtu) mtu=${2:?--mtu needs a number}; shift 2 ;;
	*) usage ;;
	esac
done

case $name in
'' | */* | .*) die "bad namespace name '$name'" ;;
esac
[ ${#tap} -le 15 ] || die "TAP name '$tap' is longer than 15 characters"
[[ $addr =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.([0-9]+)/([0-9]+)$ ]] || die "--addr '$addr' is not an IPv4 address/prefix such as 10.0.0.1/24"
stack_addr="${BASH_REMATCH[1]}.$((BASH_REMATCH[2] + 1))/${BASH_REMATCH[3]}"

[ "$(id -u)" = 0 ] || die "needs root: sudo $0 $cmd $name"
command -v ip >/dev/null || die "needs the ip command (Debian: apt-get install iproute2)"

ns_exists() { [ -e "/run/netns/$name" ]; }

case $cmd in
up)
	if ns_exists; then
		echo "namespace $name: exists"
	else
		ip netns add "$name"
		echo "namespace $name: created"
	fi
	ip -n "$name" link set lo up
	if ip -n "$name" link show "$tap" >/dev/null 2>&1; then
		if ! ip -n "$name" -d link show "$tap" | grep -q 'tun type tap'; then
			die "$tap exists in $name but is not a TAP device; remove it: ip -n $name link del $tap"
		fi
		echo "TAP $tap: exists"
	else
		ip -n "$name" tuntap add "$tap" mode tap user "$user"
		echo "TAP $tap: created, owner $user"
	fi
	ip -n "$name" addr replace "$addr" dev "$tap"
	ip -n "$name" link set "$tap" mtu "$mtu" up
	mac=$(ip -n "$name" -br link show "$tap" | awk '{print $3}')
	cat <<EOF
kernel side: $tap in namespace $name, $addr, MAC $mac, MTU $mtu
tapstack side: open $tap from inside the namespace and use ${stack_addr}, e.g.
  sudo ip netns exec $name tapstack ... (device $tap, address ${stack_addr%/*})
then, from the kernel side: sudo ip netns exec $name ping ${stack_addr%/*}
(the link shows NO-CARRIER until tapstack opens the TAP)
EOF
	;;
down)
	if ns_exists; then
		ip netns del "$name"
		echo "namespace $name: deleted, with its devices"
	else
		echo "namespace $name: absent, nothing to do"
	fi
	;;
status)
	ns_exists || die "no namespace $name"
	ip -n "$name" -br addr show
	;;
*)
	usage
	;;
esac
