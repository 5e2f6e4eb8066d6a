#!/bin/sh
# Install what building and testing tunctl needs on a Debian machine:
# Debian's Erlang/OTP and rebar3, iproute2, ping, setcap, gcc (go test -race,
# make bench's C reference), iperf3 (make bench), and the Go modules.
# Idempotent: installs only what is missing.
set -eu
pkgs="erlang-nox erlang-dev erlang-common-test erlang-eunit erlang-dialyzer erlang-tools erlang-edoc rebar3 iproute2 iputils-ping libcap2-bin util-linux procps elixir git iperf3 gcc libc6-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
go mod download
