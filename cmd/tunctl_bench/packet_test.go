package main

import (
	"encoding/binary"
	"github.com/tunctl/tunctl/portproto/porttest/udpswap"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// udp4 builds an IPv4 UDP packet with valid checksums.
func udp4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	p[8] = 64
	p[9] = 17
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], csum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	binary.BigEndian.PutUint16(p[26:], udpSum(p))
	return p
}

// csum is the Internet checksum of b, starting from sum.
func csum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// udpSum computes the UDP checksum of an IPv4 packet whose checksum field
// is zero; on a packet with its checksum set it returns 0 when it is valid.
func udpSum(p []byte) uint16 {
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	pseudo += 17 + uint32(len(p)-20)
	return csum(p[20:], pseudo)
}

func TestPayloadRoundTrip(t *testing.T) {
	p := make([]byte, 36)
	encodePayload(p, 1<<40+7, -5)
	seq, ts, ok := decodePayload(p)
	require.True(t, ok)
	assert.Equal(t, uint64(1<<40+7), seq)
	assert.Equal(t, int64(-5), ts)

	_, _, ok = decodePayload(p[:payloadLen-1])
	assert.False(t, ok, "short")
	p[0] ^= 1
	_, _, ok = decodePayload(p)
	assert.False(t, ok, "no magic")
}

func TestSwapIPv4UDP(t *testing.T) {
	p := udp4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 40000, 9000, []byte("hello, reflector"))
	require.Zero(t, csum(p[:20], 0), "IP checksum valid before")
	require.Zero(t, udpSum(p), "UDP checksum valid before")

	require.True(t, udpswap.V4(p))
	assert.Equal(t, []byte{198, 18, 0, 2}, p[12:16])
	assert.Equal(t, []byte{198, 18, 0, 1}, p[16:20])
	assert.Equal(t, uint16(9000), binary.BigEndian.Uint16(p[20:]))
	assert.Equal(t, uint16(40000), binary.BigEndian.Uint16(p[22:]))
	assert.Equal(t, "hello, reflector", string(p[28:]))
	assert.Zero(t, csum(p[:20], 0), "IP checksum still valid")
	assert.Zero(t, udpSum(p), "UDP checksum still valid")
}

func TestSwapIPv4UDPOptions(t *testing.T) {
	// IHL 6: 4 bytes of options before the UDP header
	base := udp4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 1, 2, []byte("x"))
	p := append(append(append([]byte{}, base[:20]...), 1, 1, 1, 1), base[20:]...)
	p[0] = 0x46
	require.True(t, udpswap.V4(p))
	assert.Equal(t, []byte{0, 2, 0, 1}, p[24:28])
}

func TestSwapIgnores(t *testing.T) {
	udp := udp4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 1, 2, nil)
	icmp := append([]byte{}, udp...)
	icmp[9] = 1
	frag := append([]byte{}, udp...)
	binary.BigEndian.PutUint16(frag[6:], 185) // offset 185*8
	v6 := make([]byte, 48)
	v6[0] = 0x60
	badIHL := append([]byte{}, udp...)
	badIHL[0] = 0x44
	for name, p := range map[string][]byte{
		"empty": {}, "short": udp[:27], "icmp": icmp, "fragment": frag, "ipv6": v6, "ihl<5": badIHL,
	} {
		orig := append([]byte{}, p...)
		assert.False(t, udpswap.V4(p), name)
		assert.Equal(t, orig, p, name+" untouched")
	}
}

func TestPercentile(t *testing.T) {
	assert.Zero(t, percentile(nil, 50))
	one := []int64{7}
	assert.Equal(t, int64(7), percentile(one, 50))
	assert.Equal(t, int64(7), percentile(one, 99))

	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1) // 1..100
	}
	assert.Equal(t, int64(50), percentile(s, 50))
	assert.Equal(t, int64(99), percentile(s, 99))
	assert.Equal(t, int64(100), percentile(s, 100))
	assert.Equal(t, int64(1), percentile(s, 0.5))

	unsorted := []int64{5, 1, 4, 2, 3}
	p50, p99 := percentiles(unsorted)
	assert.Equal(t, int64(3), p50)
	assert.Equal(t, int64(5), p99)
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, unsorted, "sorted in place")
}
