package porttest

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/tunctl/tunctl/device"
	"golang.org/x/sys/unix"
)

// FakeDev is a device (portproto.Device) backed by one end of a
// SOCK_SEQPACKET socketpair: it keeps packet boundaries like a TUN
// descriptor. The test holds the other end, Peer ("the kernel side"):
// writing to Peer is a packet the device reads, reading Peer sees what was
// written to the device.
type FakeDev struct {
	Peer int
	mu   sync.Mutex
	set  FakeSettings // what the Set* methods were last asked (Settings)
	// FailRead makes Read fail with EIO.
	FailRead atomic.Bool
	// VerifyErr is what Verify answers (nil: the caller's device).
	VerifyErr error
	// Flood, when set, is returned by every Read (never EAGAIN): a device
	// that always has a packet. Write a byte to Peer so that it polls
	// readable.
	Flood []byte

	fd    int
	name  string
	flags uint16
}

// NewFakeDev returns a FakeDev named name with IFF_* flags; both ends of
// its socketpair are non-blocking and close-on-exec.
func NewFakeDev(name string, flags uint16) (*FakeDev, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &FakeDev{fd: fds[0], Peer: fds[1], name: name, flags: flags}, nil
}

// Fd returns the device's end of the socketpair.
func (d *FakeDev) Fd() int { return d.fd }

// Name returns the interface name given to NewFakeDev.
func (d *FakeDev) Name() string { return d.name }

// Flags returns the IFF_* flags given to NewFakeDev.
func (d *FakeDev) Flags() uint16 { return d.flags }

// Read reads one packet the test wrote to Peer.
func (d *FakeDev) Read(p []byte) (int, error) {
	if d.FailRead.Load() {
		return 0, unix.EIO
	}
	if d.Flood != nil {
		return copy(p, d.Flood), nil
	}
	return unix.Read(d.fd, p)
}

// Write writes one packet, for the test to read from Peer.
func (d *FakeDev) Write(p []byte) (int, error) { return unix.Write(d.fd, p) }

// FakeSettings are what a FakeDev's Set* methods were last asked.
type FakeSettings struct {
	Persist      bool
	Owner, Group int
	Offload      uint
}

// Settings returns what the Set* methods were last asked; safe to call
// while a server uses the device.
func (d *FakeDev) Settings() FakeSettings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.set
}

func (d *FakeDev) record(f func(*FakeSettings)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.set)
	return nil
}

// SetPersist records on.
func (d *FakeDev) SetPersist(on bool) error {
	return d.record(func(s *FakeSettings) { s.Persist = on })
}

// SetOwner records uid.
func (d *FakeDev) SetOwner(uid int) error { return d.record(func(s *FakeSettings) { s.Owner = uid }) }

// SetGroup records gid.
func (d *FakeDev) SetGroup(gid int) error { return d.record(func(s *FakeSettings) { s.Group = gid }) }

// SetOffload records the TUNSETOFFLOAD flags.
func (d *FakeDev) SetOffload(f uint) error { return d.record(func(s *FakeSettings) { s.Offload = f }) }

// Verify answers VerifyErr.
func (d *FakeDev) Verify() error { return d.VerifyErr }

// Close closes the device's end; Peer stays open (ClosePeer).
func (d *FakeDev) Close() error { return unix.Close(d.fd) }

// ClosePeer closes the test's end.
func (d *FakeDev) ClosePeer() error { return unix.Close(d.Peer) }

// FakeLinks is a link configurator (portproto.Links) that records each
// call (Recorded); the error given to FailNext is returned by the next call.
// Set its fields through its methods while a server uses it.
type FakeLinks struct {
	mu    sync.Mutex
	Calls []string
	Fail  error
	// Counts are what the next Count calls answer, in order (1 when empty).
	Counts []int
}

// FailNext makes the next call return err.
func (l *FakeLinks) FailNext(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Fail = err
}

// SetCounts sets what the next Count calls answer.
func (l *FakeLinks) SetCounts(n ...int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Counts = n
}

func (l *FakeLinks) record(c string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Calls = append(l.Calls, c)
	err := l.Fail
	l.Fail = nil
	return err
}

// AddrAdd records "add NAME ADDR/PREFIX brd BRD peer PEER".
func (l *FakeLinks) AddrAdd(name string, addr net.IP, prefix int, brd, peer net.IP) error {
	return l.record("add " + name + " " + (&net.IPNet{IP: addr, Mask: net.CIDRMask(prefix, 8*len(addr))}).String() + " brd " + brd.String() + " peer " + peer.String())
}

// AddrDel records "del NAME ADDR".
func (l *FakeLinks) AddrDel(name string, addr net.IP, prefix int) error {
	return l.record("del " + name + " " + addr.String())
}

// SetUp records "up NAME" or "down NAME".
func (l *FakeLinks) SetUp(name string, up bool) error {
	if up {
		return l.record("up " + name)
	}
	return l.record("down " + name)
}

// Count records "count PREFIX" and answers the first of Counts (removing
// it), or 1.
func (l *FakeLinks) Count(prefix string) (int, error) {
	l.mu.Lock()
	n := 1
	if len(l.Counts) > 0 {
		n, l.Counts = l.Counts[0], l.Counts[1:]
	}
	l.mu.Unlock()
	return n, l.record("count " + prefix)
}

// SetMTU records "mtu NAME".
func (l *FakeLinks) SetMTU(name string, mtu int) error { return l.record("mtu " + name) }

// Info records "info NAME" and answers an up link of MTU 1500, index 3.
func (l *FakeLinks) Info(name string) (device.LinkInfo, error) {
	return device.LinkInfo{Name: name, Index: 3, MTU: 1500, Up: true}, l.record("info " + name)
}

// Recorded returns a copy of Calls.
func (l *FakeLinks) Recorded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.Calls...)
}
