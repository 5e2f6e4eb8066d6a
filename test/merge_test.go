package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto/porttest"
	"github.com/tunctl/tunctl/portproto/porttest/udpswap"
	"golang.org/x/sys/unix"
)

// rxPackets is the device's received-packets counter (/proc/net/dev: the
// namespace's own, unlike /sys/class/net under unshare -n).
func rxPackets(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/dev")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		dev, rest, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(dev) == name {
			n, err := strconv.Atoi(strings.Fields(rest)[1])
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("%s not in /proc/net/dev", name)
	return 0
}

// Datagrams a connected local socket sends through a TUN device come back
// swapped, in one sendv frame: the socket gets every one, in order and
// intact (the kernel verified each checksum), while the device counts one
// received packet per UDP GSO super-packet the port wrote -- unless
// TUNCTL_PORT_MERGE=0, when it counts one per datagram.
func TestIntegrationSendvMergesDatagrams(t *testing.T) {
	requireNetns(t)
	// an IPv6 address must not wait for duplicate address detection
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644))
	for i, c := range []struct {
		name     string
		merge    bool
		local    net.IP
		remote   net.IP
		prefix   int
		swap     func([]byte) bool
		isUDPTo  func(int) func([]byte) bool
		wantMore bool
	}{
		{"v4", true, net.IPv4(198, 18, 5, 1).To4(), net.IPv4(198, 18, 5, 2), 24, udpswap.V4, udpswap.IsV4To, false},
		{"v6", true, net.ParseIP("2001:db8:5::1"), net.ParseIP("2001:db8:5::2"), 64, udpswap.V6, udpswap.IsV6To, false},
		{"v4 merge off", false, net.IPv4(198, 18, 6, 1).To4(), net.IPv4(198, 18, 6, 2), 24, udpswap.V4, udpswap.IsV4To, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(portBinary)
			if !c.merge {
				cmd.Env = append(os.Environ(), "TUNCTL_PORT_MERGE=0")
			}
			p := startPortCmd(t, cmd)
			name := fmt.Sprintf("it-merge%d", i)
			open(p, 1, name, "tun", "no_pi")
			p.MustOK(etf.Tuple(etf.Atom("deliver"), 1, etf.Atom("batch")))
			p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte(c.local), c.prefix, etf.List()))
			p.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("up"), true))))
			p.Write(etf.Tuple(etf.Atom("active"), 1, true))

			const n, port = 40, 7000
			conn, err := net.DialUDP("udp", &net.UDPAddr{IP: c.local}, &net.UDPAddr{IP: c.remote, Port: port})
			require.NoError(t, err)
			defer conn.Close()
			for k := 0; k < n; k++ {
				_, err := fmt.Fprintf(conn, "merge-%02d-%s", k, strings.Repeat("x", 100))
				require.NoError(t, err)
			}
			var replies []etf.Term
			for len(replies) < n {
				for _, pkt := range p.NextBatch(1) {
					if c.isUDPTo(port)(pkt) {
						require.True(t, c.swap(pkt))
						replies = append(replies, pkt)
					}
				}
			}
			before := rxPackets(t, name)
			p.Write(etf.Tuple(etf.Atom("sendv"), 1, etf.List(replies...)))
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			buf := make([]byte, 2048)
			for k := 0; k < n; k++ {
				m, err := conn.Read(buf)
				require.NoError(t, err, "datagram %d", k)
				assert.Equal(t, fmt.Sprintf("merge-%02d-%s", k, strings.Repeat("x", 100)), string(buf[:m]))
			}
			written := rxPackets(t, name) - before
			if c.wantMore {
				assert.Equal(t, n, written, "one write per datagram")
			} else {
				assert.Less(t, written, n/4, "datagrams merged into super-packets")
			}
		})
	}
}

// A device whose virtio-net header is the port's own refuses offloads, as
// one opened without vnet_hdr always did, and reports the flags asked for.
func TestIntegrationMergeHeaderIsInvisible(t *testing.T) {
	p := startPort(t)
	res := p.MustOK(etf.Tuple(etf.Atom("open"), 1, []byte("it-merge9"), porttest.Atoms("tun", "no_pi")))
	tup, ok := etf.AsTuple(res)
	require.True(t, ok && len(tup) == 2, "{Name, Flags}")
	flags, _ := etf.AsInt(tup[1])
	assert.EqualValues(t, unix.IFF_TUN|unix.IFF_NO_PI, flags, "the flags asked for")
	assert.Equal(t, "einval", errorReason(p.Call(etf.Tuple(etf.Atom("offload"), 1, porttest.Atoms("csum")))))
	assert.Equal(t, "einval", errorReason(p.Call(etf.Tuple(etf.Atom("ioctl"), 1, unix.TUNSETOFFLOAD, 1))))
	p.MustOK(etf.Tuple(etf.Atom("ioctl"), 1, unix.TUNSETOFFLOAD, 0))
	out, err := exec.Command("ip", "-d", "link", "show", "it-merge9").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "vnet_hdr on", "the kernel's view: the port's own header")
}
