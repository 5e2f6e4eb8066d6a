#!/bin/sh
# The common_test suites as uid 65534 with only a setcap'd tunctl_port (not
# part of make test: the suites' own setup steps, such as writing
# /proc/sys/net/ipv6/conf/*/disable_ipv6 or `ip link del`, need root, so some
# cases fail for reasons that are not tunctl's). Run: make test-unpriv-ct
set -eu
cd "$(dirname "$0")/.."
[ -n "${TUNCTL_OUTER_NETNS:-}" ] || { echo "run me through scripts/in-netns" >&2; exit 1; }
work=/tmp/tunctl-unpriv-ct
mkdir -p "$work"
mount -t tmpfs -o mode=755 tunctl-unpriv "$work"
mount -t tmpfs -o mode=755 tunctl-devnet /dev/net
mknod -m 666 /dev/net/tun c 10 200
mkdir -p "$work/priv" "$work/logs"
cp priv/tunctl_port "$work/priv/tunctl_port"
cp -r erlang/_build/default/lib/tunctl/ebin "$work/ebin"
cp -r erlang/test "$work/test"
chown -R 65534:65534 "$work"
chown root:root "$work/priv/tunctl_port"
setcap cap_net_admin=ep "$work/priv/tunctl_port"   # after chown: chown clears file capabilities
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  env HOME="$work" ct_run -noshell -pa "$work/ebin" -dir "$work/test" -suite ${SUITES:-tuncer_SUITE tuncer_config_SUITE tuncer_fault_SUITE} -logdir "$work/logs" \
  -erl_args -tunctl port_program "\"$work/priv/tunctl_port\"" -env TUNCTL_CYCLES 300 > "$work/out.txt" 2>&1 || true
grep -E "TEST COMPLETE|failed on|Reason" "$work/out.txt"
# ct_run names its node, which starts an epmd daemon in this namespace: stop it.
epmd -kill >/dev/null 2>&1 || true
