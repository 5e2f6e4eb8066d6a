package test

import (
	"encoding/binary"
	"fmt"
	"github.com/tunctl/tunctl/portproto/porttest"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
)

// A real TUN device in batch mode with checksum offload: every packet comes
// with its virtio-net header, and a UDP datagram sent by a local socket
// arrives with its checksum left to the device (NEEDS_CSUM).
func TestIntegrationBatchWithOffload(t *testing.T) {
	p := startPort(t)
	open(p, 1, "it-batch0", "tun", "no_pi", "vnet_hdr")
	assert.Equal(t, "einval", errorReason(p.Call(etf.Tuple(etf.Atom("offload"), 1, porttest.Atoms("tso4")))))
	p.MustOK(etf.Tuple(etf.Atom("offload"), 1, porttest.Atoms("csum", "tso4", "tso6", "tso_ecn")))
	p.MustOK(etf.Tuple(etf.Atom("deliver"), 1, etf.Atom("batch")))
	configure(p, 1, net.IPv4(198, 18, 4, 1), 24)
	// IPv6 is on in a fresh namespace: router solicitations come too.
	p.Write(etf.Tuple(etf.Atom("active"), 1, true))

	conn := listenUDP4(t, net.IPv4(198, 18, 4, 1))
	peer := &net.UDPAddr{IP: net.IPv4(198, 18, 4, 2), Port: 7778}
	const n = 50
	for i := 0; i < n; i++ {
		_, err := conn.WriteToUDP([]byte(fmt.Sprintf("batch-%02d", i)), peer)
		require.NoError(t, err)
	}
	const vnetLen = 10
	got := 0
	for got < n {
		for _, pkt := range p.NextBatch(1) {
			require.Greater(t, len(pkt), vnetLen)
			ip := pkt[vnetLen:]
			if ip[0]>>4 != 4 || ip[9] != 17 {
				continue
			}
			assert.Equal(t, fmt.Sprintf("batch-%02d", got), string(ip[28:]), "oldest first")
			assert.EqualValues(t, 1, pkt[0]&1, "NEEDS_CSUM: the checksum is left to the device")
			assert.EqualValues(t, 20, binary.LittleEndian.Uint16(pkt[6:8]), "csum_start: the UDP header")
			got++
		}
	}
	p.MustOK(etf.Tuple(etf.Atom("offload"), 1, porttest.Atoms()))
}
