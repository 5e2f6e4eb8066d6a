package device

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/portproto/porttest/udpswap"
	"golang.org/x/sys/unix"
)

// udp4 is an IPv4 UDP datagram 198.18.0.2:9000 -> 198.18.0.1:40000 with
// IP ID id, DF set and valid checksums.
func udp4(id uint16, payload string) []byte {
	return udpswap.Build4([4]byte{198, 18, 0, 2}, [4]byte{198, 18, 0, 1}, 9000, 40000, id, []byte(payload))
}

// seqTun is a Tun with the port's own virtio-net header over one end of a
// SOCK_SEQPACKET pair: every writev is one message on the other end.
func seqTun(t *testing.T) (*Tun, int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return &Tun{fd: fds[0], flags: FlagTUN | FlagNoPI, vnet: true, gso: true}, fds[1]
}

func messages(t *testing.T, fd, n int) [][]byte {
	var ms [][]byte
	buf := make([]byte, 1<<16)
	for range n {
		k, err := unix.Read(fd, buf)
		require.NoError(t, err)
		ms = append(ms, append([]byte{}, buf[:k]...))
	}
	return ms
}

func TestWriteBatchMergesRunsAndWritesTheRestAlone(t *testing.T) {
	tun, peer := seqTun(t)
	icmp := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1}
	pkts := [][]byte{udp4(7, "aaaa"), udp4(8, "bbbb"), udp4(9, "cc"), icmp, udp4(20, "dddd")}
	errs := make([]error, len(pkts))
	tun.WriteBatch(pkts, errs)
	assert.Equal(t, make([]error, len(pkts)), errs)
	ms := messages(t, peer, 3)
	// one super-packet: header, the first datagram's headers with the
	// lengths of the whole, then the three payloads
	m := ms[0]
	assert.EqualValues(t, 1, m[0], "NEEDS_CSUM")
	assert.EqualValues(t, 5, m[1], "GSO_UDP_L4")
	assert.EqualValues(t, 4, binary.NativeEndian.Uint16(m[4:]), "gso_size: the first payload")
	assert.Equal(t, "aaaabbbbcc", string(m[10+28:]))
	assert.EqualValues(t, 28+10, binary.BigEndian.Uint16(m[10+2:]), "tot_len")
	// the rest one by one, behind an empty header
	assert.Equal(t, append(make([]byte, 10), icmp...), ms[1])
	assert.Equal(t, append(make([]byte, 10), pkts[4]...), ms[2])
	assert.Zero(t, testing.AllocsPerRun(20, func() { tun.WriteBatch(pkts, errs) }))
}

func TestWriteBatchWithoutMergingWritesEachAlone(t *testing.T) {
	tun, peer := seqTun(t)
	tun.gso = false
	pkts := [][]byte{udp4(7, "aaaa"), udp4(8, "bbbb")}
	errs := make([]error, 2)
	tun.WriteBatch(pkts, errs)
	ms := messages(t, peer, 2)
	for i, m := range ms {
		assert.Equal(t, append(make([]byte, 10), pkts[i]...), m)
	}
	assert.ErrorIs(t, tun.SetOffload(OffloadCsum), unix.EINVAL, "offloads need a header the caller handles")
}

func TestReadStripsThePortsOwnHeader(t *testing.T) {
	tun, peer := seqTun(t)
	pkt := udp4(1, "hello")
	_, err := unix.Write(peer, append(make([]byte, 10), pkt...))
	require.NoError(t, err)
	buf := make([]byte, 100)
	n, err := tun.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, pkt, buf[:n])
	_, err = unix.Write(peer, []byte{1, 2, 3})
	require.NoError(t, err)
	_, err = tun.Read(buf)
	assert.ErrorIs(t, err, unix.EIO, "shorter than the header")
}
