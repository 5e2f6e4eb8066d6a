// Command tunctl_bench is the load generator and reference reflector behind
// `make bench` (scripts/bench.sh). It has two subcommands:
//
//	tunctl_bench reflect -dev NAME -addr 198.18.0.1/24 -duration 10s
//	tunctl_bench gen -local 198.18.0.1 -remote 198.18.0.2:9000 \
//	    -size 64 -window 64 -count 2000000 -duration 3s -mode window
//
// reflect is the reference the tuncer reflectors are compared with: it opens
// a TUN device itself (package device, no port program, no Erlang), reads
// packets in bursts after poll(2), swaps the IPv4 addresses and UDP ports and
// writes each reply back with its own write(2).
//
// gen sends UDP datagrams through that device and counts the replies. In
// window mode it keeps -window datagrams in flight; in pingpong mode exactly
// one, for latency. It prints one line of key=value pairs.
//
// Both create devices or send packets: run them only inside a private network
// namespace (scripts/in-netns), with addresses from 198.18.0.0/15.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tunctl_bench reflect|gen [flags] (-h for the flags of each)")
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "reflect":
		err = reflectMain(os.Args[2:])
	case "gen":
		err = genMain(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tunctl_bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
