#!/bin/sh
# make demo-reflector: the reflector demo (examples/reflector_demo.erl), inside
# the private network namespace made by scripts/in-netns.
set -eu
cd "$(dirname "$0")/.."
erl -noshell -pa erlang/_build/default/lib/tunctl/ebin -pa examples/ebin -eval 'reflector_demo:main()'
echo "== interfaces left in the demo namespace:"
ip -br link
