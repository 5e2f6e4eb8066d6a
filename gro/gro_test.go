package gro

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csum is the textbook RFC 1071 checksum, the reference for sum and fold.
func csum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = (s & 0xffff) + (s >> 16)
	}
	return ^uint16(s)
}

func pseudoHdr(src, dst []byte, ulen int) []byte {
	p := append(append([]byte{}, src...), dst...)
	if len(src) == 4 {
		return append(p, 0, protoUDP, byte(ulen>>8), byte(ulen))
	}
	return append(p, 0, 0, byte(ulen>>8), byte(ulen), 0, 0, 0, protoUDP)
}

// udpCsum sets the UDP checksum of the packet with IP+UDP header length hl.
func udpCsum(p []byte, hl int) {
	udp := p[hl-udpHdrLen:]
	udp[6], udp[7] = 0, 0
	var src, dst []byte
	if hl == ipv4HdrLen+udpHdrLen {
		src, dst = p[12:16], p[16:20]
	} else {
		src, dst = p[8:24], p[24:40]
	}
	c := csum(pseudoHdr(src, dst, len(udp)), udp)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

// v4 builds an IPv4 UDP datagram with the given ID and payload, valid checksums.
func v4(id uint16, payload []byte) []byte {
	p := make([]byte, ipv4HdrLen+udpHdrLen+len(payload))
	copy(p, []byte{0x45, 0x10, 0, 0, 0, 0, 0x40, 0, 64, protoUDP, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1})
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	binary.BigEndian.PutUint16(p[10:], csum(p[:ipv4HdrLen]))
	binary.BigEndian.PutUint16(p[20:], 9000)
	binary.BigEndian.PutUint16(p[22:], 40000)
	binary.BigEndian.PutUint16(p[24:], uint16(len(p)-ipv4HdrLen))
	copy(p[28:], payload)
	udpCsum(p, ipv4HdrLen+udpHdrLen)
	return p
}

// v6 builds an IPv6 UDP datagram between 2001:db8::2 and 2001:db8::1.
func v6(payload []byte) []byte {
	p := make([]byte, ipv6HdrLen+udpHdrLen+len(payload))
	copy(p, []byte{0x60, 0x01, 0x23, 0x45, 0, 0, protoUDP, 64})
	copy(p[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	copy(p[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)-ipv6HdrLen))
	binary.BigEndian.PutUint16(p[40:], 9000)
	binary.BigEndian.PutUint16(p[42:], 40000)
	binary.BigEndian.PutUint16(p[44:], uint16(len(p)-ipv6HdrLen))
	copy(p[48:], payload)
	udpCsum(p, ipv6HdrLen+udpHdrLen)
	return p
}

func payload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

func run4(sizes ...int) [][]byte {
	var ps [][]byte
	for i, n := range sizes {
		ps = append(ps, v4(uint16(0xfff0+i), payload(i, n)))
	}
	return ps
}

func run6(sizes ...int) [][]byte {
	var ps [][]byte
	for i, n := range sizes {
		ps = append(ps, v6(payload(i, n)))
	}
	return ps
}

func csum16Add(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// segment does what the kernel does with the super-packet Plan describes
// (virtio_net_hdr_to_skb, __udp_gso_segment, then inet_gso_segment or
// ipv6_gso_segment), with the checksums finished as skb_checksum_help
// would: it returns the datagrams the kernel delivers.
func segment(t *testing.T, hdr []byte, pkts [][]byte, skip int) [][]byte {
	t.Helper()
	ne := binary.NativeEndian
	require.Equal(t, byte(vnetNeedsCsum), hdr[0])
	require.Equal(t, byte(vnetGSOUDPL4), hdr[1])
	hl := int(ne.Uint16(hdr[2:]))
	gso := int(ne.Uint16(hdr[4:]))
	start := int(ne.Uint16(hdr[6:]))
	require.Equal(t, 6, int(ne.Uint16(hdr[8:])))
	require.Equal(t, hl-udpHdrLen, start)
	require.Equal(t, skip, hl)
	super := append([]byte{}, hdr[VnetHdrLen:]...)
	for _, p := range pkts {
		super = append(super, p[skip:]...)
	}
	v4 := hl == ipv4HdrLen+udpHdrLen
	if v4 {
		require.Equal(t, len(super), int(binary.BigEndian.Uint16(super[2:])), "tot_len")
		require.Equal(t, uint16(0), csum(super[:ipv4HdrLen]), "IPv4 header checksum")
	} else {
		require.Equal(t, len(super)-ipv6HdrLen, int(binary.BigEndian.Uint16(super[4:])), "payload_len")
	}
	uh := super[start:]
	require.Equal(t, len(uh), int(binary.BigEndian.Uint16(uh[4:])), "UDP length")
	check, oldLen := binary.BigEndian.Uint16(uh[6:]), binary.BigEndian.Uint16(uh[4:])
	body := super[hl:]
	require.Greater(t, len(body), gso, "a GSO packet is longer than one segment")
	var segs [][]byte
	for i := 0; len(body) > 0; i++ {
		k := min(gso, len(body))
		s := append(append([]byte{}, super[:hl]...), body[:k]...)
		body = body[k:]
		newLen := uint16(udpHdrLen + k)
		u := s[start:]
		binary.BigEndian.PutUint16(u[4:], newLen)
		// __udp_gso_segment: partial = check - old len + new len
		binary.BigEndian.PutUint16(u[6:], csum16Add(csum16Add(check, ^oldLen), newLen))
		c := csum(u) // skb_checksum_help from csum_start, partial sum in place
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(u[6:], c)
		if v4 {
			binary.BigEndian.PutUint16(s[2:], uint16(len(s)))
			binary.BigEndian.PutUint16(s[4:], binary.BigEndian.Uint16(super[4:])+uint16(i))
			s[10], s[11] = 0, 0
			binary.BigEndian.PutUint16(s[10:], csum(s[:ipv4HdrLen]))
		} else {
			binary.BigEndian.PutUint16(s[4:], uint16(len(s)-ipv6HdrLen))
		}
		segs = append(segs, s)
	}
	return segs
}

func TestPlanRoundTrips(t *testing.T) {
	for name, pkts := range map[string][][]byte{
		"v4 equal":          run4(36, 36, 36, 36),
		"v4 short last":     run4(1000, 1000, 1000, 100),
		"v4 one byte":       run4(1, 1),
		"v6 equal":          run6(16, 16, 16),
		"v6 short last":     run6(1352, 1352, 7),
		"v4 two of 1400":    run4(1372, 1372),
		"v4 id wraps":       {v4(0xffff, payload(0, 9)), v4(0, payload(1, 9)), v4(1, payload(2, 9))},
		"v4 max segments":   run4(fill(MaxSegments+3, 10)...),
		"v4 up to the cap":  run4(fill((MaxSuperLen-28)/100, 100)...),
		"v4 zero checksums": zeroCsum(run4(20, 20, 20)),
		"v4 DF fixed id":    fixedID(run4(20, 20, 20, 5)),
	} {
		t.Run(name, func(t *testing.T) {
			var hdr [HdrBufLen]byte
			n, hl := Plan(&hdr, pkts)
			want := min(len(pkts), MaxSegments)
			require.Equal(t, want, n)
			segs := segment(t, hdr[:VnetHdrLen+hl], pkts[:n], hl)
			require.Len(t, segs, n)
			if name == "v4 DF fixed id" {
				renumber(pkts)
			}
			for i, s := range segs {
				if binary.BigEndian.Uint16(pkts[i][26:]) == 0 && s[0] == 0x45 {
					// no checksum given: the kernel fills one in
					s[26], s[27] = 0, 0
				}
				assert.Equal(t, pkts[i], s, "segment %d", i)
			}
		})
	}
}

func fill(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// fixedID gives every datagram the first's IP ID.
func fixedID(ps [][]byte) [][]byte {
	for _, p := range ps {
		copy(p[4:6], ps[0][4:6])
		fixIP(p)
	}
	return ps
}

// renumber gives the datagrams consecutive IP IDs from the first's, as
// the kernel's segmentation does.
func renumber(ps [][]byte) {
	id := binary.BigEndian.Uint16(ps[0][4:])
	for i, p := range ps {
		binary.BigEndian.PutUint16(p[4:], id+uint16(i))
		fixIP(p)
	}
}

func zeroCsum(ps [][]byte) [][]byte {
	for _, p := range ps {
		p[26], p[27] = 0, 0
	}
	return ps
}

func TestPlanStopsAtWhatCannotMerge(t *testing.T) {
	mod := func(ps [][]byte, i int, f func([]byte)) [][]byte { f(ps[i]); return ps }
	for name, c := range map[string]struct {
		pkts [][]byte
		n    int
	}{
		"one packet":       {run4(10), 0},
		"empty payload":    {run4(0, 0), 0},
		"shorter middle":   {run4(10, 5, 10), 2},
		"longer second":    {run4(10, 11), 0},
		"other port":       {mod(run4(10, 10, 10), 2, func(p []byte) { p[21]++; udpCsum(p, 28) }), 2},
		"other address":    {mod(run4(10, 10, 10), 1, func(p []byte) { p[15]++; fixIP(p); udpCsum(p, 28) }), 0},
		"id not next":      {mod(run4(10, 10, 10), 2, func(p []byte) { p[5] += 2; fixIP(p) }), 2},
		"fixed id, no DF":  {mod(mod(fixedID(run4(10, 10, 10)), 0, clearDF), 1, clearDF), 0},
		"fixed then next":  {mod(fixedID(run4(10, 10, 10)), 2, func(p []byte) { p[5]++; fixIP(p) }), 2},
		"other ttl":        {mod(run4(10, 10), 1, func(p []byte) { p[8]--; fixIP(p) }), 0},
		"other tos":        {mod(run4(10, 10), 1, func(p []byte) { p[1] = 0; fixIP(p) }), 0},
		"bad udp checksum": {mod(run4(10, 10, 10), 2, func(p []byte) { p[27]++ }), 2},
		"bad first csum":   {mod(run4(10, 10, 10), 0, func(p []byte) { p[27]++ }), 0},
		"bad ip checksum":  {mod(run4(10, 10), 1, func(p []byte) { p[11]++ }), 0},
		"fragment":         {mod(run4(10, 10), 0, func(p []byte) { p[6] |= 0x20; fixIP(p) }), 0},
		"ip options":       {mod(run4(10, 10), 0, func(p []byte) { p[0] = 0x46 }), 0},
		"not udp":          {mod(run4(10, 10), 0, func(p []byte) { p[9] = 6; fixIP(p) }), 0},
		"trailing bytes":   {[][]byte{append(run4(10)[0], 0), run4(10)[0]}, 0},
		"udp length":       {mod(run4(10, 10), 1, func(p []byte) { p[25]--; udpCsum(p, 28) }), 0},
		"v4 then v6":       {append(run4(48), run6(28)...), 0},
		"v6 zero checksum": {mod(run6(10, 10), 1, func(p []byte) { p[46], p[47] = 0, 0 }), 0},
		"v6 flow label":    {mod(run6(10, 10, 10), 2, func(p []byte) { p[3]++ }), 2},
		"v6 extension hdr": {mod(run6(10, 10), 0, func(p []byte) { p[6] = 0 }), 0},
		"over the cap":     {run4(fill(10, 1000)...), (MaxSuperLen - 28) / 1000},
		"truncated":        {[][]byte{run4(10)[0][:20], run4(10)[0]}, 0},
		"garbage":          {[][]byte{{0x45}, {0x60}}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			var hdr [HdrBufLen]byte
			n, _ := Plan(&hdr, c.pkts)
			if c.n < 2 {
				assert.Less(t, n, 2)
			} else {
				assert.Equal(t, c.n, n)
			}
		})
	}
}

func clearDF(p []byte) {
	p[6] &^= 0x40
	fixIP(p)
}

func fixIP(p []byte) {
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], csum(p[:ipv4HdrLen]))
}

func TestSumMatchesRFC1071(t *testing.T) {
	for n := 0; n < 200; n++ {
		b := payload(n, n)
		assert.Equal(t, csum(b), ^fold(sum(b, 0)), "length %d", n)
	}
	ff := make([]byte, 4096)
	for i := range ff {
		ff[i] = 0xff
	}
	assert.Equal(t, csum(ff), ^fold(sum(ff, 0xffffffffffffffff)))
}

func TestPlanAllocatesNothing(t *testing.T) {
	pkts := run4(fill(64, 36)...)
	var hdr [HdrBufLen]byte
	assert.Zero(t, testing.AllocsPerRun(100, func() { Plan(&hdr, pkts) }))
}

func BenchmarkPlan64(b *testing.B) {
	pkts := run4(fill(64, 36)...)
	var hdr [HdrBufLen]byte
	b.ReportAllocs()
	for b.Loop() {
		Plan(&hdr, pkts)
	}
}

func BenchmarkPlan1400(b *testing.B) {
	pkts := run4(fill(2, 1372)...)
	var hdr [HdrBufLen]byte
	b.ReportAllocs()
	for b.Loop() {
		Plan(&hdr, pkts)
	}
}

// FuzzPlan: whatever Plan merges, the kernel's segmentation gives back.
func FuzzPlan(f *testing.F) {
	for _, ps := range [][][]byte{run4(10, 10, 10), run4(1000, 1000, 99), run6(20, 20), zeroCsum(run4(3, 3)), fixedID(run4(4, 4, 4))} {
		f.Add(ps[0], ps[1], ps[len(ps)-1])
	}
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		pkts := [][]byte{a, b, c}
		var hdr [HdrBufLen]byte
		n, hl := Plan(&hdr, pkts)
		if n < 2 {
			return
		}
		segs := segment(t, hdr[:VnetHdrLen+hl], pkts[:n], hl)
		require.Len(t, segs, n)
		want := make([][]byte, n)
		for i := range want {
			want[i] = append([]byte{}, pkts[i]...)
		}
		if want[0][0] == 0x45 && string(want[0][4:6]) == string(want[1][4:6]) {
			renumber(want) // DF, one fixed ID
		}
		for i, s := range segs {
			if s[0] == 0x45 && binary.BigEndian.Uint16(want[i][26:]) == 0 {
				s[26], s[27] = 0, 0
			}
			require.Equal(t, want[i], s, "segment %d", i)
		}
	})
}
