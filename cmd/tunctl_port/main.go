// Command tunctl_port is the privileged half of tunctl: a port program that
// the Erlang application starts with open_port/2 and {packet, 4} framing. It
// opens TUN/TAP devices, configures them over rtnetlink and moves packets
// between them and the BEAM as ETF terms (doc/protocol.md).
//
// It is the only program that needs CAP_NET_ADMIN:
//
//	setcap cap_net_admin=ep priv/tunctl_port
//
// It writes protocol frames to stdout, logs to stderr, and exits when stdin
// reaches EOF, closing every device it opened.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/policy"
	"github.com/tunctl/tunctl/portproto"
	"github.com/tunctl/tunctl/sandbox"
	"golang.org/x/sys/unix"
)

// systemPolicy is the administrator's policy file. When it exists it is
// always enforced, whatever the command line says: the BEAM chooses the
// flags, so a policy only the flags name would be the BEAM's to skip.
// Builds may move it: -ldflags "-X main.systemPolicy=/path".
var systemPolicy = "/etc/tunctl/policy"

func main() {
	version := flag.Bool("version", false, "print the protocol version and exit")
	quiet := flag.Bool("quiet", false, "log nothing to stderr")
	policyPath := flag.String("policy", "", "policy file limiting what the BEAM may do (doc/security.md)")
	allowNetns := flag.Bool("allow-netns", false, "keep CAP_SYS_ADMIN for {namespace, Path}, if the administrator's policy names namespaces")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: tunctl_port [-version] [-quiet] [-policy FILE] [-allow-netns]")
		os.Exit(1)
	}
	if *version {
		fmt.Println(portproto.Version)
		return
	}
	logger := log.New(os.Stderr, fmt.Sprintf("tunctl_port[%d]: ", os.Getpid()), 0)
	if *quiet {
		logger.SetOutput(nopWriter{})
	}
	// One thread polls stdin and every device; keep it on one OS thread so
	// the runtime never hands its P back and forth around the poll(2), and
	// so that per-thread state (network namespace, effective capabilities
	// while attaching) stays with the loop.
	runtime.LockOSThread()
	// With one P (a port confined to one CPU gets GOMAXPROCS=1), every
	// return from a blocking poll(2) whose P sysmon has retaken goes
	// through the slow path of exitsyscall (a futex hand-off); a second,
	// idle P lets it return at once. Measured in make bench, reflector
	// pinned to one CPU: 0.51 -> 0.61 of the C reference at 64 bytes, 0.44
	// -> 0.53 at 1400 (doc/design.md).
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	pols, err := loadPolicies(systemPolicy, *policyPath)
	if err != nil {
		logger.Printf("policy: %v", err)
		os.Exit(1)
	}
	keep := []int{sandbox.CapNetAdmin}
	if *allowNetns && pols.NamespacesPossible() {
		keep = append(keep, sandbox.CapSysAdmin)
	}
	caller, err := device.CurrentCaller()
	if err != nil {
		logger.Printf("%v", err)
		os.Exit(1)
	}
	if err := sandbox.Restrict(keep...); err != nil {
		logger.Printf("sandbox: %v", err)
		os.Exit(1)
	}
	for fd, name := range []string{"stdin", "stdout"} {
		if err := device.SetNonblock(fd); err != nil {
			logger.Printf("%s: %v", name, err)
			os.Exit(2)
		}
	}
	// The output is bounded (portproto); this keeps the garbage collector
	// from letting the heap grow far past what is live.
	debug.SetMemoryLimit(memoryLimit)
	// TUNCTL_PORT_MERGE=0 turns off merging datagrams into UDP GSO
	// super-packets (device.Tun.WriteBatch), for comparison (make bench).
	merge := os.Getenv("TUNCTL_PORT_MERGE") != "0"
	srv := portproto.NewServer(0, 1, portproto.Env{
		Open: func(name string, flags uint16) (portproto.Device, error) {
			t, err := device.OpenAs(caller, name, flags, merge)
			if err != nil {
				return nil, err
			}
			return t, nil
		},
		Links:  device.Links{},
		Netns:  enterNetns,
		Policy: pols,
		Log:    logger,
	})
	go exitOnStdinHangup(srv, logger)
	if err := srv.Serve(); err != nil {
		if errors.Is(err, unix.EPIPE) {
			return // the BEAM went away while we wrote: same as EOF
		}
		logger.Printf("exiting: %v", err)
		os.Exit(2)
	}
}

// enterNetns enters the namespace, then drops CAP_SYS_ADMIN for good: it
// was kept for this one setns(2).
func enterNetns(path string) error {
	if err := device.EnterNetns(path); err != nil {
		return err
	}
	return sandbox.Drop(sandbox.CapSysAdmin)
}

// memoryLimit is the Go runtime's soft memory limit for the port.
const memoryLimit = 32 << 20

// hangupGrace is how long the serve loop has, once stdin's writer is gone,
// to notice EOF and close its devices itself; then the process exits
// anyway (the kernel closes its descriptors, and devices that were not
// made persistent go away with them). The serve loop notices EOF in every
// state it waits in; this covers a system call that blocks.
const hangupGrace = 700 * time.Millisecond

// exitOnStdinHangup waits for stdin's writer to go away and, if the serve
// loop has not started to end hangupGrace later, exits.
func exitOnStdinHangup(srv *portproto.Server, logger *log.Logger) {
	fds := []unix.PollFd{{Fd: 0, Events: unix.POLLRDHUP}}
	for {
		if _, err := device.Poll(fds, -1); err != nil {
			logger.Printf("poll stdin: %v", err)
			return
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			break
		}
	}
	time.Sleep(hangupGrace)
	if srv.Ending() {
		// Closing its devices: main returns when done, unless a close
		// blocks for good.
		time.Sleep(10 * hangupGrace)
	}
	// No log line: the serve loop may be stuck writing one (stderr full),
	// holding the logger.
	os.Exit(3)
}

// loadPolicies reads the system policy when it exists and the policy named
// on the command line, if any; both are enforced.
func loadPolicies(system, flagged string) (policy.Set, error) {
	var set policy.Set
	if _, err := os.Stat(system); err == nil {
		p, err := policy.Load(system)
		if err != nil {
			return nil, err
		}
		p.System = true
		set = append(set, p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if flagged != "" {
		p, err := policy.Load(flagged)
		if err != nil {
			return nil, err
		}
		set = append(set, p)
	}
	return set, nil
}

type nopWriter struct{}

// Write discards p.
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
