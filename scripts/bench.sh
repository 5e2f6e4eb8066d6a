#!/bin/bash
# make bench: runs inside a private network namespace (scripts/in-netns).
#
# For each packet size and each reflector -- (1) c: scripts/bench/reflect.c,
# read/swap/write in C on the raw TUN fd, the reference of every ratio; (2)
# direct: the same in Go (tunctl_bench reflect); (3) tuncer {active, true};
# (4) tuncer {active, N}; (5) batch: tuncer {deliver, batch} + {active, N},
# replies with sendv/2; (6) batch_nomerge: the same with the port writing
# every datagram alone (TUNCTL_PORT_MERGE=0: what merging runs of datagrams
# into UDP GSO super-packets buys); (7) tuncer passive recv/3 -- it starts the reflector
# pinned to CPU 0, measures its idle CPU, then runs the UDP generator pinned
# to CPU 1 (window mode, then ping-pong) and the reflector's CPU (utime +
# stime of its whole process tree: for tuncer, the BEAM and its tunctl_port)
# over the window run. Then TCP (iperf3) between two namespaces: over the
# bare veth, and through the vpwn tunnel per packet and with offloads and
# batches (examples/bench_tcp.erl). Then the Go data-path benchmarks.
#
# Knobs (environment):
#   BENCH_SIZES="64 1400"  IP packet sizes, bytes
#   BENCH_CASES="c direct active_true active_n batch batch_nomerge passive"
#   BENCH_WINDOW=64        datagrams in flight in window mode
#   BENCH_SECS=3           seconds of window-mode load per case
#   BENCH_COUNT=2000000    at most this many datagrams per window run
#   BENCH_PP_SECS=1        seconds of ping-pong per case
#   BENCH_IDLE_SECS=2      seconds of idle CPU measurement per case
#   BENCH_ACTIVE_N=128     N of {active, N}
#   BENCH_TCP_SECS=4       seconds of each iperf3 run; 0 skips the TCP case
#   BENCH_PAIRED=1         run the C reference again right before each case and
#                          take the ratio to that run (0: to the size's one c run)
#   BENCH_REPEAT=1         run each case (and its paired reference) this many
#                          times and keep the best of each: a shared machine
#   BENCH_GOBENCH=1        0 skips the Go benchmarks
#   BENCH_MSACC=0          1 prints the BEAM's microstate accounting per case
#   BENCH_STRICT=0         1 exits 1 when a target of issue 13 is missed
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

if [ -z "${TUNCTL_OUTER_NETNS:-}" ] || [ "$(readlink /proc/self/ns/net)" = "$TUNCTL_OUTER_NETNS" ]; then
    echo "bench.sh: run me through scripts/in-netns (make bench)" >&2
    exit 1
fi

SIZES=${BENCH_SIZES:-64 1400}
CASES=${BENCH_CASES:-c direct active_true active_n batch batch_nomerge passive}
WINDOW=${BENCH_WINDOW:-64}
SECS=${BENCH_SECS:-3}
COUNT=${BENCH_COUNT:-2000000}
PP_SECS=${BENCH_PP_SECS:-1}
IDLE_SECS=${BENCH_IDLE_SECS:-2}
ACTIVE_N=${BENCH_ACTIVE_N:-128}
TCP_SECS=${BENCH_TCP_SECS:-4}
PAIRED=${BENCH_PAIRED:-1}
REPEAT=${BENCH_REPEAT:-1}
GOBENCH=${BENCH_GOBENCH:-1}
STRICT=${BENCH_STRICT:-0}

DEV=tbench0
LOCAL=198.18.0.1
REMOTE=198.18.0.2:9000
PREFIX=24
EBIN=erlang/_build/default/lib/tunctl/ebin
HZ=$(getconf CLK_TCK)
# a reflector exits on its own after this long even if this script dies
LIFE=$((IDLE_SECS + SECS + PP_SECS + 30))

TMP=$(mktemp -d)
REFL=""
cleanup() {
    stop_reflector || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building tunctl_bench"
CGO_ENABLED=0 go build -o "$TMP/tunctl_bench" ./cmd/tunctl_bench
BENCH="$TMP/tunctl_bench"
echo "== building the C reference reflector (gcc -O2)"
gcc -O2 -Wall -o "$TMP/creflect" scripts/bench/reflect.c

# The pids of the process tree rooted at $1 (itself included).
tree() {
    local all
    all=$(ps -e -o pid=,ppid=)
    awk -v root="$1" '{ kids[$2] = kids[$2] " " $1 }
        END { todo[1] = root; n = 1
              while (n > 0) { p = todo[n--]; print p
                  m = split(kids[p], k, " "); for (i = 1; i <= m; i++) todo[++n] = k[i] } }' <<<"$all"
}

# utime + stime, in clock ticks, of the process tree rooted at $1.
ticks() {
    local t=0 p f
    for p in $(tree "$1"); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) }     # fields from 3 on (comm may hold spaces)
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

now_ns() { date +%s%N; }

# CPU % of the tree rooted at $1 between ($2 ticks, $3 ns) and now.
cpu_since() {
    local t1 n1
    t1=$(ticks "$1")
    n1=$(now_ns)
    awk -v dt=$((t1 - $2)) -v dn=$((n1 - $3)) -v hz="$HZ" 'BEGIN { printf "%.1f", (dn > 0 ? 100 * dt / hz / (dn / 1e9) : 0) }'
}

start_reflector() {
    local kind=$1
    case $kind in
    c)
        taskset -c 0 "$TMP/creflect" "$DEV" "$LIFE" >"$TMP/refl.out" 2>"$TMP/refl.err" &
        ;;
    direct)
        taskset -c 0 "$BENCH" reflect -dev "$DEV" -addr "$LOCAL/$PREFIX" -duration "${LIFE}s" \
            >"$TMP/refl.out" 2>"$TMP/refl.err" &
        ;;
    *)
        # batch_nomerge: batch with the port writing each datagram alone
        BENCH_MSACC=$([ "${BENCH_MSACC:-0}" = 1 ] && echo "$((IDLE_SECS * 1000 + 300)),$((SECS * 1000 - 600))" || echo "") \
        TUNCTL_PORT_MERGE=$([ "$kind" = batch_nomerge ] && echo 0 || echo 1) \
        taskset -c 0 erl -noshell -pa "$EBIN" -pa examples/ebin \
            -run bench_reflector main "${kind%_nomerge}" "$DEV" "$LOCAL" "$PREFIX" "$LIFE" "$ACTIVE_N" \
            >"$TMP/refl.out" 2>"$TMP/refl.err" &
        ;;
    esac
    REFL=$!
    local i
    for i in $(seq 200); do
        if [ "$kind" = c ] && ip link show dev "$DEV" >/dev/null 2>&1 &&
            ! ip -br addr show dev "$DEV" | grep -q "$LOCAL/$PREFIX"; then
            ip addr add "$LOCAL/$PREFIX" dev "$DEV" && ip link set "$DEV" up
        fi
        if ip -br addr show dev "$DEV" 2>/dev/null | grep -q "$LOCAL/$PREFIX"; then
            sleep 0.2   # let the link settle (IPv6 autoconf chatter)
            return 0
        fi
        if ! kill -0 "$REFL" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "bench.sh: reflector $kind did not come up:" >&2
    cat "$TMP/refl.err" >&2
    return 1
}

# Stop the reflector (SIGTERM; the BEAM stops, its port sees EOF and closes
# the device), then make sure the tree is gone, killing leftovers by pid.
stop_reflector() {
    [ -n "$REFL" ] || return 0
    local pids i p
    pids=$(tree "$REFL")
    kill -TERM "$REFL" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$REFL" 2>/dev/null || break
        sleep 0.05
    done
    for p in $pids; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    wait "$REFL" 2>/dev/null || true
    REFL=""
    for i in $(seq 100); do
        ip link show dev "$DEV" >/dev/null 2>&1 || return 0
        sleep 0.05
    done
    echo "bench.sh: $DEV still exists after the reflector stopped" >&2
    return 1
}

# Value of key $2 in the key=value line $1.
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

gen() {
    taskset -c 1 "$BENCH" gen -local "$LOCAL" -remote "$REMOTE" -size "$1" -window "$WINDOW" \
        -count "$COUNT" -duration "$2" -mode "$3"
}

declare -A PPS LOST IDLE ROW REF
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "== reflectors: CPU 0 (taskset -c 0), generator: CPU 1, window $WINDOW, ${SECS}s / ${COUNT} datagrams max per run, $(nproc) CPUs"
for size in $SIZES; do
    for kind in $CASES; do
      for rep in $(seq "$REPEAT"); do
        if [ "$PAIRED" = 1 ] && [ "$kind" != c ]; then
            # the reference again, right before this case: the machine's
            # load changes between cases, the pair is what is compared
            start_reflector c
            w=$(gen "$size" "${SECS}s" window)
            stop_reflector
            echo "c (paired with $kind, run $rep) $size: $w"
            rref=$(kv "$w" pps)
        fi
        start_reflector "$kind"
        t0=$(ticks "$REFL"); n0=$(now_ns)
        sleep "$IDLE_SECS"
        idle=$(cpu_since "$REFL" "$t0" "$n0")
        t0=$(ticks "$REFL"); n0=$(now_ns)
        w=$(gen "$size" "${SECS}s" window)
        cpu=$(cpu_since "$REFL" "$t0" "$n0")
        p=$(gen "$size" "${PP_SECS}s" pingpong)
        # datagrams the kernel dropped at the device's queue (it holds 500)
        kdrop=$(awk -v d="$DEV:" '{ l = $0; sub(/:/, ": ", l); split(l, f, " "); if (f[1] == d) print f[13] }' /proc/net/dev)
        stop_reflector
        if [ "${BENCH_MSACC:-0}" = 1 ] && [ "$kind" != c ] && [ "$kind" != direct ]; then
            echo "== $kind $size: msacc during the window run"
            grep -v '^ready' "$TMP/refl.out" || true
        fi
        echo "$kind $size (run $rep): $w"
        echo "$kind $size (run $rep): $p"
        echo "$kind $size (run $rep): device tx_dropped=$kdrop"
        # best of BENCH_REPEAT runs, case and its paired reference each
        if [ "$rep" -gt 1 ] && [ "$(kv "$w" pps)" -le "${PPS[$kind.$size]}" ]; then
            [ "$PAIRED" = 1 ] && [ "$kind" != c ] && [ "$rref" -gt "${REF[$kind.$size]}" ] && REF[$kind.$size]=$rref
            continue
        fi
        [ "$PAIRED" = 1 ] && [ "$kind" != c ] &&
            { [ "$rep" = 1 ] || [ "$rref" -gt "${REF[$kind.$size]}" ]; } && REF[$kind.$size]=$rref
        PPS[$kind.$size]=$(kv "$w" pps)
        LOST[$kind.$size]=$(kv "$w" lost)
        IDLE[$kind.$size]=$idle
        # CPU time per answered datagram: unlike pps, hardly changed by
        # other load on the machine
        us=$(awk -v c="$cpu" -v p="$(kv "$w" pps)" 'BEGIN { printf "%.2f", (p > 0 ? c * 1e4 / p : 0) }')
        ROW[$kind.$size]=$(printf '%-14s %5s %9s %9s %7s %6s %6s %8s %8s %8s %8s %7s %7s %7s' "$kind" "$size" \
            "$(kv "$w" pps)" "${REF[$kind.$size]:-${PPS[c.$size]:--}}" "@RATIO@" "$(kv "$w" lost)" "$kdrop" "$(kv "$w" p50_us)" "$(kv "$w" p99_us)" \
            "$(kv "$p" p50_us)" "$(kv "$p" p99_us)" "$cpu" "$us" "$idle")
      done
    done
done

ratio() {
    local ref=${REF[$1.$2]:-${PPS[c.$2]:-}}
    if [ -z "$ref" ] || [ "$ref" = 0 ]; then echo "-"; return; fi
    awk -v a="${PPS[$1.$2]}" -v b="$ref" 'BEGIN { printf "%.2f", a / b }'
}

echo
echo "== results (pps: answered datagrams/s in window mode; c_pps: the C reference's, run just"
echo "   before this case (BENCH_PAIRED=1), ratio: pps / c_pps;"
echo "   kdrop: dropped by the kernel at the device queue (window + ping-pong runs);"
echo "   rtt: window-mode round trip under load; pp: ping-pong round trip; cpu: reflector tree,"
echo "   % of one CPU, during the window run; cpu_us: that CPU time per answered datagram, µs;"
echo "   idle: same as cpu% with the device up and no traffic)"
printf '%-14s %5s %9s %9s %7s %6s %6s %8s %8s %8s %8s %7s %7s %7s\n' case size pps c_pps ratio lost kdrop rtt_p50 rtt_p99 pp_p50 pp_p99 cpu% cpu_us idle%
for size in $SIZES; do
    for kind in $CASES; do
        echo "${ROW[$kind.$size]/@RATIO@/$(ratio "$kind" "$size")}"
    done
done

declare -A MBPS
if [ "$TCP_SECS" != 0 ]; then
    echo
    echo "== TCP: iperf3 -t $TCP_SECS between two namespaces (examples/bench_tcp.erl), MTU 1500, not pinned"
    timeout $((6 * TCP_SECS + 120)) erl -noshell -pa "$EBIN" -pa examples/ebin \
        -run bench_tcp main "$TCP_SECS" >"$TMP/tcp.out" 2>&1 || { cat "$TMP/tcp.out"; echo "bench.sh: TCP case failed" >&2; }
    cat "$TMP/tcp.out"
    while read -r tag name rest; do
        [ "$tag" = tcp ] || continue
        MBPS[$name]=$(kv "$rest" mbps)
    done <"$TMP/tcp.out"
    printf '%-14s %10s %7s\n' case Mbit/s ratio
    for name in veth vpwn_packet vpwn_offload; do
        r=$(awk -v a="${MBPS[$name]:-0}" -v b="${MBPS[veth]:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
        printf '%-14s %10s %7s\n' "$name" "${MBPS[$name]:--}" "$r"
    done
fi

if [ "$GOBENCH" = 1 ]; then
    echo
    echo "== Go data-path benchmarks (-benchmem: allocations per packet)"
    go test -run '^$' -bench . -benchmem ./etf/ ./portproto/ ./gro/
fi

echo
echo "== targets (issue 13; ratios to c in this run)"
missed=0
check() {
    if [ "$1" = 1 ]; then echo "  met:     $2"; else echo "  MISSED:  $2"; missed=1; fi
}
target() { # case size min-ratio
    [ -n "${PPS[$1.$2]:-}" ] && [ -n "${PPS[c.$2]:-}" ] || return 0
    local r
    r=$(ratio "$1" "$2")
    check "$(awk -v r="$r" -v m="$3" -v l="${LOST[$1.$2]}" 'BEGIN { print (r >= m && l == 0) ? 1 : 0 }')" \
        "$1 at $2 bytes >= $3 x c with zero loss (ratio $r, lost ${LOST[$1.$2]})"
}
target active_true 64 0.55
target active_n 64 0.55
target batch 64 0.80
target batch 1400 0.70
if [ -n "${MBPS[vpwn_offload]:-}" ] && [ -n "${MBPS[veth]:-}" ]; then
    r=$(awk -v a="${MBPS[vpwn_offload]}" -v b="${MBPS[veth]}" 'BEGIN { printf "%.3f", a / b }')
    check "$(awk -v r="$r" 'BEGIN { print (r >= 0.15) ? 1 : 0 }')" \
        "TCP through vpwn with offloads >= 0.15 x bare veth (ratio $r)"
fi
for size in $SIZES; do
    for kind in $CASES; do
        [ "$kind" = direct ] || [ "$kind" = c ] && continue
        check "$(awk -v i="${IDLE[$kind.$size]}" 'BEGIN { print (i <= 1.0) ? 1 : 0 }')" \
            "$kind at $size bytes: an idle device costs ~0% CPU (${IDLE[$kind.$size]}% over ${IDLE_SECS}s)"
    done
done
echo "== machine: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"
if [ "$STRICT" = 1 ] && [ "$missed" = 1 ]; then
    exit 1
fi
exit 0
