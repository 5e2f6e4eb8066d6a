// Package udpswap builds UDP packets and turns them into their replies in
// place, for the reflectors of the tests and of make bench. It imports
// nothing of the testing machinery, so the bench binary does not link it.
package udpswap

import "encoding/binary"

// V4 turns an IPv4 UDP packet into its reply in place: source and
// destination addresses are exchanged, and so are the ports. The IP header
// checksum and the UDP checksum stay valid (both are sums in which the order
// of the swapped fields does not matter). It returns false, leaving pkt
// untouched, for anything that is not a complete IPv4 UDP header (IPv6,
// ICMP, fragments after the first, truncated packets).
func V4(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8 || pkt[9] != 17 {
		return false
	}
	// a non-first fragment has no UDP header
	if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return false
	}
	for i := 12; i < 16; i++ {
		pkt[i], pkt[i+4] = pkt[i+4], pkt[i]
	}
	pkt[ihl], pkt[ihl+1], pkt[ihl+2], pkt[ihl+3] = pkt[ihl+2], pkt[ihl+3], pkt[ihl], pkt[ihl+1]
	return true
}

// IsV4To returns a predicate matching IPv4 UDP packets to port.
func IsV4To(port int) func([]byte) bool {
	return func(p []byte) bool {
		if len(p) < 20 || p[0]>>4 != 4 || p[9] != 17 {
			return false
		}
		ihl := int(p[0]&0x0f) * 4
		return len(p) >= ihl+8 && int(binary.BigEndian.Uint16(p[ihl+2:ihl+4])) == port
	}
}

// V6 is V4 for an IPv6 packet whose first next header is UDP.
func V6(pkt []byte) bool {
	if len(pkt) < 48 || pkt[0]>>4 != 6 || pkt[6] != 17 {
		return false
	}
	for i := 8; i < 24; i++ {
		pkt[i], pkt[i+16] = pkt[i+16], pkt[i]
	}
	pkt[40], pkt[41], pkt[42], pkt[43] = pkt[42], pkt[43], pkt[40], pkt[41]
	return true
}

// IsV6To returns a predicate matching IPv6 packets whose first next
// header is UDP, to port.
func IsV6To(port int) func([]byte) bool {
	return func(p []byte) bool {
		return len(p) >= 48 && p[0]>>4 == 6 && p[6] == 17 && int(binary.BigEndian.Uint16(p[42:44])) == port
	}
}

// Build4 returns an IPv4 UDP datagram src:sport -> dst:dport with IP ID id,
// DF set, TTL 64 and valid IP and UDP checksums.
func Build4(src, dst [4]byte, sport, dport, id uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[6], p[8], p[9] = 0x45, 0x40, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], ^sum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	c := ^sum(p[20:], pseudo4(p))
	if c == 0 {
		c = 0xffff // 0 means "no checksum"
	}
	binary.BigEndian.PutUint16(p[26:], c)
	return p
}

// Valid4 reports whether the IPv4 header checksum and the UDP checksum
// (absent, 0, counts as valid) of an IPv4 UDP packet without options are
// right.
func Valid4(p []byte) bool {
	if len(p) < 28 || p[0] != 0x45 || p[9] != 17 {
		return false
	}
	return sum(p[:20], 0) == 0xffff &&
		(binary.BigEndian.Uint16(p[26:]) == 0 || sum(p[20:], pseudo4(p)) == 0xffff)
}

func pseudo4(p []byte) uint32 {
	s := uint32(17) + uint32(len(p)-20)
	for i := 12; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	return s
}

// sum is the folded one's-complement sum of b (RFC 1071), from s.
func sum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
