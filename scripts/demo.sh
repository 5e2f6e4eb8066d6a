#!/bin/sh
# make demo: runs inside a private network namespace (scripts/in-netns).
set -eu
cd "$(dirname "$0")/.."
erl -noshell -pa erlang/_build/default/lib/tunctl/ebin -pa examples/ebin -eval 'tunctl_demo:main()'
echo "== interfaces left in the demo namespace:"
ip -br link
