// Package gro merges runs of UDP datagrams of one flow into UDP GSO
// super-packets for a TUN device with a virtio-net header: one write(2)
// that the kernel segments back into exactly the datagrams given, instead
// of one write(2) per datagram. It is what the kernel's own GRO does for a
// NIC, done before the packets enter the kernel, and it is pure: no system
// calls (device does the writes).
//
// A run is merged only when the kernel's segmentation (__udp_gso_segment,
// then the IP layer's) gives back the same bytes: same addresses, ports,
// TOS/traffic class, TTL/hop limit, DF flag and flow label; IPv4 without
// options or fragmentation and with consecutive IP IDs (the kernel numbers
// the segments so) or, with DF set, all the same ID (then renumbered, as
// Linux's own UDP GRO does: RFC 6864); IPv6 with UDP as the first next header; every datagram's
// payload as long as the first's except the last, which may be shorter; and
// every checksum valid (the kernel trusts a super-packet's partial checksum,
// so a datagram it would have dropped must not be merged).
package gro

import (
	"encoding/binary"
	"math/bits"
)

// VnetHdrLen is the length of struct virtio_net_hdr, the header in front of
// every packet on a descriptor of a device opened with IFF_VNET_HDR.
const VnetHdrLen = 10

// MaxSegments bounds the datagrams merged into one super-packet (the
// kernel's UDP_MAX_SEGMENTS is at least this).
const MaxSegments = 64

// MaxSuperLen bounds a super-packet's IP length. The kernel copies a TUN
// write shorter than a page (with its headroom) into one linear buffer and
// a longer one into page fragments; merged writes of the longer kind
// measured slower than the datagrams written one by one (1400-byte
// datagrams, 46 to a write: 180k-184k against 221k-227k packets/s), while
// short merges save ~10% of the reflector's CPU per 64-byte datagram. So
// runs stop short of a page: 64-byte datagrams merge by up to 64,
// 1400-byte ones by 2.
const MaxSuperLen = 4096 - 256

// HdrBufLen is the room Plan needs for the virtio-net header and the
// super-packet's IP and UDP headers.
const HdrBufLen = VnetHdrLen + ipv6HdrLen + udpHdrLen

const (
	ipv4HdrLen = 20
	ipv6HdrLen = 40
	udpHdrLen  = 8
	protoUDP   = 17

	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSOUDPL4  = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
)

// Plan looks at the IP packets pkts (TUN framing: no link header, no
// packet information) and returns how many leading ones, n, can be written
// as one UDP GSO super-packet, and hl, the length of their IP and UDP
// headers. When n >= 2 it has written into hdr the virtio-net header and
// the super-packet's IP and UDP headers: the super-packet is
// hdr[:VnetHdrLen+hl] followed by pkts[i][hl:] for i < n. When n < 2
// nothing can be merged and hdr is unspecified.
func Plan(hdr *[HdrBufLen]byte, pkts [][]byte) (n, hl int) {
	if len(pkts) < 2 {
		return 0, 0
	}
	first := pkts[0]
	hl, ok := headerLen(first)
	if !ok {
		return 0, 0
	}
	seg := len(first) - hl
	if seg == 0 {
		return 0, 0
	}
	total := len(first)
	fixedID := false
	n = 1
	for n < len(pkts) && n < MaxSegments {
		p := pkts[n]
		phl, ok := headerLen(p)
		if n == 1 && ok && phl == hl {
			fixedID = hl == ipv4HdrLen+udpHdrLen && first[6]&0x40 != 0 && string(p[4:6]) == string(first[4:6])
		}
		if !ok || phl != hl || len(p) == hl || len(p) > len(first) ||
			total+len(p)-hl > MaxSuperLen || !sameFlow(first, p, hl, n, fixedID) || !valid(p, hl) {
			break
		}
		total += len(p) - hl
		n++
		if len(p) < len(first) {
			break // a shorter datagram ends a run
		}
	}
	if n < 2 || !valid(first, hl) {
		return 0, 0
	}
	writeHeader(hdr, first, hl, seg, total)
	return n, hl
}

// headerLen returns the length of the IP and UDP headers of a packet Plan
// may merge, or false.
func headerLen(p []byte) (int, bool) {
	switch {
	case len(p) >= ipv4HdrLen+udpHdrLen && p[0] == 0x45:
		// no options; not a fragment (MF clear, offset 0); UDP; the
		// lengths cover the packet exactly
		if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 || p[9] != protoUDP ||
			int(binary.BigEndian.Uint16(p[2:])) != len(p) ||
			int(binary.BigEndian.Uint16(p[24:])) != len(p)-ipv4HdrLen {
			return 0, false
		}
		return ipv4HdrLen + udpHdrLen, true
	case len(p) >= ipv6HdrLen+udpHdrLen && p[0]>>4 == 6:
		if p[6] != protoUDP || int(binary.BigEndian.Uint16(p[4:])) != len(p)-ipv6HdrLen ||
			int(binary.BigEndian.Uint16(p[44:])) != len(p)-ipv6HdrLen {
			return 0, false
		}
		return ipv6HdrLen + udpHdrLen, true
	}
	return 0, false
}

// sameFlow reports whether p, the i-th packet of a run starting with first,
// has the headers the kernel will give the i-th segment of first's
// super-packet (lengths and checksums aside). With fixedID (DF set, the
// first two IDs equal) every IPv4 ID must be first's: the kernel numbers
// the segments from it, which for datagrams that may not be fragmented
// (RFC 6864: their ID means nothing) is what Linux's own UDP GRO does too.
func sameFlow(first, p []byte, hl, i int, fixedID bool) bool {
	if hl == ipv4HdrLen+udpHdrLen {
		// TOS, flags, TTL, protocol, addresses, ports; ID first's + i
		id, id0 := binary.BigEndian.Uint16(p[4:]), binary.BigEndian.Uint16(first[4:])
		return p[0] == first[0] && p[1] == first[1] &&
			binary.BigEndian.Uint16(p[6:]) == binary.BigEndian.Uint16(first[6:]) &&
			p[8] == first[8] && p[9] == first[9] &&
			string(p[12:24]) == string(first[12:24]) &&
			(id == id0+uint16(i) || fixedID && id == id0)
	}
	// version, traffic class, flow label; next header, hop limit;
	// addresses, ports
	return string(p[0:4]) == string(first[0:4]) && p[6] == first[6] && p[7] == first[7] &&
		string(p[8:44]) == string(first[8:44])
}

// valid reports whether the checksums the kernel would verify on receipt
// are right: the IPv4 header's, and the UDP checksum (absent, 0, is valid
// over IPv4 only).
func valid(p []byte, hl int) bool {
	udp := p[hl-udpHdrLen:]
	if hl == ipv4HdrLen+udpHdrLen {
		if fold(sum(p[:ipv4HdrLen], 0)) != 0xffff {
			return false
		}
		if binary.BigEndian.Uint16(udp[6:]) == 0 {
			return true
		}
		return fold(sum(udp, pseudo(p[12:20], len(udp)))) == 0xffff
	}
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		return false
	}
	return fold(sum(udp, pseudo(p[8:40], len(udp)))) == 0xffff
}

// writeHeader writes the virtio-net header and the super-packet's headers:
// first's, with the lengths of the whole and, in the UDP checksum field, the
// pseudo-header sum the kernel completes per segment.
func writeHeader(hdr *[HdrBufLen]byte, first []byte, hl, seg, total int) {
	v := hdr[:VnetHdrLen]
	v[0] = vnetNeedsCsum
	v[1] = vnetGSOUDPL4
	ne := binary.NativeEndian                 // the legacy virtio-net header is native-endian
	ne.PutUint16(v[2:], uint16(hl))           // hdr_len
	ne.PutUint16(v[4:], uint16(seg))          // gso_size
	ne.PutUint16(v[6:], uint16(hl-udpHdrLen)) // csum_start
	ne.PutUint16(v[8:], 6)                    // csum_offset: udphdr.check
	h := hdr[VnetHdrLen : VnetHdrLen+hl]
	copy(h, first[:hl])
	udp := h[hl-udpHdrLen:]
	ulen := total - (hl - udpHdrLen)
	binary.BigEndian.PutUint16(udp[4:], uint16(ulen))
	var ps uint64
	if hl == ipv4HdrLen+udpHdrLen {
		binary.BigEndian.PutUint16(h[2:], uint16(total))
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^fold(sum(h[:ipv4HdrLen], 0)))
		ps = pseudo(h[12:20], ulen)
	} else {
		binary.BigEndian.PutUint16(h[4:], uint16(ulen))
		ps = pseudo(h[8:40], ulen)
	}
	binary.BigEndian.PutUint16(udp[6:], fold(ps))
}

// pseudo is the one's-complement sum of the UDP pseudo-header: the
// addresses, the protocol and the UDP length.
func pseudo(addrs []byte, ulen int) uint64 {
	return sum(addrs, uint64(protoUDP)+uint64(ulen))
}

// sum adds b, as big-endian 16-bit words, to the one's-complement sum acc
// (unfolded: fold it).
func sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	var tail uint64
	for len(b) >= 2 {
		tail += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 8
	}
	acc, c = bits.Add64(acc, tail, c)
	return acc + c // no overflow: a sum that carried is smaller than tail+1
}

// fold folds an unfolded one's-complement sum to 16 bits.
func fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}
