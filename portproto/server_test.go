package portproto

import (
	"fmt"
	"github.com/tunctl/tunctl/portproto/porttest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/policy"
	"golang.org/x/sys/unix"
)

func atom(s string) etf.Term { return etf.Atom(s) }

var (
	errorOf = porttest.ErrorOf
	isOK    = porttest.IsOK
)

func openCmd(ref int, name string, flags ...string) etf.Term {
	fl := make([]etf.Term, len(flags))
	for i, f := range flags {
		fl[i] = atom(f)
	}
	return etf.Tuple(atom("open"), ref, []byte(name), etf.List(fl...))
}

func handshake(t *testing.T, h *harness) {
	tu, ok := etf.TaggedTuple(h.Next(), "tunctl_port", 3)
	require.True(t, ok)
	v, _ := etf.AsInt(tu[1])
	assert.EqualValues(t, Version, v)
}

func TestHandshakeOpenClose(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	res := h.Call(openCmd(5, "tap9", "tap", "no_pi"))
	tu, ok := etf.TaggedTuple(res, "ok", 2)
	require.True(t, ok, "%v", res)
	info, _ := etf.AsTuple(tu[1])
	name, _ := etf.AsBinary(info[0])
	flags, _ := etf.AsInt(info[1])
	assert.Equal(t, "tap9", string(name))
	assert.EqualValues(t, unix.IFF_TAP|unix.IFF_NO_PI, flags)

	assert.Equal(t, "eexist", errorOf(h.Call(openCmd(5, "x", "tun"))))
	assert.Equal(t, "eperm", errorOf(h.Call(openCmd(6, "eperm", "tun"))))
	assert.Equal(t, "einval", errorOf(h.Call(openCmd(6, "sixteen-bytes-xx", "tun"))))
	assert.Equal(t, "badarg", errorOf(h.Call(openCmd(6, "x", "tun", "bogus"))))
	assert.Equal(t, "badarg", errorOf(h.Call(openCmd(0, "x", "tun"))))

	assert.True(t, isOK(h.Call(etf.Tuple(atom("close"), 5))))
	assert.Equal(t, "ebadf", errorOf(h.Call(etf.Tuple(atom("close"), 5))))
	// The device's fd is closed: the kernel side sees EOF.
	n, err := unix.Read(h.dev(0).Peer, make([]byte, 10))
	assert.Equal(t, 0, n)
	assert.NoError(t, err)
}

func TestActiveLimitIsExact(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun"))))
	peer := h.dev(0).Peer
	for i := 0; i < 5; i++ {
		_, err := unix.Write(peer, []byte{byte(i), 0xaa})
		require.NoError(t, err)
	}
	h.Quiet(50 * time.Millisecond) // passive at start
	h.Write(etf.Tuple(atom("active"), 1, 3))
	for i := 0; i < 3; i++ {
		tu, ok := etf.TaggedTuple(h.Next(), "tuntap", 3)
		require.True(t, ok)
		pkt, _ := etf.AsBinary(tu[2])
		assert.Equal(t, []byte{byte(i), 0xaa}, pkt)
	}
	h.Quiet(50 * time.Millisecond)
	h.Write(etf.Tuple(atom("active"), 1, 4))
	_, ok := etf.TaggedTuple(h.Next(), "tuntap", 3)
	require.True(t, ok)
	h.Quiet(50 * time.Millisecond)
	// The fifth packet is still in the "kernel" queue: read takes it.
	res := h.Call(etf.Tuple(atom("read"), 1, 1))
	tu, ok := etf.TaggedTuple(res, "ok", 2)
	require.True(t, ok, "%v", res)
	pkt, _ := etf.AsBinary(tu[1])
	assert.Equal(t, []byte{4}, pkt, "read truncates to Size")
	assert.Equal(t, "eagain", errorOf(h.Call(etf.Tuple(atom("read"), 1, 100))))

	h.Write(etf.Tuple(atom("active"), 1, true))
	_, err := unix.Write(peer, []byte{9})
	require.NoError(t, err)
	_, ok = etf.TaggedTuple(h.Next(), "tuntap", 3)
	require.True(t, ok)
	h.Write(etf.Tuple(atom("active"), 1, false))
	// A reply proves the port processed the frames before it (FIFO).
	res = h.Call(etf.Tuple(atom("stats"), 1))
	require.True(t, etf.TaggedTupleOK(res))
	_, err = unix.Write(peer, []byte{10})
	require.NoError(t, err)
	h.Quiet(50 * time.Millisecond)
}

func TestSendPaths(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(2, "", "tun"))))
	peer := h.dev(0).Peer
	buf := make([]byte, 100)

	h.Raw(AppendSendFrame(nil, 2, []byte("fast")))
	h.Write(etf.Tuple(atom("send"), 2, []byte("generic")))
	h.Raw(AppendSendvFrame(nil, 2, []byte("batch1"), []byte("batch2")))
	h.Write(etf.Tuple(atom("sendv"), 2, etf.List([]byte("gbatch1"), []byte("gbatch2"))))
	for _, want := range []string{"fast", "generic", "batch1", "batch2", "gbatch1", "gbatch2"} {
		require.NoError(t, waitReadable(peer))
		n, err := unix.Read(peer, buf)
		require.NoError(t, err)
		assert.Equal(t, want, string(buf[:n]))
	}

	h.Write(etf.Tuple(atom("sendv"), 2, etf.List([]byte("ok"), atom("not_a_binary"))))
	tu0, ok0 := etf.TaggedTuple(h.Next(), "tunctl_error", 2)
	require.True(t, ok0, "a bad batch is refused whole")
	r0, _ := etf.AsAtom(tu0[1])
	assert.Equal(t, "badcmd", r0)

	h.Raw(AppendSendFrame(nil, 3, []byte("nobody")))
	tu, ok := etf.TaggedTuple(h.Next(), "tuntap_error", 3)
	require.True(t, ok)
	reason, _ := etf.AsAtom(tu[2])
	assert.Equal(t, "ebadf", reason)

	h.Raw(AppendSendFrame(nil, 2, make([]byte, MaxPacket+1)))
	tu, ok = etf.TaggedTuple(h.Next(), "tuntap_error", 3)
	require.True(t, ok)
	reason, _ = etf.AsAtom(tu[2])
	assert.Equal(t, "emsgsize", reason)
}

// The sends of consecutive send and sendv frames for one device go to
// WriteBatch together; a send for another device, a call, or the end of
// the input flushes them first, so every event and reply keeps its place.
func TestSendsAreBatchedInOrder(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(2, "batched", "tun"))))
	peer := h.dev(0).Peer
	stats, err := etf.Encode(etf.Tuple(atom("call"), 99, etf.Tuple(atom("stats"), 2)))
	require.NoError(t, err)
	var chunk []byte
	for _, f := range [][]byte{
		AppendSendFrame(nil, 2, []byte("a")),
		AppendSendvFrame(nil, 2, []byte("b"), []byte("fail"), []byte("c")),
		AppendSendFrame(nil, 3, []byte("x")),
		AppendSendFrame(nil, 2, []byte("d")),
		stats,
	} {
		chunk = porttest.AppendFrame(chunk, f)
	}
	_, err = h.in.Write(chunk) // one pipe write: one read, handled in one go
	require.NoError(t, err)

	first := h.Next()
	tu, ok := etf.TaggedTuple(first, "tuntap_error", 3)
	require.True(t, ok, "the failed packet's error first: %v", first)
	ref, _ := etf.AsInt(tu[1])
	reason, _ := etf.AsAtom(tu[2])
	assert.EqualValues(t, 2, ref)
	assert.Equal(t, "eio", reason)
	tu, ok = etf.TaggedTuple(h.Next(), "tuntap_error", 3)
	require.True(t, ok, "then the unknown device's")
	reason, _ = etf.AsAtom(tu[2])
	assert.Equal(t, "ebadf", reason)
	reply, ok := etf.TaggedTuple(h.Next(), "reply", 3)
	require.True(t, ok, "then the reply")
	assert.Contains(t, fmt.Sprint(reply[2]), "tx_errors")
	buf := make([]byte, 16)
	for _, want := range []string{"a", "b", "c", "d"} {
		require.NoError(t, waitReadable(peer))
		n, err := unix.Read(peer, buf)
		require.NoError(t, err)
		assert.Equal(t, want, string(buf[:n]))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Equal(t, []int{4, 1}, h.batches)
}

func waitReadable(fd int) error {
	_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 1000)
	return err
}

func TestMalformedInputKeepsServing(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	tunctlError := func() string {
		tu, ok := etf.TaggedTuple(h.Next(), "tunctl_error", 2)
		require.True(t, ok)
		a, _ := etf.AsAtom(tu[1])
		return a
	}
	h.Raw([]byte{1, 2, 3})
	assert.Equal(t, "badetf", tunctlError())
	h.Raw([]byte{131, 104, 3, 100}) // truncated
	assert.Equal(t, "badetf", tunctlError())
	h.Raw([]byte{})
	assert.Equal(t, "badetf", tunctlError())
	h.Write(atom("hello"))
	assert.Equal(t, "badcmd", tunctlError())
	h.Write(etf.Tuple(atom("call"), atom("noid"), atom("x")))
	assert.Equal(t, "badcmd", tunctlError())
	h.Write(etf.Tuple(atom("active"), 1, -3))
	assert.Equal(t, "badarg", tunctlError())
	h.Raw(make([]byte, MaxFrame+1))
	assert.Equal(t, "emsgsize", tunctlError())

	assert.Equal(t, "badcmd", errorOf(h.Call(etf.Tuple(atom("frobnicate"), 1))))
	assert.Equal(t, "badcmd", errorOf(h.Call(atom("open"+"x"))))
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("open"), 1))))
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("read"), 1))))
	assert.Equal(t, "ebadf", errorOf(h.Call(etf.Tuple(atom("read"), 1, 10))))
	// Still serving.
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun"))))
}

func TestConfigurationCommands(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "cfg0", "tun"))))
	ip4 := []byte{198, 18, 0, 1}
	assert.True(t, isOK(h.Call(etf.Tuple(atom("addr_add"), 1, ip4, 24,
		etf.List(etf.Tuple(atom("broadcast"), []byte{198, 18, 0, 255}))))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("addr_add"), 1, ip4, 32,
		etf.List(etf.Tuple(atom("peer"), []byte{198, 18, 0, 2}))))))
	assert.Equal(t, "einval", errorOf(h.Call(etf.Tuple(atom("addr_add"), 1, ip4, 33, etf.List()))))
	assert.Equal(t, "einval", errorOf(h.Call(etf.Tuple(atom("addr_add"), 1, []byte{1, 2, 3}, 8, etf.List()))))
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("addr_add"), 1, ip4, 24, etf.List(atom("x"))))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("addr_del"), 1, ip4, 24))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("link_set"), 1, etf.List(etf.Tuple(atom("up"), true), etf.Tuple(atom("mtu"), 1400))))))
	assert.Equal(t, "einval", errorOf(h.Call(etf.Tuple(atom("link_set"), 1, etf.List(etf.Tuple(atom("mtu"), -1))))))
	h.links.FailNext(unix.ENODEV)
	assert.Equal(t, "enodev", errorOf(h.Call(etf.Tuple(atom("link_set"), 1, etf.List(etf.Tuple(atom("up"), false))))))
	assert.True(t, etf.TaggedTupleOK(h.Call(etf.Tuple(atom("link_info"), 1))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("persist"), 1, true))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("owner"), 1, 1000))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("group"), 1, 1000))))
	d := h.dev(0)
	assert.True(t, d.Settings().Persist)
	assert.Equal(t, 1000, d.Settings().Owner)
	assert.Equal(t, []string{
		"add cfg0 198.18.0.1/24 brd 198.18.0.255 peer <nil>",
		"add cfg0 198.18.0.1/32 brd <nil> peer 198.18.0.2",
		"del cfg0 198.18.0.1", "up cfg0", "mtu cfg0", "down cfg0", "info cfg0",
	}, h.links.Recorded())
}

func TestEOFClosesDevices(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun"))))
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(2, "", "tap"))))
	h.closeInput()
	select {
	case err := <-h.done:
		assert.NoError(t, err)
	case <-time.After(time.Second):
		t.Fatal("server did not stop on EOF")
	}
	for i := 0; i < 2; i++ {
		n, err := unix.Read(h.dev(i).Peer, make([]byte, 10))
		assert.Equal(t, 0, n, "device %d still open", i)
		assert.NoError(t, err)
	}
}

func TestStatsAndFilter(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun", "no_pi"))))
	peer := h.dev(0).Peer
	udp4 := make([]byte, 28)
	udp4[0], udp4[9] = 0x45, unix.IPPROTO_UDP
	tcp6 := make([]byte, 60)
	tcp6[0], tcp6[6] = 0x60, unix.IPPROTO_TCP
	assert.Equal(t, "badarg", errorOf(h.Call(etf.Tuple(atom("filter"), 1, etf.List(atom("smtp"))))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("filter"), 1, etf.List(atom("udp"), etf.Tuple(atom("ethertype"), 0x0806))))))
	h.Write(etf.Tuple(atom("active"), 1, true))
	for _, p := range [][]byte{tcp6, udp4, tcp6} {
		_, err := unix.Write(peer, p)
		require.NoError(t, err)
	}
	tu, ok := etf.TaggedTuple(h.Next(), "tuntap", 3)
	require.True(t, ok)
	pkt, _ := etf.AsBinary(tu[2])
	assert.Equal(t, udp4, pkt)
	h.Raw(AppendSendFrame(nil, 1, []byte{0x45, 1, 2}))
	time.Sleep(50 * time.Millisecond)
	res := h.Call(etf.Tuple(atom("stats"), 1))
	tu, ok = etf.TaggedTuple(res, "ok", 2)
	require.True(t, ok)
	got := map[string]int64{}
	kvs, _ := etf.AsList(tu[1])
	for _, kv := range kvs {
		p, _ := etf.AsTuple(kv)
		k, _ := etf.AsAtom(p[0])
		v, _ := etf.AsInt(p[1])
		got[k] = v
	}
	assert.Equal(t, map[string]int64{"rx_packets": 1, "rx_bytes": 28, "tx_packets": 1, "tx_bytes": 3,
		"filtered": 2, "rx_errors": 0, "tx_errors": 0}, got)
}

func TestPolicyRefusals(t *testing.T) {
	pol, err := policy.Parse(strings.NewReader("name_prefix app-\nmax_devices 4\nallow_address 198.18.0.0/15\n"))
	require.NoError(t, err)
	h := newHarnessWith(t, policy.Set{pol})
	handshake(t, h)
	assert.Equal(t, "eacces", errorOf(h.Call(openCmd(1, "eth0", "tun"))))
	res := h.Call(openCmd(1, "", "tun"))
	tu, ok := etf.TaggedTuple(res, "ok", 2)
	require.True(t, ok, "%v", res)
	info, _ := etf.AsTuple(tu[1])
	name, _ := etf.AsBinary(info[0])
	assert.Equal(t, "app-%d", string(name), "the kernel would fill in the number")
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("addr_add"), 1, []byte{10, 0, 0, 1}, 8, etf.List()))))
	assert.True(t, isOK(h.Call(etf.Tuple(atom("addr_add"), 1, []byte{198, 18, 0, 1}, 24, etf.List()))))
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("persist"), 1, true))))
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("owner"), 1, 0))))
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("netns"), []byte("/proc/1/ns/net")))))
	assert.Equal(t, "einval", errorOf(h.Call(openCmd(2, "app-%d", "tun"))), "templates are the port's business")
}

func TestNetnsOnlyBeforeOpen(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("netns"), []byte("/proc/self/ns/net")))), "no administrator's policy")
	admin, err := policy.Parse(strings.NewReader("allow_netns /proc/self/ns/*\n"))
	require.NoError(t, err)
	admin.System = true
	h = newHarnessWith(t, policy.Set{admin})
	handshake(t, h)
	assert.Equal(t, "eacces", errorOf(h.Call(etf.Tuple(atom("netns"), []byte("/proc/1/ns/net")))), "not named")
	assert.Equal(t, "eperm", errorOf(h.Call(etf.Tuple(atom("netns"), []byte("/proc/self/ns/net")))), "no Netns hook: refused")
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun"))))
	assert.Equal(t, "ebusy", errorOf(h.Call(etf.Tuple(atom("netns"), []byte("/proc/self/ns/net")))))
}

func TestReadCommandFilters(t *testing.T) {
	h := newHarness(t)
	handshake(t, h)
	require.True(t, etf.TaggedTupleOK(h.Call(openCmd(1, "", "tun", "no_pi"))))
	require.True(t, isOK(h.Call(etf.Tuple(atom("filter"), 1, etf.List(atom("udp"))))))
	udp4 := make([]byte, 28)
	udp4[0], udp4[9] = 0x45, unix.IPPROTO_UDP
	tcp4 := make([]byte, 40)
	tcp4[0], tcp4[9] = 0x45, unix.IPPROTO_TCP
	for _, p := range [][]byte{tcp4, tcp4, udp4} {
		_, err := unix.Write(h.dev(0).Peer, p)
		require.NoError(t, err)
	}
	tu, ok := etf.TaggedTuple(h.Call(etf.Tuple(atom("read"), 1, 1500)), "ok", 2)
	require.True(t, ok)
	pkt, _ := etf.AsBinary(tu[1])
	assert.Equal(t, udp4, pkt)
	assert.Equal(t, "eagain", errorOf(h.Call(etf.Tuple(atom("read"), 1, 1500))))
	tu, ok = etf.TaggedTuple(h.Call(etf.Tuple(atom("stats"), 1)), "ok", 2)
	require.True(t, ok)
	kvs, _ := etf.AsList(tu[1])
	got := map[string]int64{}
	for _, kv := range kvs {
		p, _ := etf.AsTuple(kv)
		k, _ := etf.AsAtom(p[0])
		got[k], _ = etf.AsInt(p[1])
	}
	assert.EqualValues(t, 2, got["filtered"])
	assert.EqualValues(t, 1, got["rx_packets"])
}
