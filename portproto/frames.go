package portproto

import (
	"encoding/binary"

	"github.com/tunctl/tunctl/etf"
)

// Data-path frames: the protocol's frame layouts for packets, built and
// matched by hand (no allocation) from the ETF tags of package etf.
//
// The data path uses one canonical encoding per direction so that both sides
// can build and match it with byte patterns and no allocation:
//
//	{tuntap, Ref, Packet}: 131,104,3, 119,6,"tuntap", 98,Ref:32, 109,Len:32, Packet
//	{send, Ref, Packet}:   131,104,3, 119,4,"send",   98,Ref:32, 109,Len:32, Packet

// PacketHeaderLen is the size of the canonical {tuntap, Ref, _} header,
// from the version byte to the binary's length field inclusive.
const PacketHeaderLen = 3 + 8 + 5 + 5

var (
	packetTag = []byte{etf.TagVersion, etf.TagSmallTuple, 3, etf.TagSmallAtomUTF8, 6, 't', 'u', 'n', 't', 'a', 'p'}
	sendTag   = []byte{etf.TagVersion, etf.TagSmallTuple, 3, etf.TagSmallAtomUTF8, 4, 's', 'e', 'n', 'd'}
)

// PacketHeader returns the canonical header of {tuntap, ref, Packet} with a
// zero length; AppendPacketFrame patches the length in place.
func PacketHeader(ref int32) []byte {
	return refHeader(packetTag, ref, etf.TagBinary, PacketHeaderLen)
}

// refHeader is tag, ref as an INTEGER_EXT, then the tag of the third
// element with a zero length (or count) for the caller to patch.
func refHeader(tag []byte, ref int32, third byte, size int) []byte {
	h := make([]byte, 0, size)
	h = append(h, tag...)
	h = append(h, etf.TagInteger)
	h = binary.BigEndian.AppendUint32(h, uint32(ref))
	return append(h, third, 0, 0, 0, 0)
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
	if len(frame) < hl || string(frame[:9]) != string(sendTag) || frame[9] != etf.TagInteger || frame[14] != etf.TagBinary {
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
	dst = append(dst, etf.TagInteger)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ref))
	dst = append(dst, etf.TagBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(packet)))
	return append(dst, packet...)
}

var sendvTag = []byte{etf.TagVersion, etf.TagSmallTuple, 3, etf.TagSmallAtomUTF8, 5, 's', 'e', 'n', 'd', 'v'}

// SendvHeaderLen is the size of the canonical {sendv, Ref, [...]} header up
// to and including the list's element count.
const SendvHeaderLen = 10 + 5 + 5

// ParseSendv recognises the canonical encoding of {sendv, Ref, [P1, ..., Pn]}
//
//	131,104,3, 119,5,"sendv", 98,Ref:32, 108,N:32, (109,Len:32,P)*N, 106
//
// and checks the whole frame before anything is used, so a caller never acts
// on half of a malformed batch. It returns the list's elements (to walk with
// NextPacket) and their count, without copying.
func ParseSendv(frame []byte) (ref int32, elems []byte, n int, ok bool) {
	const hl = SendvHeaderLen
	if len(frame) < hl+1 || string(frame[:10]) != string(sendvTag) || frame[10] != etf.TagInteger || frame[15] != etf.TagList {
		return 0, nil, 0, false
	}
	count := binary.BigEndian.Uint32(frame[16:20])
	if uint64(count) > uint64(len(frame)-hl)/5 {
		return 0, nil, 0, false
	}
	elems = frame[hl : len(frame)-1]
	if frame[len(frame)-1] != etf.TagNil {
		return 0, nil, 0, false
	}
	rest := elems
	for i := uint32(0); i < count; i++ {
		var isPkt bool
		if _, rest, isPkt = NextPacket(rest); !isPkt {
			return 0, nil, 0, false
		}
	}
	if len(rest) != 0 {
		return 0, nil, 0, false
	}
	return int32(binary.BigEndian.Uint32(frame[11:15])), elems, int(count), true
}

// NextPacket splits the first binary (109,Len:32,P) off elems.
func NextPacket(elems []byte) (pkt, rest []byte, ok bool) {
	if len(elems) < 5 || elems[0] != etf.TagBinary {
		return nil, nil, false
	}
	l := binary.BigEndian.Uint32(elems[1:5])
	if uint64(l) > uint64(len(elems)-5) {
		return nil, nil, false
	}
	return elems[5 : 5+l], elems[5+l:], true
}

// AppendSendvFrame appends the canonical {sendv, Ref, Packets} term (without
// the {packet,4} length), for tests and tools.
func AppendSendvFrame(dst []byte, ref int32, packets ...[]byte) []byte {
	dst = append(dst, sendvTag...)
	dst = append(dst, etf.TagInteger)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ref))
	dst = append(dst, etf.TagList)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(packets)))
	for _, p := range packets {
		dst = append(dst, etf.TagBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
		dst = append(dst, p...)
	}
	return append(dst, etf.TagNil)
}

// The batch frame of opt-in batch delivery: several packets of one device in
// one {packet,4} frame,
//
//	{tuntap_batch, Ref, [P1, ..., Pn]}:
//	131,104,3, 119,12,"tuntap_batch", 98,Ref:32, 108,N:32, (109,Len:32,P)*N, 106
//
// built in place like the single-packet frame: BeginBatchFrame, then per
// packet BeginBatchPacket, the packet bytes, EndBatchPacket, and finally
// EndBatchFrame.

// BatchHeaderLen is the size of the canonical {tuntap_batch, Ref, [...]}
// header, from the version byte to the list's element count inclusive.
const BatchHeaderLen = 3 + 14 + 5 + 5

// BatchPacketHeaderLen is the size of each packet's header in a batch frame
// (the binary tag and length).
const BatchPacketHeaderLen = 5

var batchTag = []byte{etf.TagVersion, etf.TagSmallTuple, 3, etf.TagSmallAtomUTF8, 12,
	't', 'u', 'n', 't', 'a', 'p', '_', 'b', 'a', 't', 'c', 'h'}

// BatchHeader returns the canonical header of {tuntap_batch, ref, [...]} with
// a zero count; EndBatchFrame patches the count in place.
func BatchHeader(ref int32) []byte {
	return refHeader(batchTag, ref, etf.TagList, BatchHeaderLen)
}

// BeginBatchFrame appends a {packet,4} length field and the batch header to
// dst; the frame starts at the returned slice's old length.
func BeginBatchFrame(dst, header []byte) []byte {
	return BeginPacketFrame(dst, header)
}

// BeginBatchPacket appends the header of one packet of a batch; the caller
// appends (or reads) the packet bytes after it and calls EndBatchPacket with
// the offset where this packet's header started.
func BeginBatchPacket(dst []byte) []byte {
	return append(dst, etf.TagBinary, 0, 0, 0, 0)
}

// EndBatchPacket patches the length of the packet whose header starts at
// dst[start:] and which ends at len(dst).
func EndBatchPacket(dst []byte, start int) {
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-BatchPacketHeaderLen))
}

// EndBatchFrame closes the list of the batch frame that starts at dst[start:]
// and holds n packets, and patches its lengths.
func EndBatchFrame(dst []byte, start, n int) []byte {
	dst = append(dst, etf.TagNil)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4+BatchHeaderLen-4:], uint32(n))
	return dst
}
