#!/bin/sh
# Ecosystem tests (make test-ecosystem): a throwaway rebar3 project and a
# throwaway mix project, each depending on this repository as a git
# dependency, built with the ordinary commands (`rebar3 compile`, mix's
# rebar3 manager), and each passing a test that creates a TUN device and
# moves a packet through it. The projects are scripts/ecosystem/*, copied to
# a temporary directory.
#
# The dependency is a snapshot of this checkout (tracked files plus new,
# not ignored ones, as they are in the work tree) committed to a temporary
# git repository on branch main: on a clean clone (CI) that is exactly
# HEAD; during development it includes what is not committed yet. Build
# products (priv/tunctl_port, _build) are ignored files, so the dependency
# starts without them and its hooks must build them.
#
# Runs inside scripts/in-netns (no network: nothing can be fetched from Hex).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
REBAR3=${REBAR3:-rebar3}
WORK=$(mktemp -d /tmp/tunctl-ecosystem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
t0=$(date +%s)

step() { echo "== ecosystem: $*"; }

step "snapshot of $ROOT"
mkdir "$WORK/tunctl"
( cd "$ROOT" && git ls-files -z -c -o --exclude-standard ) |
    ( cd "$ROOT" && xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done; true' sh ) |
    ( cd "$ROOT" && tar --null -T - -cf - ) | tar -xf - -C "$WORK/tunctl"
(
    cd "$WORK/tunctl"
    git init -q -b main
    git add -A
    git -c user.name=tunctl-ecosystem -c user.email=tunctl@example.invalid commit -qm snapshot
)
GIT_URL="file://$WORK/tunctl"

# ---------------------------------------------------------------- rebar3
step "rebar3 project with {tunctl, {git, \"$GIT_URL\", {branch, \"main\"}}}"
cp -r "$ROOT/scripts/ecosystem/rebar3" "$WORK/rebar3_consumer"
cd "$WORK/rebar3_consumer"
sed "s|@TUNCTL_GIT@|$GIT_URL|" rebar.config.in > rebar.config
rm rebar.config.in
$REBAR3 compile
port="$WORK/rebar3_consumer/_build/default/lib/tunctl/priv/tunctl_port"
if [ ! -x "$port" ]; then
    echo "rebar3 compile did not build $port" >&2
    exit 1
fi
step "rebar3 compile built $(file -b "$port" 2>/dev/null | cut -d, -f1-2 || echo "$port")"
$REBAR3 eunit
t1=$(date +%s)

# ------------------------------------------------------------------- mix
step "mix project with {:tunctl, git: \"$GIT_URL\", branch: \"main\", manager: :rebar3}"
cp -r "$ROOT/scripts/ecosystem/mix" "$WORK/mix_consumer"
cd "$WORK/mix_consumer"
sed "s|@TUNCTL_GIT@|$GIT_URL|" mix.exs.in > mix.exs
rm mix.exs.in
# No Hex and no network: mix uses Debian's rebar3 and its own private home.
export MIX_REBAR3="$(command -v "$REBAR3")" MIX_HOME="$WORK/mix_home" HEX_OFFLINE=1 MIX_ENV=test
# (git's progress output from deps.get is kept out of the log unless it fails)
mix deps.get > "$WORK/deps-get.log" 2>&1 || { cat "$WORK/deps-get.log"; exit 1; }
grep -v '^remote:' "$WORK/deps-get.log" || true
mix test
t2=$(date +%s)

step "passed: rebar3 $((t1 - t0)) s, mix $((t2 - t1)) s"
