package porttest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
)

// FrameLimit bounds the frames ReadFrame accepts: a sanity bound of the
// client, above anything the port sends (portproto checks it is above
// MaxFrame + MaxPacket).
const FrameLimit = 1 << 20

// ReadFrame reads one {packet, 4} frame from r: a 4-byte big-endian length
// and that many bytes.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > FrameLimit {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// AppendFrame appends payload to dst as one {packet, 4} frame.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// Client speaks to a port as the BEAM does: it writes frames to w and reads
// the port's frames from r in the background.
type Client struct {
	t      testing.TB
	w      io.Writer
	frames chan etf.Term // read in the background (NewClient)
	sync   io.Reader     // or read by Next itself (NewSyncClient)
	id     int
	// Timeout is how long Next waits for a frame.
	Timeout time.Duration
	// Lenient makes Call skip the frames that arrive before its reply
	// (packets from a real device, for example); by default any other frame
	// fails the test.
	Lenient bool
}

// NewClient starts reading frames from r (until it fails or reaches EOF) and
// returns a client writing to w.
func NewClient(t testing.TB, w io.Writer, r io.Reader) *Client {
	c := &Client{t: t, w: w, frames: make(chan etf.Term, 4096), Timeout: time.Second}
	go c.read(bufio.NewReader(r))
	return c
}

// NewSyncClient returns a client that reads the port's frames only when
// Next (or Call) asks for one, blocking without a timeout: for tests of a
// reader that stops reading.
func NewSyncClient(t testing.TB, w io.Writer, r io.Reader) *Client {
	return &Client{t: t, w: w, sync: bufio.NewReaderSize(r, 1<<16)}
}

func (c *Client) read(r io.Reader) {
	defer close(c.frames)
	for {
		b, err := ReadFrame(r)
		if err != nil {
			return
		}
		term, err := etf.Decode(b)
		if err != nil {
			panic(fmt.Sprintf("port sent invalid ETF %x: %v", b, err))
		}
		c.frames <- term
	}
}

// Raw sends one frame with arbitrary content.
func (c *Client) Raw(b []byte) {
	c.t.Helper()
	_, err := c.w.Write(AppendFrame(nil, b))
	require.NoError(c.t, err)
}

// Write sends one term.
func (c *Client) Write(term etf.Term) {
	c.t.Helper()
	b, err := etf.Encode(term)
	require.NoError(c.t, err)
	c.Raw(b)
}

// Next returns the next frame, failing the test after Timeout (background
// reading only) or when the port closed its output.
func (c *Client) Next() etf.Term {
	c.t.Helper()
	if c.sync != nil {
		b, err := ReadFrame(c.sync)
		require.NoError(c.t, err, "reading the port's output")
		term, err := etf.Decode(b)
		require.NoError(c.t, err, "port sent invalid ETF %x", b)
		return term
	}
	select {
	case f, ok := <-c.frames:
		require.True(c.t, ok, "port closed its output")
		return f
	case <-time.After(c.Timeout):
		c.t.Fatalf("no frame within %v", c.Timeout)
	}
	return nil
}

// Quiet fails the test if a frame arrives within d.
func (c *Client) Quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %v", f)
	case <-time.After(d):
	}
}

// Call sends {call, Id, Cmd} and returns Result from {reply, Id, Result}.
func (c *Client) Call(cmd etf.Term) etf.Term {
	c.t.Helper()
	c.id++
	c.Write(etf.Tuple(etf.Atom("call"), c.id, cmd))
	for {
		f := c.Next()
		tu, isReply := etf.TaggedTuple(f, "reply", 3)
		if !isReply {
			require.True(c.t, c.Lenient, "expected the reply to call %d, got %v", c.id, f)
			continue
		}
		id, _ := etf.AsInt(tu[1])
		require.EqualValues(c.t, c.id, id)
		return tu[2]
	}
}

// MustOK calls cmd and fails the test unless it answers ok or {ok, X}; it
// returns ok or X.
func (c *Client) MustOK(cmd etf.Term) etf.Term {
	c.t.Helper()
	res := c.Call(cmd)
	if IsOK(res) {
		return res
	}
	tu, isT := etf.TaggedTuple(res, "ok", 2)
	require.True(c.t, isT, "%v -> %v", cmd, res)
	return tu[1]
}

// NextPacket skips frames until a {tuntap, Ref, Packet} of device ref
// whose packet satisfies keep, and returns the packet.
func (c *Client) NextPacket(ref int, keep func([]byte) bool) []byte {
	c.t.Helper()
	for {
		tu, isT := etf.TaggedTuple(c.Next(), "tuntap", 3)
		if !isT {
			continue
		}
		r, _ := etf.AsInt(tu[1])
		pkt, _ := etf.AsBinary(tu[2])
		if int(r) == ref && keep(pkt) {
			return pkt
		}
	}
}

// NextBatch skips frames until a {tuntap_batch, Ref, Packets} of device
// ref, and returns its packets (at least one).
func (c *Client) NextBatch(ref int) [][]byte {
	c.t.Helper()
	for {
		if pkts, isBatch := BatchOf(c.t, c.Next(), ref); isBatch {
			return pkts
		}
	}
}

// BatchOf returns the packets of f when it is a {tuntap_batch, Ref,
// Packets} frame of device ref (failing the test when its packets are not a
// non-empty list of binaries); false for any other frame.
func BatchOf(t testing.TB, f etf.Term, ref int) ([][]byte, bool) {
	t.Helper()
	tu, isT := etf.TaggedTuple(f, "tuntap_batch", 3)
	if !isT {
		return nil, false
	}
	if r, _ := etf.AsInt(tu[1]); int(r) != ref {
		return nil, false
	}
	l, isL := etf.AsList(tu[2])
	require.True(t, isL, "%v", f)
	require.NotEmpty(t, l, "a batch holds at least one packet")
	out := make([][]byte, len(l))
	for i, e := range l {
		var isB bool
		out[i], isB = etf.AsBinary(e)
		require.True(t, isB, "%v", f)
	}
	return out, true
}

// ErrorOf returns the reason of {error, Reason}, or "" for any other term.
func ErrorOf(t etf.Term) string {
	if tu, isT := etf.TaggedTuple(t, "error", 2); isT {
		a, _ := etf.AsAtom(tu[1])
		return a
	}
	return ""
}

// IsOK reports whether t is the atom ok.
func IsOK(t etf.Term) bool {
	a, isA := etf.AsAtom(t)
	return isA && a == "ok"
}

// Atoms returns the list of atoms names.
func Atoms(names ...string) etf.Term {
	l := make([]etf.Term, len(names))
	for i, n := range names {
		l[i] = etf.Atom(n)
	}
	return etf.List(l...)
}
