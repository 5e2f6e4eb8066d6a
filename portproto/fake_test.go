package portproto

import (
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/policy"
	"golang.org/x/sys/unix"
)

// fakeDev is a Device backed by one end of a SOCK_SEQPACKET socketpair: it
// keeps packet boundaries like a TUN fd, and needs no privilege. The test
// holds the other end ("the kernel side").
type fakeDev struct {
	fd, peer int
	name     string
	flags    uint16
	persist  bool
	owner    int
	group    int
	offload  uint
	failRead atomic.Bool // Read fails with EIO
}

func (d *fakeDev) Fd() int       { return d.fd }
func (d *fakeDev) Name() string  { return d.name }
func (d *fakeDev) Flags() uint16 { return d.flags }
func (d *fakeDev) Read(p []byte) (int, error) {
	if d.failRead.Load() {
		return 0, unix.EIO
	}
	return unix.Read(d.fd, p)
}
func (d *fakeDev) Write(p []byte) (int, error) {
	return unix.Write(d.fd, p)
}
func (d *fakeDev) SetPersist(on bool) error { d.persist = on; return nil }
func (d *fakeDev) SetOwner(uid int) error   { d.owner = uid; return nil }
func (d *fakeDev) SetGroup(gid int) error   { d.group = gid; return nil }
func (d *fakeDev) SetOffload(f uint) error  { d.offload = f; return nil }
func (d *fakeDev) Close() error             { return unix.Close(d.fd) }

// fakeLinks records configuration calls; fail makes the next one fail.
type fakeLinks struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (l *fakeLinks) record(c string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
	err := l.fail
	l.fail = nil
	return err
}

func (l *fakeLinks) AddrAdd(name string, addr net.IP, prefix int, brd, peer net.IP) error {
	return l.record("add " + name + " " + (&net.IPNet{IP: addr, Mask: net.CIDRMask(prefix, 8*len(addr))}).String() + " brd " + brd.String() + " peer " + peer.String())
}
func (l *fakeLinks) AddrDel(name string, addr net.IP, prefix int) error {
	return l.record("del " + name + " " + addr.String())
}
func (l *fakeLinks) SetUp(name string, up bool) error {
	if up {
		return l.record("up " + name)
	}
	return l.record("down " + name)
}
func (l *fakeLinks) Count(prefix string) (int, error)  { return 1, l.record("count " + prefix) }
func (l *fakeLinks) SetMTU(name string, mtu int) error { return l.record("mtu " + name) }
func (l *fakeLinks) Info(name string) (device.LinkInfo, error) {
	return device.LinkInfo{Name: name, Index: 3, MTU: 1500, Up: true}, l.record("info " + name)
}

// harness runs a Server over two pipes, like the BEAM would.
type harness struct {
	t      *testing.T
	toSrv  int // write requests here
	frames chan etf.Term
	raw    chan []byte
	links  *fakeLinks
	mu     sync.Mutex
	devs   []*fakeDev
	done   chan error
	nextID int
	policy policy.Set
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

func newHarnessWith(t *testing.T, pol policy.Set) *harness {
	t.Helper()
	var in, out [2]int
	require.NoError(t, unix.Pipe2(in[:], unix.O_CLOEXEC))
	require.NoError(t, unix.Pipe2(out[:], unix.O_CLOEXEC))
	require.NoError(t, unix.SetNonblock(in[0], true))
	h := &harness{t: t, toSrv: in[1], frames: make(chan etf.Term, 1024), raw: make(chan []byte, 1024),
		links: &fakeLinks{}, done: make(chan error, 1), policy: pol}
	open := func(name string, flags uint16) (Device, error) {
		if name == "eperm" {
			return nil, unix.EPERM
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		if name == "" {
			name = "fake0"
		}
		d := &fakeDev{fd: fds[0], peer: fds[1], name: name, flags: flags}
		h.mu.Lock()
		h.devs = append(h.devs, d)
		h.mu.Unlock()
		return d, nil
	}
	srv := NewServer(in[0], out[1], Env{Open: open, Links: h.links, Policy: h.policy, Log: log.New(io.Discard, "", 0)})
	go func() {
		err := srv.Serve()
		unix.Close(in[0])
		unix.Close(out[1])
		h.done <- err
	}()
	go h.reader(out[0])
	t.Cleanup(func() {
		h.closeInput()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, d := range h.devs {
			unix.Close(d.peer)
		}
	})
	return h
}

func (h *harness) reader(fd int) {
	defer unix.Close(fd)
	f := readerFd(fd)
	for {
		b, err := ReadFrame(f)
		if err != nil {
			close(h.frames)
			return
		}
		t, err := etf.Decode(b)
		if err != nil {
			panic(err)
		}
		h.raw <- b
		h.frames <- t
	}
}

type readerFd int

func (r readerFd) Read(p []byte) (int, error) {
	n, err := unix.Read(int(r), p)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

var inputOnce sync.Map

func (h *harness) closeInput() {
	if _, loaded := inputOnce.LoadOrStore(h, true); !loaded {
		unix.Close(h.toSrv)
	}
}

// writeRaw sends one {packet,4} frame with arbitrary content.
func (h *harness) writeRaw(b []byte) {
	h.t.Helper()
	frame := AppendFrame(nil, b)
	for len(frame) > 0 {
		n, err := unix.Write(h.toSrv, frame)
		require.NoError(h.t, err)
		frame = frame[n:]
	}
}

func (h *harness) write(t etf.Term) {
	h.t.Helper()
	b, err := etf.Encode(t)
	require.NoError(h.t, err)
	h.writeRaw(b)
}

// next returns the next frame, failing after a second.
func (h *harness) next() etf.Term {
	h.t.Helper()
	select {
	case f, ok := <-h.frames:
		require.True(h.t, ok, "port output closed")
		<-h.raw
		return f
	case <-time.After(time.Second):
		h.t.Fatal("no frame within 1s")
	}
	return nil
}

// quiet asserts that nothing arrives for d.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	select {
	case f := <-h.frames:
		h.t.Fatalf("unexpected frame %v", f)
	case <-time.After(d):
	}
}

// call sends {call, Id, Cmd} and returns Result from {reply, Id, Result}.
func (h *harness) call(cmd etf.Term) etf.Term {
	h.t.Helper()
	h.nextID++
	h.write(etf.Tuple(etf.Atom("call"), h.nextID, cmd))
	tu, ok := etf.TaggedTuple(h.next(), "reply", 3)
	require.True(h.t, ok)
	id, _ := etf.AsInt(tu[1])
	require.EqualValues(h.t, h.nextID, id)
	return tu[2]
}

func (h *harness) dev(i int) *fakeDev {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.devs[i]
}
