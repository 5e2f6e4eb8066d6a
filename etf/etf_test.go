package etf

import (
	"encoding/binary"
	"math/big"
	"testing"

	erlang "github.com/okeuday/erlang_go/v2/erlang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Frames produced by OTP 25's term_to_binary/1.
var (
	// {call, 1, {open, 7, <<"tun7">>, [tun, no_pi]}}
	otpOpen = []byte{131, 104, 3, 100, 0, 4, 99, 97, 108, 108, 97, 1, 104, 4, 100, 0, 4, 111, 112, 101, 110, 97, 7, 109, 0, 0, 0, 4, 116, 117, 110, 55, 108, 0, 0, 0, 2, 100, 0, 3, 116, 117, 110, 100, 0, 5, 110, 111, 95, 112, 105, 106}
	// {active, 7, true}
	otpActive = []byte{131, 104, 3, 100, 0, 6, 97, 99, 116, 105, 118, 101, 97, 7, 100, 0, 4, 116, 114, 117, 101}
)

func TestDecodeOTPTerms(t *testing.T) {
	term, err := Decode(otpOpen)
	require.NoError(t, err)
	call, ok := TaggedTuple(term, "call", 3)
	require.True(t, ok)
	id, ok := AsInt(call[1])
	require.True(t, ok)
	assert.EqualValues(t, 1, id)
	open, ok := TaggedTuple(call[2], "open", 4)
	require.True(t, ok)
	name, ok := AsBinary(open[2])
	require.True(t, ok)
	assert.Equal(t, "tun7", string(name))
	flags, ok := AsList(open[3])
	require.True(t, ok)
	require.Len(t, flags, 2)
	f0, _ := AsAtom(flags[0])
	assert.Equal(t, "tun", f0)

	term, err = Decode(otpActive)
	require.NoError(t, err)
	act, ok := TaggedTuple(term, "active", 3)
	require.True(t, ok)
	b, ok := AsBool(act[2])
	assert.True(t, ok && b)
	a, ok := AsAtom(act[2])
	assert.True(t, ok)
	assert.Equal(t, "true", a)
}

func TestAsIntRanges(t *testing.T) {
	for _, v := range []int64{0, 255, 256, -1, 1 << 31, -(1 << 40), 1<<63 - 1} {
		enc, err := Encode(big.NewInt(v))
		require.NoError(t, err)
		term, err := Decode(enc)
		require.NoError(t, err, "value %d", v)
		got, ok := AsInt(term)
		assert.True(t, ok)
		assert.Equal(t, v, got)
	}
	_, ok := AsInt(new(big.Int).Lsh(big.NewInt(1), 70))
	assert.False(t, ok)
	_, ok = AsInt(Atom("x"))
	assert.False(t, ok)
}

func TestAsListString(t *testing.T) {
	// "ab" as STRING_EXT
	term, err := Decode([]byte{131, 107, 0, 2, 'a', 'b'})
	require.NoError(t, err)
	l, ok := AsList(term)
	require.True(t, ok)
	require.Len(t, l, 2)
	v, _ := AsInt(l[0])
	assert.EqualValues(t, 'a', v)
	_, ok = AsList(erlang.OtpErlangList{Value: []interface{}{1}, Improper: true})
	assert.False(t, ok)
}

func TestValidateRejects(t *testing.T) {
	bad := map[string][]byte{
		"empty":             {},
		"no version":        {104, 0},
		"only version":      {131},
		"truncated tuple":   {131, 104, 2, 97, 1},
		"trailing bytes":    {131, 97, 1, 97},
		"huge binary":       {131, 109, 0xff, 0xff, 0xff, 0xff, 1},
		"huge list":         {131, 108, 0xff, 0xff, 0xff, 0xff, 106},
		"huge tuple":        {131, 105, 0x7f, 0xff, 0xff, 0xff},
		"compressed":        {131, 80, 0, 0, 0, 10, 1, 2},
		"float":             append([]byte{131, 99}, make([]byte, 31)...),
		"pid":               {131, 88, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"big bignum":        {131, 110, 200, 0},
		"bad bignum sign":   {131, 110, 1, 7, 1},
		"truncated atom":    {131, 100, 0, 9, 'a'},
		"truncated string":  {131, 107, 0, 9, 'a'},
		"improper tail cut": {131, 108, 0, 0, 0, 1, 97, 1},
	}
	for name, b := range bad {
		_, err := Decode(b)
		assert.ErrorIs(t, err, ErrBadETF, name)
	}
	deep := []byte{131}
	for i := 0; i < 40; i++ {
		deep = append(deep, 104, 1)
	}
	deep = append(deep, 106)
	assert.ErrorIs(t, Validate(deep), ErrBadETF, "nesting")
}

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
	for i := 0; len(buf) > 0; i++ {
		n := int(binary.BigEndian.Uint32(buf))
		term, err := Decode(buf[4 : 4+n])
		require.NoError(t, err)
		tu, ok := TaggedTuple(term, "tuntap", 3)
		require.True(t, ok)
		ref, _ := AsInt(tu[1])
		assert.EqualValues(t, 42, ref)
		pkt, ok := AsBinary(tu[2])
		require.True(t, ok)
		assert.Len(t, pkt, want[i])
		buf = buf[4+n:]
	}
}

func TestParseSend(t *testing.T) {
	frame := AppendSendFrame(nil, 9, []byte{1, 2, 3})
	ref, pkt, ok := ParseSend(frame)
	require.True(t, ok)
	assert.EqualValues(t, 9, ref)
	assert.Equal(t, []byte{1, 2, 3}, pkt)
	// The same frame also decodes generically as {send, 9, <<1,2,3>>}.
	term, err := Decode(frame)
	require.NoError(t, err)
	_, ok = TaggedTuple(term, "send", 3)
	assert.True(t, ok)
	// Wrong length fields are not the fast path.
	_, _, ok = ParseSend(frame[:len(frame)-1])
	assert.False(t, ok)
	_, _, ok = ParseSend(otpActive)
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

func BenchmarkDecodeCall(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(otpOpen); err != nil {
			b.Fatal(err)
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
	term, err := Decode(frame)
	require.NoError(t, err)
	tu, ok := TaggedTuple(term, "sendv", 3)
	require.True(t, ok)
	l, ok := AsList(tu[2])
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
	for i := 0; len(buf) > 0; i++ {
		n := int(binary.BigEndian.Uint32(buf))
		term, err := Decode(buf[4 : 4+n])
		require.NoError(t, err)
		tu, ok := TaggedTuple(term, "tuntap_batch", 3)
		require.True(t, ok)
		ref, _ := AsInt(tu[1])
		assert.EqualValues(t, 42, ref)
		l, ok := AsList(tu[2])
		require.True(t, ok)
		require.Len(t, l, len(want[i]))
		for j, e := range l {
			p, ok := AsBinary(e)
			require.True(t, ok)
			assert.Len(t, p, want[i][j])
		}
		buf = buf[4+n:]
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
