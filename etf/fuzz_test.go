package etf

import (
	"testing"
)

// FuzzDecode checks that no input makes the decoder panic, hang or accept a
// term that Validate refused, and that accepted terms re-encode.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{otpOpen, otpActive, AppendSendFrame(nil, 3, []byte("xyz")),
		{131, 106}, {131, 107, 0, 1, 'a'}, {131, 110, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		term, err := Decode(b)
		if err != nil {
			return
		}
		if Validate(b) != nil {
			t.Fatalf("decoded a frame Validate refuses: %x", b)
		}
		if _, err := Encode(term); err != nil {
			t.Fatalf("decoded term does not re-encode: %v (%x)", err, b)
		}
	})
}

// FuzzParseSend checks the data-path fast path against the generic decoder.
func FuzzParseSend(f *testing.F) {
	f.Add(AppendSendFrame(nil, 1, []byte{1, 2, 3}))
	f.Add(otpActive)
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, pkt, ok := ParseSend(b)
		if !ok {
			return
		}
		term, err := Decode(b)
		if err != nil {
			t.Fatalf("fast path accepted an invalid frame %x", b)
		}
		tu, isT := TaggedTuple(term, "send", 3)
		r, _ := AsInt(tu[1])
		p, _ := AsBinary(tu[2])
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
		term, err := Decode(b)
		if err != nil {
			t.Fatalf("fast path accepted an invalid frame %x", b)
		}
		tu, isT := TaggedTuple(term, "sendv", 3)
		r, _ := AsInt(tu[1])
		l, _ := AsList(tu[2])
		if !isT || int32(r) != ref || len(l) != n {
			t.Fatalf("fast path disagrees with decoder on %x", b)
		}
		for _, e := range l {
			want, _ := AsBinary(e)
			var got []byte
			got, elems, ok = NextPacket(elems)
			if !ok || string(got) != string(want) {
				t.Fatalf("packet mismatch in %x", b)
			}
		}
	})
}
