package portproto

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ReadFrame reads one {packet, 4} frame from r: a 4-byte big-endian length
// and that many bytes. It is the client side of the framing (tests and
// tools that speak to tunctl_port); the serve loop parses its own buffer.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame+MaxPacket {
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
