package portproto

import (
	"io"
	"log"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/policy"
	"github.com/tunctl/tunctl/portproto/porttest"
	"golang.org/x/sys/unix"
)

// harness runs a Server over two pipes, like the BEAM would, with fake
// devices and links (porttest), and speaks to it through a porttest.Client.
type harness struct {
	*porttest.Client
	batches []int // the lengths WriteBatch was called with (device "batched"), under mu
	t       *testing.T
	in      *os.File // the client's end of the server's stdin
	links   *porttest.FakeLinks
	mu      sync.Mutex
	devs    []*porttest.FakeDev
	done    chan error
	once    sync.Once
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

func newHarnessWith(t *testing.T, pol policy.Set) *harness {
	t.Helper()
	var in, out [2]int
	require.NoError(t, unix.Pipe2(in[:], unix.O_CLOEXEC))
	require.NoError(t, unix.Pipe2(out[:], unix.O_CLOEXEC))
	require.NoError(t, unix.SetNonblock(in[0], true))
	h := &harness{t: t, in: os.NewFile(uintptr(in[1]), "server stdin"), links: &porttest.FakeLinks{}, done: make(chan error, 1)}
	fromSrv := os.NewFile(uintptr(out[0]), "server stdout")
	h.Client = porttest.NewClient(t, h.in, fromSrv)
	open := func(name string, flags uint16) (Device, error) {
		if name == "eperm" {
			return nil, unix.EPERM
		}
		if name == "" {
			name = "fake0"
		}
		d, err := porttest.NewFakeDev(name, flags)
		if err != nil {
			return nil, err
		}
		switch name {
		case "flood":
			// Always readable, always a TCP/IPv4 packet.
			d.Flood = make([]byte, 40)
			d.Flood[0], d.Flood[9] = 0x45, unix.IPPROTO_TCP
			if _, err := unix.Write(d.Peer, []byte{0}); err != nil {
				return nil, err
			}
		case "notmine":
			d.VerifyErr = unix.EPERM
		}
		h.mu.Lock()
		h.devs = append(h.devs, d)
		h.mu.Unlock()
		if name == "batched" {
			return &batchDev{FakeDev: d, h: h}, nil
		}
		return d, nil
	}
	srv := NewServer(in[0], out[1], Env{Open: open, Links: h.links, Policy: pol, Log: log.New(io.Discard, "", 0)})
	go func() {
		err := srv.Serve()
		unix.Close(in[0])
		unix.Close(out[1])
		h.done <- err
	}()
	t.Cleanup(func() {
		h.closeInput()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, d := range h.devs {
			d.ClosePeer()
		}
	})
	return h
}

// closeInput closes the server's stdin (EOF), once.
func (h *harness) closeInput() {
	h.once.Do(func() { h.in.Close() })
}

// batchDev is a fake device with WriteBatch: it records each call's length
// and writes the packets one by one; a packet "fail" fails with EIO.
type batchDev struct {
	*porttest.FakeDev
	h *harness
}

func (d *batchDev) WriteBatch(pkts [][]byte, errs []error) {
	d.h.mu.Lock()
	d.h.batches = append(d.h.batches, len(pkts))
	d.h.mu.Unlock()
	for i, p := range pkts {
		if string(p) == "fail" {
			errs[i] = unix.EIO
			continue
		}
		_, errs[i] = d.Write(p)
	}
}

func (h *harness) dev(i int) *porttest.FakeDev {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.devs[i]
}

// The client's frame bound is above anything the port sends.
func TestClientFrameLimit(t *testing.T) {
	require.Greater(t, porttest.FrameLimit, MaxFrame+MaxPacket)
}
