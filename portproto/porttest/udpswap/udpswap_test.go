package udpswap

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSwapIPv4UDP(t *testing.T) {
	p := Build4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 40000, 9000, 7, []byte("hello, reflector"))
	require.True(t, Valid4(p), "checksums valid before")

	require.True(t, V4(p))
	assert.Equal(t, []byte{198, 18, 0, 2}, p[12:16])
	assert.Equal(t, []byte{198, 18, 0, 1}, p[16:20])
	assert.Equal(t, uint16(9000), binary.BigEndian.Uint16(p[20:]))
	assert.Equal(t, uint16(40000), binary.BigEndian.Uint16(p[22:]))
	assert.Equal(t, "hello, reflector", string(p[28:]))
	assert.True(t, Valid4(p), "checksums still valid")
	p[30]++
	assert.False(t, Valid4(p), "a changed payload byte shows")
}

func TestSwapIPv4UDPOptions(t *testing.T) {
	// IHL 6: 4 bytes of options before the UDP header
	base := Build4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 1, 2, 7, []byte("x"))
	p := append(append(append([]byte{}, base[:20]...), 1, 1, 1, 1), base[20:]...)
	p[0] = 0x46
	require.True(t, V4(p))
	assert.Equal(t, []byte{0, 2, 0, 1}, p[24:28])
}

func TestSwapIgnores(t *testing.T) {
	udp := Build4([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 1, 2, 7, nil)
	icmp := append([]byte{}, udp...)
	icmp[9] = 1
	frag := append([]byte{}, udp...)
	binary.BigEndian.PutUint16(frag[6:], 185) // offset 185*8, DF clear
	v6 := make([]byte, 48)
	v6[0] = 0x60
	badIHL := append([]byte{}, udp...)
	badIHL[0] = 0x44
	for name, p := range map[string][]byte{
		"empty": {}, "short": udp[:27], "icmp": icmp, "fragment": frag, "ipv6": v6, "ihl<5": badIHL,
	} {
		orig := append([]byte{}, p...)
		assert.False(t, V4(p), name)
		assert.Equal(t, orig, p, name+" untouched")
	}
}

func TestSwapIPv6UDP(t *testing.T) {
	p := make([]byte, 50)
	p[0], p[6] = 0x60, 17
	p[8], p[24] = 1, 2
	binary.BigEndian.PutUint16(p[40:], 1000)
	binary.BigEndian.PutUint16(p[42:], 2000)
	require.True(t, IsV6To(2000)(p))
	require.True(t, V6(p))
	assert.Equal(t, byte(2), p[8])
	assert.Equal(t, byte(1), p[24])
	assert.True(t, IsV6To(1000)(p))
	p[6] = 6
	assert.False(t, V6(p), "not UDP")
}
