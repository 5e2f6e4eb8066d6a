package test

import (
	"bufio"
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
)

var portBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tunctl-it")
	if err != nil {
		panic(err)
	}
	portBinary = filepath.Join(dir, "tunctl_port")
	build := exec.Command("go", "build", "-o", portBinary, "../cmd/tunctl_port")
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
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	frames chan etf.Term
	id     int
}

func startPort(t *testing.T, args ...string) *port {
	t.Helper()
	requireNetns(t)
	cmd := exec.Command(portBinary, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &port{t: t, cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), frames: make(chan etf.Term, 4096)}
	go p.readFrames()
	t.Cleanup(func() {
		p.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	hello, ok := etf.TaggedTuple(p.next(), "tunctl_port", 3)
	require.True(t, ok, "handshake")
	v, _ := etf.AsInt(hello[1])
	require.EqualValues(t, 1, v)
	return p
}

func (p *port) readFrames() {
	defer close(p.frames)
	for {
		b, err := portproto.ReadFrame(p.out)
		if err != nil {
			return
		}
		term, err := etf.Decode(b)
		if err != nil {
			panic(fmt.Sprintf("port sent invalid ETF %x: %v", b, err))
		}
		p.frames <- term
	}
}

func (p *port) raw(b []byte) {
	p.t.Helper()
	_, err := p.stdin.Write(portproto.AppendFrame(nil, b))
	require.NoError(p.t, err)
}

func (p *port) send(term etf.Term) {
	p.t.Helper()
	b, err := etf.Encode(term)
	require.NoError(p.t, err)
	p.raw(b)
}

func (p *port) next() etf.Term {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		require.True(p.t, ok, "port closed its output")
		return f
	case <-time.After(3 * time.Second):
		p.t.Fatal("no frame from the port within 3s")
	}
	return nil
}

// nextPacket skips frames until a {tuntap, Ref, Packet} whose packet satisfies keep.
func (p *port) nextPacket(ref int, keep func([]byte) bool) []byte {
	p.t.Helper()
	for {
		tu, ok := etf.TaggedTuple(p.next(), "tuntap", 3)
		if !ok {
			continue
		}
		r, _ := etf.AsInt(tu[1])
		pkt, _ := etf.AsBinary(tu[2])
		if int(r) == ref && keep(pkt) {
			return pkt
		}
	}
}

func (p *port) call(cmd etf.Term) etf.Term {
	p.t.Helper()
	p.id++
	p.send(etf.Tuple(etf.Atom("call"), p.id, cmd))
	for {
		f := p.next()
		if tu, ok := etf.TaggedTuple(f, "reply", 3); ok {
			id, _ := etf.AsInt(tu[1])
			require.EqualValues(p.t, p.id, id)
			return tu[2]
		}
	}
}

func (p *port) mustOK(cmd etf.Term) etf.Term {
	p.t.Helper()
	res := p.call(cmd)
	if a, ok := etf.AsAtom(res); ok && a == "ok" {
		return res
	}
	tu, ok := etf.TaggedTuple(res, "ok", 2)
	require.True(p.t, ok, "%v -> %v", cmd, res)
	return tu[1]
}

func errorReason(t etf.Term) string {
	if tu, ok := etf.TaggedTuple(t, "error", 2); ok {
		a, _ := etf.AsAtom(tu[1])
		return a
	}
	return fmt.Sprintf("not an error: %v", t)
}

func atoms(names ...string) etf.Term {
	l := make([]etf.Term, len(names))
	for i, n := range names {
		l[i] = etf.Atom(n)
	}
	return etf.List(l...)
}

func open(p *port, ref int, name string, flags ...string) string {
	p.t.Helper()
	info, ok := etf.AsTuple(p.mustOK(etf.Tuple(etf.Atom("open"), ref, []byte(name), atoms(flags...))))
	require.True(p.t, ok)
	n, _ := etf.AsBinary(info[0])
	return string(n)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
