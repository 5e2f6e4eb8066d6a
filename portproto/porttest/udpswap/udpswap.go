// Package udpswap turns UDP packets into their replies in place, for the
// reflectors of the tests and of make bench. It imports nothing of the
// testing machinery, so the bench binary does not link it.
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
