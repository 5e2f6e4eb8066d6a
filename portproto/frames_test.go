package portproto

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto/porttest"
)

// {active, 7, true} as OTP 25's term_to_binary/1 encodes it (not a send).
var etfOTPActive = []byte{131, 104, 3, 100, 0, 6, 97, 99, 116, 105, 118, 101, 97, 7, 100, 0, 4, 116, 114, 117, 101}

func TestPacketFrame(t *testing.T) {
	hdr := PacketHeader(42)
	require.Len(t, hdr, PacketHeaderLen)
	var buf []byte
	for _, pkt := range [][]byte{[]byte("abc"), {}, make([]byte, 1500)} {
		start := len(buf)
		buf = BeginPacketFrame(buf, hdr)
		buf = append(buf, pkt...)
		EndPacketFrame(buf, start)
	}
	// Three {packet,4} frames, each a valid {tuntap, 42, Packet}.
	want := []int{3, 0, 1500}
	got := decodeFrames(t, buf)
	require.Len(t, got, len(want))
	for i, f := range got {
		tu, ok := etf.TaggedTuple(f, "tuntap", 3)
		require.True(t, ok)
		ref, _ := etf.AsInt(tu[1])
		assert.EqualValues(t, 42, ref)
		pkt, ok := etf.AsBinary(tu[2])
		require.True(t, ok)
		assert.Len(t, pkt, want[i])
	}
}

// decodeFrames splits buf into {packet, 4} frames and decodes each.
func decodeFrames(t *testing.T, buf []byte) []etf.Term {
	t.Helper()
	var terms []etf.Term
	r := bytes.NewReader(buf)
	for r.Len() > 0 {
		b, err := porttest.ReadFrame(r)
		require.NoError(t, err)
		term, err := etf.Decode(b)
		require.NoError(t, err)
		terms = append(terms, term)
	}
	return terms
}

func TestParseSend(t *testing.T) {
	frame := AppendSendFrame(nil, 9, []byte{1, 2, 3})
	ref, pkt, ok := ParseSend(frame)
	require.True(t, ok)
	assert.EqualValues(t, 9, ref)
	assert.Equal(t, []byte{1, 2, 3}, pkt)
	// The same frame also decodes generically as {send, 9, <<1,2,3>>}.
	term, err := etf.Decode(frame)
	require.NoError(t, err)
	_, ok = etf.TaggedTuple(term, "send", 3)
	assert.True(t, ok)
	// Wrong length fields are not the fast path.
	_, _, ok = ParseSend(frame[:len(frame)-1])
	assert.False(t, ok)
	_, _, ok = ParseSend(etfOTPActive)
	assert.False(t, ok)
}

func TestPacketFrameAllocs(t *testing.T) {
	hdr := PacketHeader(1)
	buf := make([]byte, 0, 64<<10)
	pkt := make([]byte, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = buf[:0]
		start := len(buf)
		buf = BeginPacketFrame(buf, hdr)
		buf = append(buf, pkt...)
		EndPacketFrame(buf, start)
		_, _, _ = ParseSend(buf[4:])
	})
	assert.Zero(t, allocs)
}

func BenchmarkPacketFrameEncode(b *testing.B) {
	hdr := PacketHeader(1)
	buf := make([]byte, 0, 64<<10)
	pkt := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; i < b.N; i++ {
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		start := len(buf)
		buf = BeginPacketFrame(buf, hdr)
		buf = append(buf, pkt...)
		EndPacketFrame(buf, start)
	}
}

func BenchmarkParseSend(b *testing.B) {
	frame := AppendSendFrame(nil, 1, make([]byte, 64))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, ok := ParseSend(frame); !ok {
			b.Fatal("not parsed")
		}
	}
}

func TestParseSendv(t *testing.T) {
	frame := AppendSendvFrame(nil, 7, []byte("a"), []byte{}, []byte("xyz"))
	ref, elems, n, ok := ParseSendv(frame)
	require.True(t, ok)
	assert.EqualValues(t, 7, ref)
	require.Equal(t, 3, n)
	var got []string
	for i := 0; i < n; i++ {
		var p []byte
		p, elems, ok = NextPacket(elems)
		require.True(t, ok)
		got = append(got, string(p))
	}
	assert.Equal(t, []string{"a", "", "xyz"}, got)
	// It is ordinary ETF too.
	term, err := etf.Decode(frame)
	require.NoError(t, err)
	tu, ok := etf.TaggedTuple(term, "sendv", 3)
	require.True(t, ok)
	l, ok := etf.AsList(tu[2])
	require.True(t, ok)
	assert.Len(t, l, 3)
	// Any damage refuses the whole batch.
	for _, bad := range [][]byte{frame[:len(frame)-1], frame[:len(frame)-2], append(append([]byte{}, frame...), 0)} {
		_, _, _, ok := ParseSendv(bad)
		assert.False(t, ok)
	}
	lying := append([]byte{}, frame...)
	lying[19] = 4 // count 4, three elements
	_, _, _, ok = ParseSendv(lying)
	assert.False(t, ok)
	allocs := testing.AllocsPerRun(100, func() { _, _, _, _ = ParseSendv(frame) })
	assert.Zero(t, allocs)
}

// appendBatch builds one {tuntap_batch, ref, pkts} frame the way the port
// does.
func appendBatch(buf, hdr []byte, pkts ...[]byte) []byte {
	start := len(buf)
	buf = BeginBatchFrame(buf, hdr)
	for _, p := range pkts {
		ps := len(buf)
		buf = BeginBatchPacket(buf)
		buf = append(buf, p...)
		EndBatchPacket(buf, ps)
	}
	return EndBatchFrame(buf, start, len(pkts))
}

func TestBatchFrame(t *testing.T) {
	hdr := BatchHeader(42)
	require.Len(t, hdr, BatchHeaderLen)
	buf := appendBatch(nil, hdr, []byte("abc"), []byte{}, make([]byte, 1500))
	buf = appendBatch(buf, hdr, []byte("z"))
	want := [][]int{{3, 0, 1500}, {1}}
	got := decodeFrames(t, buf)
	require.Len(t, got, len(want))
	for i, f := range got {
		pkts, isBatch := porttest.BatchOf(t, f, 42)
		require.True(t, isBatch, "%v", f)
		require.Len(t, pkts, len(want[i]))
		for j, p := range pkts {
			assert.Len(t, p, want[i][j])
		}
	}
}

func TestBatchFrameAllocs(t *testing.T) {
	hdr := BatchHeader(1)
	buf := make([]byte, 0, 64<<10)
	pkt := make([]byte, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = appendBatch(buf[:0], hdr, pkt, pkt, pkt, pkt)
	})
	assert.Zero(t, allocs)
}

// BenchmarkBatchFrameEncode builds 64-packet batch frames; one op is one
// packet.
func BenchmarkBatchFrameEncode(b *testing.B) {
	hdr := BatchHeader(1)
	buf := make([]byte, 0, 64<<10)
	pkt := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	start, n := 0, 0
	for i := 0; i < b.N; i++ {
		if n == 0 {
			buf = buf[:0]
			start = 0
			buf = BeginBatchFrame(buf, hdr)
		}
		ps := len(buf)
		buf = BeginBatchPacket(buf)
		buf = append(buf, pkt...)
		EndBatchPacket(buf, ps)
		if n++; n == 64 {
			buf = EndBatchFrame(buf, start, n)
			n = 0
		}
	}
}
