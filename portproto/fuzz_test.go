package portproto

import (
	"github.com/tunctl/tunctl/portproto/porttest"
	"io"
	"log"
	"testing"

	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// FuzzHandle feeds arbitrary request frames to the dispatcher with one fake
// device open: nothing may panic, and every frame must produce at most a
// bounded amount of output.
func FuzzHandle(f *testing.F) {
	seeds := []etf.Term{
		etf.Tuple(etf.Atom("call"), 1, openCmd(2, "x", "tun")),
		etf.Tuple(etf.Atom("call"), 1, etf.Tuple(etf.Atom("read"), 1, 10)),
		etf.Tuple(etf.Atom("call"), 1, etf.Tuple(etf.Atom("addr_add"), 1, []byte{1, 2, 3, 4}, 8, etf.List())),
		etf.Tuple(etf.Atom("call"), 1, etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 1000)))),
		etf.Tuple(etf.Atom("active"), 1, true),
		etf.Tuple(etf.Atom("send"), 1, []byte{0x45}),
	}
	for _, s := range seeds {
		b, err := etf.Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(AppendSendFrame(nil, 1, []byte{0x60}))
	f.Add(AppendSendvFrame(nil, 1, []byte{0x60}, []byte{0x45}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		dev, err := porttest.NewFakeDev("f", 0)
		if err != nil {
			t.Skip(err)
		}
		defer dev.ClosePeer()
		open := func(name string, flags uint16) (Device, error) { return nil, unix.EPERM }
		s := NewServer(-1, -1, Env{Open: open, Links: &porttest.FakeLinks{}, Log: log.New(io.Discard, "", 0)})
		s.devs[1] = &devState{Device: dev, ref: 1, header: PacketHeader(1)}
		s.order = append(s.order, s.devs[1])
		s.handle(frame)
		if len(s.outbuf) > 4*MaxPacket {
			t.Fatalf("%d bytes of output for one frame", len(s.outbuf))
		}
		s.closeAll()
	})
}

// FuzzParseSend checks the data-path fast path against the generic decoder.
func FuzzParseSend(f *testing.F) {
	f.Add(AppendSendFrame(nil, 1, []byte{1, 2, 3}))
	f.Add(etfOTPActive)
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, pkt, ok := ParseSend(b)
		if !ok {
			return
		}
		term, err := etf.Decode(b)
		if err != nil {
			t.Fatalf("fast path accepted an invalid frame %x", b)
		}
		tu, isT := etf.TaggedTuple(term, "send", 3)
		r, _ := etf.AsInt(tu[1])
		p, _ := etf.AsBinary(tu[2])
		if !isT || int32(r) != ref || string(p) != string(pkt) {
			t.Fatalf("fast path disagrees with decoder on %x", b)
		}
	})
}

// FuzzParseSendv checks the batch fast path against the generic decoder.
func FuzzParseSendv(f *testing.F) {
	f.Add(AppendSendvFrame(nil, 1, []byte{1, 2, 3}, []byte{4}))
	f.Add(AppendSendvFrame(nil, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, elems, n, ok := ParseSendv(b)
		if !ok {
			return
		}
		term, err := etf.Decode(b)
		if err != nil {
			t.Fatalf("fast path accepted an invalid frame %x", b)
		}
		tu, isT := etf.TaggedTuple(term, "sendv", 3)
		r, _ := etf.AsInt(tu[1])
		l, _ := etf.AsList(tu[2])
		if !isT || int32(r) != ref || len(l) != n {
			t.Fatalf("fast path disagrees with decoder on %x", b)
		}
		for _, e := range l {
			want, _ := etf.AsBinary(e)
			var got []byte
			got, elems, ok = NextPacket(elems)
			if !ok || string(got) != string(want) {
				t.Fatalf("packet mismatch in %x", b)
			}
		}
	})
}
