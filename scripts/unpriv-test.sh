#!/bin/sh
# The unprivileged path, for real: inside a private mount+net namespace
# (scripts/in-netns), a fresh /dev/net/tun, a setcap'd copy of tunctl_port
# and a BEAM running as uid 65534 with no capabilities. Checks are in
# erlang/test/unpriv_check.erl.
set -eu
cd "$(dirname "$0")/.."
[ -n "${TUNCTL_OUTER_NETNS:-}" ] || { echo "run me through scripts/in-netns" >&2; exit 1; }
work=/tmp/tunctl-unpriv
mkdir -p "$work"
# Our own tmpfs: not nosuid (file capabilities need that), gone with the namespace.
mount -t tmpfs -o mode=755 tunctl-unpriv "$work"
mount -t tmpfs -o mode=755 tunctl-devnet /dev/net
mknod -m 666 /dev/net/tun c 10 200

cp priv/tunctl_port "$work/tunctl_port"
cp priv/tunctl_port "$work/tunctl_port.nocap"
setcap cap_net_admin=ep "$work/tunctl_port"
cp -r erlang/_build/default/lib/tunctl/ebin "$work/ebin"
erlc -o "$work" erlang/test/unpriv_check.erl erlang/test/tunctl_test_lib.erl
cat > "$work/policy" <<'POLICY'
# what an unprivileged BEAM may do through the binary
name_prefix   up-
max_devices   8
allow_address 198.18.0.0/15
allow_address 2001:db8::/32
allow_persist false
POLICY
chmod -R a+rX "$work"
# Devices the unprivileged BEAM must not take over: a root-made ownerless
# one and another user's multi-queue one (gone with the namespace).
ip tuntap add dev up-rootless mode tun
ip tuntap add dev up-other mode tun multi_queue user 1000

setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    env HOME="$work" UNPRIV_DIR="$work" \
    erl -noshell -pa "$work/ebin" -pa "$work" \
        -tunctl port_program "\"$work/tunctl_port\"" \
        -eval 'unpriv_check:main()'
