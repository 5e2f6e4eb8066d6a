#!/bin/sh
# make demo: a VPN over Erlang distribution between two namespaces
# (examples/tunctl_demo.erl, examples/vpwn.erl). Runs inside the private
# network and mount namespace made by scripts/in-netns: the namespaces the
# demo creates live in its private /run/netns and cannot outlive it.
set -eu
cd "$(dirname "$0")/.."
rc=0
timeout 90 erl -noshell -pa erlang/_build/default/lib/tunctl/ebin -pa examples/ebin \
    -eval 'tunctl_demo:main()' || rc=$?
# Backstop after a crash or a timeout: processes still running in the demo's
# namespaces (all started by the demo), then the namespaces themselves.
for ns in $(ip netns list | cut -d' ' -f1); do
    pids=$(ip netns pids "$ns")
    if [ -n "$pids" ]; then
        echo "demo: stopping leftover processes in $ns: $pids"
        kill $pids 2>/dev/null || true
    fi
    ip netns del "$ns"
done
echo "== interfaces left in the demo's namespace: $(ip -br link | awk '{print $1}' | tr '\n' ' ')"
exit $rc
