package portproto

import (
	"github.com/tunctl/tunctl/portproto/porttest"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// batchPackets returns the packets of a {tuntap_batch, ref, [...]} frame.
func batchPackets(t *testing.T, f etf.Term, ref int) []string {
	t.Helper()
	pkts, isBatch := porttest.BatchOf(t, f, ref)
	require.True(t, isBatch, "%v", f)
	out := make([]string, len(pkts))
	for i, p := range pkts {
		out[i] = string(p)
	}
	return out
}

func TestBatchDeliveryAndCredit(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun"))))
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("deliver"), 1, atom("bulk")))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("deliver"), 1, atom("batch")))))
	peer := h.dev(0).Peer
	for _, p := range []string{"p0", "p1", "p2", "p3", "p4"} {
		_, err := unix.Write(peer, []byte(p))
		require.NoError(t, err)
	}
	// Credit counts packets: a limit of 3 yields exactly three, oldest
	// first, in as few frames as were ready (here one).
	h.Write(etf.Tuple(atom("active"), 1, 3))
	var got []string
	for len(got) < 3 {
		got = append(got, batchPackets(t, h.Next(), 1)...)
	}
	assert.Equal(t, []string{"p0", "p1", "p2"}, got)
	h.Quiet(50 * time.Millisecond)
	h.Write(etf.Tuple(atom("active"), 1, 5))
	assert.Equal(t, []string{"p3", "p4"}, batchPackets(t, h.Next(), 1))

	// More than a burst waiting: frames of at most readBurst packets, and
	// exactly the credit.
	for i := 0; i < readBurst+10; i++ {
		_, err := unix.Write(peer, []byte{byte(i)})
		require.NoError(t, err)
	}
	h.Write(etf.Tuple(atom("active"), 1, 5+readBurst+5))
	n := 0
	for n < readBurst+5 {
		ps := batchPackets(t, h.Next(), 1)
		assert.LessOrEqual(t, len(ps), readBurst)
		for _, p := range ps {
			assert.Equal(t, string([]byte{byte(n)}), p, "in order")
			n++
		}
	}
	h.Quiet(50 * time.Millisecond)
	assert.Equal(t, readBurst+5, n)
	res := h.Call(etf.Tuple(atom("read"), 1, 10))
	tu, ok := etf.TaggedTuple(res, "ok", 2)
	require.True(t, ok, "%v", res)
	pkt, _ := etf.AsBinary(tu[1])
	assert.Equal(t, []byte{byte(readBurst + 5)}, pkt, "the rest stayed in the kernel queue")

	// Back to one frame per packet.
	require.True(t, isOK(h.Call(etf.Tuple(atom("deliver"), 1, atom("packet")))))
	h.Write(etf.Tuple(atom("active"), 1, true))
	_, err := unix.Write(peer, []byte("single"))
	require.NoError(t, err)
	for i := 0; i < 4; i++ { // the rest of the earlier packets
		_, ok = etf.TaggedTuple(h.Next(), "tuntap", 3)
		require.True(t, ok)
	}
	tu, ok = etf.TaggedTuple(h.Next(), "tuntap", 3)
	require.True(t, ok)
	pkt, _ = etf.AsBinary(tu[2])
	assert.Equal(t, "single", string(pkt))
}

func TestBatchFilteredAndReadError(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun", "no_pi"))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("deliver"), 1, atom("batch")))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("filter"), 1, etf.List(atom("udp"))))))
	peer := h.dev(0).Peer
	udp4 := make([]byte, 28)
	udp4[0], udp4[9] = 0x45, unix.IPPROTO_UDP
	tcp4 := make([]byte, 40)
	tcp4[0], tcp4[9] = 0x45, unix.IPPROTO_TCP
	for _, p := range [][]byte{tcp4, udp4, tcp4, tcp4} {
		_, err := unix.Write(peer, p)
		require.NoError(t, err)
	}
	h.Write(etf.Tuple(atom("active"), 1, true))
	assert.Equal(t, []string{string(udp4)}, batchPackets(t, h.Next(), 1), "filtered packets are not in the batch")
	// A read fails: the error is its own frame, after any batch, and the
	// device is no longer polled.
	h.dev(0).FailRead.Store(true)
	_, err := unix.Write(peer, udp4)
	require.NoError(t, err)
	tu, ok := etf.TaggedTuple(h.Next(), "tuntap_read_error", 3)
	require.True(t, ok)
	reason, _ := etf.AsAtom(tu[2])
	assert.Equal(t, "eio", reason)
	h.Quiet(50 * time.Millisecond)
}

func TestOffloadCommand(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun", "no_pi", "vnet_hdr"))))
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(2, "plain", "tun", "no_pi"))))
	off := func(ref int, names ...string) etf.Term {
		l := make([]etf.Term, len(names))
		for i, n := range names {
			l[i] = atom(n)
		}
		return h.Call(etf.Tuple(atom("offload"), ref, etf.List(l...)))
	}
	require.True(t, isOK(off(1, "csum", "tso4", "tso6", "tso_ecn", "uso4", "uso6")))
	assert.EqualValues(t, 0x7f&^0x10, h.dev(0).Settings().Offload)
	require.True(t, isOK(off(1, "csum")))
	assert.EqualValues(t, device.OffloadCsum, h.dev(0).Settings().Offload)
	require.True(t, isOK(off(1)))
	assert.EqualValues(t, 0, h.dev(0).Settings().Offload)
	assert.Equal(t, "einval", errorOf(off(1, "tso4")), "segmentation needs csum")
	assert.Equal(t, "einval", errorOf(off(2, "csum")), "offloads need vnet_hdr")
	require.True(t, isOK(off(2)), "none is fine without vnet_hdr")
	assert.Equal(t, "badarg", errorOf(off(1, "ufo")))
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("offload"), 1, atom("csum")))))
	assert.Equal(t, "ebadf", errorOf(off(9, "csum")))
}

// benchServer is a Server with one fake device whose "kernel side" is peer,
// writing its frames to /dev/null.
func benchServer(b *testing.B) (*Server, *devState, int) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(b, err)
	b.Cleanup(func() { null.Close() })
	dev, err := porttest.NewFakeDev("", device.FlagTUN)
	require.NoError(b, err)
	b.Cleanup(func() { dev.ClosePeer() })
	s := NewServer(-1, int(null.Fd()), Env{Log: log.New(io.Discard, "", 0)})
	d := &devState{Device: dev, ref: 1,
		header: PacketHeader(1), unlimited: true}
	s.devs[1] = d
	s.order = append(s.order, d)
	b.Cleanup(func() { dev.Close() })
	return s, d, dev.Peer
}

// benchRead measures the read path: one op is one 64-byte packet read from
// the device into a frame (the pipe write is to /dev/null).
func benchRead(b *testing.B, batch bool) {
	s, d, peer := benchServer(b)
	if batch {
		d.batch = BatchHeader(1)
	}
	pkt := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer() // the server's buffers are allocated once, above
	b.SetBytes(int64(len(pkt)))
	for i := 0; i < b.N; i += readBurst {
		for j := 0; j < readBurst; j++ {
			if _, err := unix.Write(peer, pkt); err != nil {
				b.Fatal(err)
			}
		}
		s.readDevice(d)
		if err := s.flush(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadPathPacket(b *testing.B) { benchRead(b, false) }
func BenchmarkReadPathBatch(b *testing.B)  { benchRead(b, true) }

// BenchmarkSendPath measures the send path: one op is one 64-byte packet of
// a 64-packet sendv frame parsed and written to the device.
func BenchmarkSendPath(b *testing.B) {
	s, _, peer := benchServer(b)
	pkts := make([][]byte, readBurst)
	for i := range pkts {
		pkts[i] = make([]byte, 64)
	}
	frame := AppendSendvFrame(nil, 1, pkts...)
	buf := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer() // the server's buffers are allocated once, above
	b.SetBytes(64)
	for i := 0; i < b.N; i += readBurst {
		s.handle(frame)
		s.flushTx() // as handleFrames does after its frames
		for j := 0; j < readBurst; j++ {
			if _, err := unix.Read(peer, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
