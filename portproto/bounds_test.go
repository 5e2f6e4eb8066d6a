package portproto

import (
	"fmt"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/policy"
	"github.com/tunctl/tunctl/portproto/porttest"
	"golang.org/x/sys/unix"
)

// A device that always has a packet the filter drops must not keep the
// loop from stdin (issue 10, item 7): filtered packets count against the
// read burst. Before, the loop never left the device.
func TestFilteredFloodDoesNotStarveStdin(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "flood", "tun", "no_pi"))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("filter"), 1, etf.List(atom("udp"))))))
	h.Write(etf.Tuple(atom("active"), 1, true))
	for i := 0; i < 3; i++ {
		tu, ok := etf.TaggedTuple(h.Call(etf.Tuple(atom("stats"), 1)), "ok", 2)
		require.True(t, ok)
		assert.Contains(t, fmt.Sprint(tu[1]), "filtered")
	}
	// The read command gives up after a burst of filtered packets too.
	assert.Equal(t, "eagain", errorOf(h.Call(etf.Tuple(atom("read"), 1, 100))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("close"), 1))))
}

// Commands that change a device run only while Device.Verify allows them
// (the device is still the caller's); the others keep working.
func TestCommandsOnADeviceNoLongerTheCallers(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "notmine", "tun"))))
	for _, cmd := range []etf.Term{
		etf.Tuple(atom("addr_add"), 1, []byte{198, 18, 0, 1}, 24, etf.List()),
		etf.Tuple(atom("addr_del"), 1, []byte{198, 18, 0, 1}, 24),
		etf.Tuple(atom("link_set"), 1, etf.List(etf.Tuple(atom("up"), false))),
		etf.Tuple(atom("link_set"), 1, etf.List(etf.Tuple(atom("mtu"), 1400))),
		etf.Tuple(atom("persist"), 1, true),
		etf.Tuple(atom("owner"), 1, 65534),
		etf.Tuple(atom("group"), 1, 65534),
	} {
		assert.Equal(t, "eperm", errorOf(h.Call(cmd)), "%v", cmd)
	}
	assert.Empty(t, h.links.Recorded(), "nothing reached netlink")
	assert.False(t, h.dev(0).Settings().Persist)
	assert.Zero(t, h.dev(0).Settings().Owner)
	require.True(t, etf.TaggedTupleOK(h.Call(etf.Tuple(atom("stats"), 1))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("close"), 1))))
}

// max_devices is checked again once the device is open, and the device
// closed when ports opening at the same time went past the limit.
func TestMaxDevicesRollsBack(t *testing.T) {
	pol, err := policy.Parse(strings.NewReader("name_prefix app-\nmax_devices 2\n"))
	require.NoError(t, err)
	h := newHarnessWith(t, policy.Set{pol})
	handshake(t, h)
	h.links.SetCounts(1, 2, 1, 3)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "app-a", "tun"))), "1 before, 2 after")
	assert.Equal(t, "eacces", errorOf(h.Call(openCmd(2, "app-b", "tun"))), "1 before, 3 after: another port got in")
	_, err = unix.Write(h.dev(1).Peer, []byte{1})
	assert.Error(t, err, "its descriptor was closed")
	assert.Equal(t, "ebadf", errorOf(h.Call(etf.Tuple(atom("stats"), 2))))
	h.links.SetCounts(2)
	assert.Equal(t, "eacces", errorOf(h.Call(openCmd(3, "app-c", "tun"))), "the limit is reached")
	assert.Len(t, h.devs, 2, "not even opened")
}

// EOF on stdin ends Serve while stdout is full because the reader stopped
// reading (issue 10, item 6). Before, Serve waited for stdout forever.
func TestStdinEOFWinsOverFullStdout(t *testing.T) {
	var in, out [2]int
	require.NoError(t, unix.Pipe2(in[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	require.NoError(t, unix.Pipe2(out[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	defer unix.Close(out[0])
	srv := NewServer(in[0], out[1], Env{Links: &porttest.FakeLinks{}, Log: log.New(io.Discard, "", 0)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(); unix.Close(in[0]); unix.Close(out[1]) }()

	// Unknown commands: each answers a small frame that nobody reads.
	b, err := etf.Encode(etf.Tuple(atom("call"), 1, atom("nosuchcommand")))
	require.NoError(t, err)
	frame := porttest.AppendFrame(nil, b)
	var batch []byte
	for i := 0; i < 4096; i++ {
		batch = append(batch, frame...)
	}
	for sent := 0; sent < 64; {
		if _, err := unix.Write(in[1], batch); err == nil {
			sent++
			continue
		}
		break // stdin full too: the server is stuck on stdout
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("server ended early: %v", err)
	default:
	}
	require.NoError(t, unix.Close(in[1]))
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("EOF on stdin ignored while stdout is full")
	}
	assert.True(t, srv.Ending())
}

// The output the server holds stays bounded whatever stdin brings: frames
// are not handled while outFlush bytes wait for stdout.
func TestOutputStaysBounded(t *testing.T) {
	var in, out [2]int
	require.NoError(t, unix.Pipe2(in[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	require.NoError(t, unix.Pipe2(out[:], unix.O_CLOEXEC))
	defer unix.Close(in[1])
	defer unix.Close(out[0])
	srv := NewServer(in[0], out[1], Env{Links: &porttest.FakeLinks{}, Log: log.New(io.Discard, "", 0)})
	srv.outbuf = srv.outbuf[:0]
	// As Serve does after reading stdin: a buffer full of requests, each
	// with a reply.
	b, err := etf.Encode(etf.Tuple(atom("call"), 1, atom("nosuchcommand")))
	require.NoError(t, err)
	frame := porttest.AppendFrame(nil, b)
	for srv.w+len(frame) <= len(srv.inbuf) {
		srv.w += copy(srv.inbuf[srv.w:], frame)
	}
	reply := len(srv.outbuf)
	srv.handle(b)
	reply = len(srv.outbuf) - reply
	srv.outbuf = srv.outbuf[:0]
	srv.outbuf = append(srv.outbuf, make([]byte, outFlush-reply)...)
	srv.handleFrames()
	assert.True(t, srv.pending, "stopped with frames left")
	assert.Less(t, len(srv.outbuf), outFlush+reply+1)
	assert.Less(t, srv.r, srv.w)
	unix.Close(in[0])
	unix.Close(out[1])
}
