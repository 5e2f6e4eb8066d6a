package etf

import "encoding/binary"

// The data path uses one canonical encoding per direction so that both sides
// can build and match it with byte patterns and no allocation:
//
//	{tuntap, Ref, Packet}: 131,104,3, 119,6,"tuntap", 98,Ref:32, 109,Len:32, Packet
//	{send, Ref, Packet}:   131,104,3, 119,4,"send",   98,Ref:32, 109,Len:32, Packet

// PacketHeaderLen is the size of the canonical {tuntap, Ref, _} header,
// from the version byte to the binary's length field inclusive.
const PacketHeaderLen = 3 + 8 + 5 + 5

var (
	packetTag = []byte{tagVersion, tagSmallTuple, 3, tagSmallAtomUTF8, 6, 't', 'u', 'n', 't', 'a', 'p'}
	sendTag   = []byte{tagVersion, tagSmallTuple, 3, tagSmallAtomUTF8, 4, 's', 'e', 'n', 'd'}
)

// PacketHeader returns the canonical header of {tuntap, ref, Packet} with a
// zero length; AppendPacketFrame patches the length in place.
func PacketHeader(ref int32) []byte {
	h := make([]byte, 0, PacketHeaderLen)
	h = append(h, packetTag...)
	h = append(h, tagInteger)
	h = binary.BigEndian.AppendUint32(h, uint32(ref))
	h = append(h, tagBinary, 0, 0, 0, 0)
	return h
}

// BeginPacketFrame appends a {packet,4} length field and the header to dst and
// returns the extended slice; the caller then appends the packet bytes and
// calls EndPacketFrame with the offset where this frame started.
func BeginPacketFrame(dst, header []byte) []byte {
	dst = append(dst, 0, 0, 0, 0)
	return append(dst, header...)
}

// EndPacketFrame patches the frame length and the binary length of the frame
// that starts at dst[start:] and ends at len(dst).
func EndPacketFrame(dst []byte, start int) {
	total := len(dst) - start - 4
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4+PacketHeaderLen-4:], uint32(total-PacketHeaderLen))
}

// ParseSend recognises the canonical encoding of {send, Ref, Packet} and
// returns its parts without copying. ok is false for any other term, which
// the caller then decodes generically.
func ParseSend(frame []byte) (ref int32, packet []byte, ok bool) {
	const hl = 9 + 5 + 5
	if len(frame) < hl || string(frame[:9]) != string(sendTag) || frame[9] != tagInteger || frame[14] != tagBinary {
		return 0, nil, false
	}
	if int(binary.BigEndian.Uint32(frame[15:19])) != len(frame)-hl {
		return 0, nil, false
	}
	return int32(binary.BigEndian.Uint32(frame[10:14])), frame[hl:], true
}

// AppendSendFrame appends the canonical {send, Ref, Packet} term (without the
// {packet,4} length). It exists for tests and tools that speak to the port.
func AppendSendFrame(dst []byte, ref int32, packet []byte) []byte {
	dst = append(dst, sendTag...)
	dst = append(dst, tagInteger)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ref))
	dst = append(dst, tagBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(packet)))
	return append(dst, packet...)
}
