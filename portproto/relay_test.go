package portproto

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// relayTo plays the BEAM's side of the hand-over: it connects to the
// port's address and sends nonce with fd attached.
func relayTo(t *testing.T, name []byte, nonce []byte, fd int) int {
	t.Helper()
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Connect(c, &unix.SockaddrUnix{Name: string(name)}))
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	require.NoError(t, unix.Sendmsg(c, nonce, oob, nil, 0))
	return c
}

// handOver offers the port one end of a new socket pair at the relay's
// rendezvous name, with nonce, as tunctl_fds does; it returns the other
// end (the user's). Both sockets are closed when the test ends.
func handOver(t *testing.T, name, nonce []byte) int {
	t.Helper()
	pair := seqpair(t) // [0]: the user's end, [1]: the port's
	t.Cleanup(func() { unix.Close(pair[0]) })
	c := relayTo(t, name, nonce, pair[1])
	unix.Close(pair[1])
	t.Cleanup(func() { unix.Close(c) })
	return pair[0]
}

func seqpair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	return [2]int{fds[0], fds[1]}
}

func recvTimeout(t *testing.T, fd int) []byte {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 2000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "nothing to read within 2s")
	b := make([]byte, 70000)
	n, err = unix.Read(fd, b)
	require.NoError(t, err)
	return b[:n]
}

func TestRelayHandOverAndTraffic(t *testing.T) {
	h := newHarness(t)
	h.Next() // handshake
	require.Equal(t, ok, unwrapOK(t, h.Call(etf.Tuple(etf.Atom("open"), 1, []byte("r0"), etf.List(etf.Atom("tap"))))))
	res := h.Call(etf.Tuple(etf.Atom("relay_listen"), 1))
	tu, isT := etf.TaggedTuple(res, "ok", 2)
	require.True(t, isT, "%v", res)
	name, _ := etf.AsBinary(tu[1])
	require.Equal(t, byte(0), name[0])
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("ebusy")), h.Call(etf.Tuple(etf.Atom("relay_listen"), 1)))

	// A stranger connects first, with a wrong nonce and a descriptor of
	// its own: it must neither win nor leave the descriptor in the port.
	stranger := handOver(t, name, []byte("0123456789abcdefXX"))
	nonce := []byte("0123456789abcdef")
	user := handOver(t, name, nonce)
	assert.Equal(t, ok, h.Call(etf.Tuple(etf.Atom("relay_accept"), 1, nonce)))
	kern := h.dev(0).Peer

	// Forwarding is off until {relay, Ref, true}: the packet stays in the
	// device, and a read takes it.
	_, err := unix.Write(kern, []byte("stays"))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	read, isT := etf.TaggedTuple(h.Call(etf.Tuple(etf.Atom("read"), 1, 100)), "ok", 2)
	require.True(t, isT)
	stays, _ := etf.AsBinary(read[1])
	assert.Equal(t, "stays", string(stays))
	assert.Equal(t, ok, h.Call(etf.Tuple(etf.Atom("relay"), 1, true)))

	// The stranger's descriptor was closed by the port: its peer sees EOF.
	assert.Empty(t, recvTimeout(t, stranger))

	// device -> relay, one packet per message
	for _, p := range []string{"frame-one", "frame-two"} {
		_, err := unix.Write(kern, []byte(p))
		require.NoError(t, err)
	}
	assert.Equal(t, "frame-one", string(recvTimeout(t, user)))
	assert.Equal(t, "frame-two", string(recvTimeout(t, user)))

	// relay -> device
	_, err = unix.Write(user, []byte("to-the-kernel"))
	require.NoError(t, err)
	assert.Equal(t, "to-the-kernel", string(recvTimeout(t, kern)))

	// An active owner reads first; the relay gets nothing meanwhile.
	h.Write(etf.Tuple(etf.Atom("active"), 1, true))
	// A call is a barrier: the port has taken the active command before
	// the packet exists, so the relay cannot win the race for it.
	_, isT = etf.TaggedTuple(h.Call(etf.Tuple(etf.Atom("stats"), 1)), "ok", 2)
	require.True(t, isT)
	_, err = unix.Write(kern, []byte("for-the-owner"))
	require.NoError(t, err)
	f, isT := etf.TaggedTuple(h.Next(), "tuntap", 3)
	require.True(t, isT)
	pkt, _ := etf.AsBinary(f[2])
	assert.Equal(t, "for-the-owner", string(pkt))

	// close: the user's end reads end-of-file
	assert.Equal(t, ok, h.Call(etf.Tuple(etf.Atom("close"), 1)))
	assert.Empty(t, recvTimeout(t, user))
}

func TestRelayAcceptRefusals(t *testing.T) {
	h := newHarness(t)
	h.Next()
	unwrapOK(t, h.Call(etf.Tuple(etf.Atom("open"), 1, []byte("r1"), etf.List(etf.Atom("tun")))))
	nonce := []byte("0123456789abcdef")
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("einval")), h.Call(etf.Tuple(etf.Atom("relay_accept"), 1, nonce)))
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("badarg")), h.Call(etf.Tuple(etf.Atom("relay_accept"), 1, []byte("short"))))
	res := h.Call(etf.Tuple(etf.Atom("relay_listen"), 1))
	tu, _ := etf.TaggedTuple(res, "ok", 2)
	name, _ := etf.AsBinary(tu[1])
	// the right nonce but no descriptor, or not a seqpacket socket
	c1 := relayTo(t, name, nonce, -1)
	defer unix.Close(c1)
	dgram, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	require.NoError(t, err)
	c2 := relayTo(t, name, nonce, dgram)
	unix.Close(dgram)
	defer unix.Close(c2)
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("eacces")), h.Call(etf.Tuple(etf.Atom("relay_accept"), 1, nonce)))
	// a fresh relay_listen works after a refusal
	_, isT := etf.TaggedTuple(h.Call(etf.Tuple(etf.Atom("relay_listen"), 1)), "ok", 2)
	assert.True(t, isT)
}

func TestIoctlWhitelist(t *testing.T) {
	h := newHarness(t)
	h.Next()
	unwrapOK(t, h.Call(etf.Tuple(etf.Atom("open"), 1, []byte("i0"), etf.List(etf.Atom("tap")))))
	// SIOCGIFFLAGS is not a TUN/TAP request of tuntap.hrl
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("eperm")), h.Call(etf.Tuple(etf.Atom("ioctl"), 1, 0x8913, 0)))
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("badarg")), h.Call(etf.Tuple(etf.Atom("ioctl"), 1, unix.TUNSETPERSIST, etf.Atom("x"))))
	// the fake device runs no ioctl
	assert.Equal(t, etf.Tuple(etf.Atom("error"), etf.Atom("enotsup")), h.Call(etf.Tuple(etf.Atom("ioctl"), 1, unix.TUNSETPERSIST, 1)))
}

func unwrapOK(t *testing.T, res etf.Term) etf.Term {
	t.Helper()
	if a, isA := etf.AsAtom(res); isA && a == "ok" {
		return ok
	}
	_, isT := etf.TaggedTuple(res, "ok", 2)
	require.True(t, isT, "%v", res)
	return ok
}

// A relay the BEAM does not read fills up: the port stops reading the
// device and loses nothing; every packet arrives, in order, once read.
func TestRelayFullLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.Next()
	unwrapOK(t, h.Call(etf.Tuple(etf.Atom("open"), 1, []byte("r2"), etf.List(etf.Atom("tap")))))
	tu, _ := etf.TaggedTuple(h.Call(etf.Tuple(etf.Atom("relay_listen"), 1)), "ok", 2)
	name, _ := etf.AsBinary(tu[1])
	nonce := []byte("0123456789abcdef")
	user := handOver(t, name, nonce)
	require.Equal(t, ok, h.Call(etf.Tuple(etf.Atom("relay_accept"), 1, nonce)))
	require.Equal(t, ok, h.Call(etf.Tuple(etf.Atom("relay"), 1, true)))

	const count, size = 6000, 2000 // more than the 4 MiB buffer
	kern := h.dev(0).Peer
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkt := make([]byte, size)
		for i := 0; i < count; {
			binary.BigEndian.PutUint32(pkt, uint32(i))
			if _, err := unix.Write(kern, pkt); err == unix.EAGAIN {
				time.Sleep(time.Millisecond)
				continue
			}
			i++
		}
	}()
	time.Sleep(200 * time.Millisecond) // the relay fills meanwhile
	for i := 0; i < count; i++ {
		got := recvTimeout(t, user)
		require.Len(t, got, size)
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(got), "packet %d", i)
	}
	<-done
}
