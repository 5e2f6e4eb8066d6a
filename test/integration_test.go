package test

import (
	"bytes"
	"fmt"
	"github.com/tunctl/tunctl/portproto"
	"github.com/tunctl/tunctl/portproto/porttest"
	"github.com/tunctl/tunctl/portproto/porttest/udpswap"
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
)

func configure(p *port, ref int, addr net.IP, prefix int) {
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), ref, []byte(addr.To4()), prefix, etf.List()))
	p.MustOK(etf.Tuple(etf.Atom("link_set"), ref, etf.List(etf.Tuple(etf.Atom("up"), true))))
}

// listenUDP4 is a UDP socket bound to ip (any port), closed when the test
// ends.
func listenUDP4(t *testing.T, ip net.IP) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestIntegrationTunReflectsUDP(t *testing.T) {
	p := startPort(t)
	name := open(p, 1, "it-tun0", "tun", "no_pi")
	assert.Equal(t, "it-tun0", name)
	configure(p, 1, net.IPv4(198, 18, 1, 1), 24)
	p.Write(etf.Tuple(etf.Atom("active"), 1, true))

	conn := listenUDP4(t, net.IPv4(198, 18, 1, 1))
	peer := &net.UDPAddr{IP: net.IPv4(198, 18, 1, 2), Port: 7777}
	for i := 0; i < 20; i++ {
		msg := []byte(fmt.Sprintf("ping-%d", i))
		_, err := conn.WriteToUDP(msg, peer)
		require.NoError(t, err)
		pkt := p.NextPacket(1, udpswap.IsV4To(7777))
		assert.True(t, bytes.HasSuffix(pkt, msg))
		reply := append([]byte(nil), pkt...)
		require.True(t, udpswap.V4(reply))
		p.Raw(portproto.AppendSendFrame(nil, 1, reply))
		buf := make([]byte, 100)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
		n, from, err := conn.ReadFromUDP(buf)
		require.NoError(t, err)
		assert.Equal(t, msg, buf[:n])
		assert.Equal(t, peer.String(), from.String())
	}
}

func TestIntegrationTapKernelNamedSeesARP(t *testing.T) {
	p := startPort(t)
	name := open(p, 3, "", "tap", "no_pi")
	assert.True(t, strings.HasPrefix(name, "tap"), name)
	configure(p, 3, net.IPv4(198, 18, 2, 1), 24)
	p.Write(etf.Tuple(etf.Atom("active"), 3, true))
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 2, 1)})
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 18, 2, 9), Port: 9})
	require.NoError(t, err)
	arp := p.NextPacket(3, func(f []byte) bool { return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 })
	assert.Equal(t, []byte{198, 18, 2, 9}, arp[38:42], "ARP target")
}

func TestIntegrationPassiveReadAndLimit(t *testing.T) {
	p := startPort(t)
	open(p, 4, "it-tun4", "tun", "no_pi")
	// Down and unaddressed: nothing can be queued yet.
	assert.Equal(t, "eagain", errorReason(p.Call(etf.Tuple(etf.Atom("read"), 4, 2000))))
	configure(p, 4, net.IPv4(198, 18, 4, 1), 24)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 4, 1)})
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.WriteToUDP([]byte("passive"), &net.UDPAddr{IP: net.IPv4(198, 18, 4, 2), Port: 4444})
	require.NoError(t, err)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		res := p.Call(etf.Tuple(etf.Atom("read"), 4, 2000))
		if tu, ok := etf.TaggedTuple(res, "ok", 2); ok {
			pkt, _ := etf.AsBinary(tu[1])
			if udpswap.IsV4To(4444)(pkt) {
				assert.True(t, bytes.HasSuffix(pkt, []byte("passive")))
				return
			}
			continue
		}
		require.Equal(t, "eagain", errorReason(res))
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the datagram never reached read")
}

func TestIntegrationMalformedFramesKeepServing(t *testing.T) {
	p := startPort(t)
	expect := func(reason string) {
		t.Helper()
		tu, ok := etf.TaggedTuple(p.Next(), "tunctl_error", 2)
		require.True(t, ok)
		a, _ := etf.AsAtom(tu[1])
		assert.Equal(t, reason, a)
	}
	p.Raw([]byte("not etf at all"))
	expect("badetf")
	p.Raw([]byte{131, 104, 3, 100, 0, 4, 'c', 'a'})
	expect("badetf")
	p.Write(etf.Tuple(etf.Atom("hello"), 1))
	expect("badcmd")
	p.Raw(make([]byte, 300<<10))
	expect("emsgsize")
	assert.Equal(t, "badcmd", errorReason(p.Call(etf.Tuple(etf.Atom("format_disk"), 1))))
	assert.Equal(t, "badarg", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("x")))))
	assert.Equal(t, "einval", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("0123456789abcdef"), porttest.Atoms("tun")))))
	assert.Equal(t, "badarg", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("x"), porttest.Atoms("tun", "wat")))))
	assert.Equal(t, "ebadf", errorReason(p.Call(etf.Tuple(etf.Atom("link_info"), 99))))
	// Still serving, and still able to create a device.
	open(p, 1, "it-ok", "tun")
	assert.True(t, linkExists("it-ok"))
}

func TestIntegrationEOFRemovesDevicesAndExits(t *testing.T) {
	p := startPort(t)
	open(p, 1, "it-eof0", "tun")
	open(p, 2, "it-eof1", "tap")
	require.True(t, linkExists("it-eof0") && linkExists("it-eof1"))
	start := time.Now()
	require.NoError(t, p.stdin.Close())
	_, gone := p.exited(2 * time.Second)
	require.True(t, gone, "the port did not exit on EOF")
	require.NoError(t, p.err, "exit status")
	assert.Less(t, time.Since(start), time.Second)
	assert.False(t, linkExists("it-eof0"))
	assert.False(t, linkExists("it-eof1"))
}

func fdCount(t *testing.T, pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	require.NoError(t, err)
	return len(entries)
}

func TestIntegrationNoFdLeak(t *testing.T) {
	p := startPort(t)
	pid := p.cmd.Process.Pid
	// The first netlink request sets up the Go runtime's poller (an epoll
	// and an eventfd, once per process): warm up before counting.
	open(p, 1, "it-warm", "tun")
	p.MustOK(etf.Tuple(etf.Atom("link_info"), 1))
	p.MustOK(etf.Tuple(etf.Atom("close"), 1))
	before := fdCount(t, pid)
	for i := 1; i <= 300; i++ {
		assert.Equal(t, "tun", open(p, i, "", "tun", "no_pi")[:3])
		p.Write(etf.Tuple(etf.Atom("active"), i, true))
		p.MustOK(etf.Tuple(etf.Atom("link_set"), i, etf.List(etf.Tuple(etf.Atom("up"), true))))
		assert.Equal(t, "badarg", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 0, []byte(""), porttest.Atoms("tun")))))
		p.MustOK(etf.Tuple(etf.Atom("close"), i))
	}
	// Failed opens must not leak either.
	for i := 0; i < 50; i++ {
		assert.Equal(t, "einval", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("bad name"), porttest.Atoms("tun", "tap")))))
	}
	assert.Equal(t, before, fdCount(t, pid))
}

func TestIntegrationPointToPointAddressRemoved(t *testing.T) {
	p := startPort(t)
	open(p, 1, "it-ptp0", "tun", "no_pi")
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte{198, 18, 5, 1}, 32,
		etf.List(etf.Tuple(etf.Atom("peer"), []byte{198, 18, 5, 2}))))
	out, err := exec.Command("ip", "-o", "-4", "addr", "show", "dev", "it-ptp0").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "inet 198.18.5.1 peer 198.18.5.2/32")
	p.MustOK(etf.Tuple(etf.Atom("addr_del"), 1, []byte{198, 18, 5, 1}, 32))
	out, err = exec.Command("ip", "-o", "-4", "addr", "show", "dev", "it-ptp0").CombinedOutput()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "198.18.5.1")
	assert.Equal(t, "eaddrnotavail", errorReason(p.Call(etf.Tuple(etf.Atom("addr_del"), 1, []byte{198, 18, 5, 1}, 32))))
}
