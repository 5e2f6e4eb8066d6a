package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto"
	"github.com/tunctl/tunctl/portproto/porttest"
)

var portBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tunctl-it")
	if err != nil {
		panic(err)
	}
	portBinary = filepath.Join(dir, "tunctl_port")
	build := exec.Command("go", "build", "-o", portBinary, "../cmd/tunctl_port")
	if old := os.Getenv("TUNCTL_TEST_BINARY"); old != "" {
		// Another build (an older one, to see a test fail without a fix).
		build = exec.Command("cp", old, portBinary)
	}
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make builds it (the sandbox needs it)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireNetns refuses to touch the network outside a private namespace.
func requireNetns(t *testing.T) {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	outer := os.Getenv("TUNCTL_OUTER_NETNS")
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root (CAP_NET_ADMIN)"
	case err != nil || outer == "" || self == outer:
		reason = "refusing to create devices outside a private network namespace; run under scripts/in-netns"
	}
	if reason == "" {
		return
	}
	if os.Getenv("TUNCTL_REQUIRE_NETNS") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

// port is a running tunctl_port spoken to as the BEAM would.
type port struct {
	*porttest.Client
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, once done is closed
}

func startPort(t *testing.T, args ...string) *port {
	t.Helper()
	return startPortCmd(t, exec.Command(portBinary, args...))
}

// startPortCmd starts cmd (a tunctl_port, possibly behind setpriv) as a
// port whose frames are read in the background.
func startPortCmd(t *testing.T, cmd *exec.Cmd) *port {
	t.Helper()
	return spawnPort(t, cmd, porttest.NewClient)
}

// startSyncPort starts a port whose output the test reads only when it
// asks for a frame (a reader that stops reading).
func startSyncPort(t *testing.T, args ...string) *port {
	t.Helper()
	return spawnPort(t, exec.Command(portBinary, args...), porttest.NewSyncClient)
}

func spawnPort(t *testing.T, cmd *exec.Cmd, client func(testing.TB, io.Writer, io.Reader) *porttest.Client) *port {
	t.Helper()
	requireNetns(t)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &port{Client: client(t, stdin, stdout), t: t, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	// a real device sends packets of its own (IPv6 router solicitations)
	p.Lenient = true
	p.Timeout = 3 * time.Second
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		stdin.Close()
		if _, gone := p.exited(3 * time.Second); !gone {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	hello, ok := etf.TaggedTuple(p.Next(), "tunctl_port", 3)
	require.True(t, ok, "handshake")
	v, _ := etf.AsInt(hello[1])
	require.EqualValues(t, portproto.Version, v)
	return p
}

// exited waits up to d for the port to exit: how long it took, and whether
// it did.
func (p *port) exited(d time.Duration) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-p.done:
		return time.Since(start), true
	case <-time.After(d):
		return d, false
	}
}

// errorReason returns the reason of {error, Reason}.
func errorReason(t etf.Term) string {
	if r := porttest.ErrorOf(t); r != "" {
		return r
	}
	return fmt.Sprintf("not an error: %v", t)
}

func open(p *port, ref int, name string, flags ...string) string {
	p.t.Helper()
	info, ok := etf.AsTuple(p.MustOK(etf.Tuple(etf.Atom("open"), ref, []byte(name), porttest.Atoms(flags...))))
	require.True(p.t, ok)
	n, _ := etf.AsBinary(info[0])
	return string(n)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
