package etf

import (
	"testing"
)

// FuzzDecode checks that no input makes the decoder panic, hang or accept a
// term that Validate refused, and that accepted terms re-encode.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{otpOpen, otpActive,
		// {send, 3, <<"xyz">>}, canonical
		{131, 104, 3, 119, 4, 's', 'e', 'n', 'd', 98, 0, 0, 0, 3, 109, 0, 0, 0, 3, 'x', 'y', 'z'},
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
