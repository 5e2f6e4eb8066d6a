package test

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto/porttest"
)

func callFrame(id int, cmd etf.Term) []byte {
	b, err := etf.Encode(etf.Tuple(etf.Atom("call"), id, cmd))
	if err != nil {
		panic(err)
	}
	return porttest.AppendFrame(nil, b)
}

// status reads a field of /proc/PID/status in KiB ("VmHWM", "VmRSS").
func statusKiB(t *testing.T, pid int, field string) int {
	v := procStatus(t, pid)[field]
	n, err := strconv.Atoi(strings.TrimSuffix(v, " kB"))
	require.NoError(t, err, "%s: %q", field, v)
	return n
}

// Issue 10, item 3: ~30-byte {read, Ref, Size} frames answered with up to
// 64 KiB each must not grow the port's memory, whatever the reader does.
// Before, every frame of a batch was answered into the output buffer
// before anything was written: here about 1500 x 60 KB.
func TestIntegrationReadFloodMemoryBounded(t *testing.T) {
	p := startSyncPort(t)
	p.MustOK(etf.Tuple(etf.Atom("open"), 1, []byte("it-amp0"), porttest.Atoms("tun", "no_pi")))
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte{198, 18, 60, 1}, 24, etf.List()))
	p.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 65535), etf.Tuple(etf.Atom("up"), true))))
	out, err := exec.Command("ip", "link", "set", "dev", "it-amp0", "txqueuelen", "4000").CombinedOutput()
	require.NoError(t, err, "%s", out)

	// Queue big packets in the device (sent towards its network).
	const packets, size = 1500, 60000
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 60, 1)})
	require.NoError(t, err)
	defer conn.Close()
	payload := make([]byte, size)
	for i := 0; i < packets; i++ {
		_, err := conn.WriteToUDP(payload, &net.UDPAddr{IP: net.IPv4(198, 18, 60, 2), Port: 9})
		require.NoError(t, err)
	}
	before := statusKiB(t, p.cmd.Process.Pid, "VmHWM")

	// All the reads in one write; nobody reads stdout for a while.
	var batch []byte
	for i := 0; i < packets+200; i++ {
		batch = append(batch, callFrame(1000+i, etf.Tuple(etf.Atom("read"), 1, 65535))...)
	}
	t.Logf("%d read frames, %d bytes of input", packets+200, len(batch))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = p.stdin.Write(batch) }()
	time.Sleep(500 * time.Millisecond)
	stalled := statusKiB(t, p.cmd.Process.Pid, "VmRSS")

	// Now read everything: every read is answered.
	big := 0
	for i := 0; i < packets+200; i++ {
		tu, isT := etf.TaggedTuple(p.Next(), "reply", 3)
		require.True(t, isT)
		if r, isOK := etf.TaggedTuple(tu[2], "ok", 2); isOK {
			if b, _ := etf.AsBinary(r[1]); len(b) > size {
				big++
			}
		}
	}
	wg.Wait()
	hwm := statusKiB(t, p.cmd.Process.Pid, "VmHWM")
	t.Logf("VmHWM %d KiB before, VmRSS %d KiB while stalled, VmHWM %d KiB after %d reads of %d-byte packets", before, stalled, hwm, big, size)
	assert.Greater(t, big, packets/2, "the packets were read")
	assert.LessOrEqual(t, hwm, 64<<10, "RSS stays at most 64 MiB")
}

// Issue 10, item 6: EOF on stdin ends the port while stdout is full
// because the reader stopped reading, and the devices go away. Before,
// the port waited for stdout forever.
func TestIntegrationStdinEOFWinsOverFullStdout(t *testing.T) {
	p := startSyncPort(t)
	p.MustOK(etf.Tuple(etf.Atom("open"), 1, []byte("it-eof0"), porttest.Atoms("tun")))
	require.True(t, linkExists("it-eof0"))
	// Replies nobody reads, until the port cannot write (stdout's pipe
	// full) and stops reading stdin (its pipe full too).
	var batch []byte
	for i := 0; i < 4096; i++ {
		batch = append(batch, callFrame(i, etf.Tuple(etf.Atom("link_info"), 1))...)
	}
	wrote := make(chan struct{})
	go func() {
		for i := 0; i < 40; i++ {
			if _, err := p.stdin.Write(batch); err != nil {
				break
			}
		}
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("the port took all input: stdout never filled")
	case <-time.After(time.Second):
	}
	require.NoError(t, p.stdin.Close())
	took, gone := p.exited(2 * time.Second)
	require.True(t, gone, "the port ignored EOF on stdin while its stdout was full")
	t.Logf("exited %v after stdin closed", took)
	assert.False(t, linkExists("it-eof0"), "its device went with it")
}

// Issue 10, item 4: max_devices counts queues, and holds when ports open
// at the same time.
func TestIntegrationMaxDevicesQueuesAndConcurrency(t *testing.T) {
	pol := t.TempDir() + "/policy"
	require.NoError(t, os.WriteFile(pol, []byte("name_prefix it-cc\nmax_devices 4\n"), 0o644))

	// One multi-queue device: each queue counts.
	p := startPort(t, "-policy", pol)
	for ref := 1; ref <= 4; ref++ {
		open(p, ref, "it-ccmq", "tun", "multi_queue")
	}
	assert.Equal(t, 4, tunInfo(t, "it-ccmq").Queues)
	assert.Equal(t, "eacces", openErr(p, 5, "it-ccmq", "tun", "multi_queue"), "a fifth queue")
	assert.Equal(t, "eacces", openErr(p, 5, "it-cc1", "tun"), "a second device")
	assert.Equal(t, 4, tunInfo(t, "it-ccmq").Queues)
	for ref := 1; ref <= 4; ref++ {
		p.MustOK(etf.Tuple(etf.Atom("close"), ref))
	}

	// Eight ports open a device each at the same time: at most four exist
	// afterwards, and each port that was answered ok holds one.
	const n = 8
	ports := make([]*port, n)
	for i := range ports {
		ports[i] = startPort(t, "-policy", pol)
	}
	results := make([]etf.Term, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, q := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = q.Call(etf.Tuple(etf.Atom("open"), 1, []byte(""), porttest.Atoms("tun")))
		}()
	}
	close(start)
	wg.Wait()
	opened := 0
	for _, r := range results {
		if _, isT := etf.TaggedTuple(r, "ok", 2); isT {
			opened++
		} else {
			assert.Equal(t, "eacces", errorReason(r))
		}
	}
	count := 0
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "it-cc") {
			count++
		}
	}
	t.Logf("%d of %d concurrent opens succeeded, %d devices exist", opened, n, count)
	assert.LessOrEqual(t, count, 4, "max_devices 4")
	assert.Equal(t, opened, count)
	assert.Positive(t, opened)
}

// Issue 10, item 2, through the real binary: what is installed is checked.
func TestIntegrationAllowAddressBoundsNetworks(t *testing.T) {
	pol := t.TempDir() + "/policy"
	require.NoError(t, os.WriteFile(pol, []byte("allow_address 198.18.0.0/16\nallow_address 2001:db8::/32\n"), 0o644))
	p := startPort(t, "-policy", pol)
	open(p, 1, "it-addr0", "tap")
	mapped := net.ParseIP("::ffff:198.18.0.1")
	v6 := net.ParseIP("2001:db8:1::1")
	addrAdd := func(addr net.IP, prefix int, opts ...etf.Term) etf.Term {
		return p.Call(etf.Tuple(etf.Atom("addr_add"), 1, []byte(addr), prefix, etf.List(opts...)))
	}
	v4 := func(a, b, c, d byte) net.IP { return net.IP{a, b, c, d} }
	for _, c := range []struct {
		res etf.Term
		why string
	}{
		{addrAdd(v4(198, 18, 0, 1), 1), "198.18.0.1/1 installs 128.0.0.0/1"},
		{addrAdd(v6, 0), "2001:db8:1::1/0 installs a default route"},
		{addrAdd(mapped, 104), "::ffff:198.18.0.1/104 is 198.0.0.0/8"},
		{addrAdd(v4(198, 18, 0, 1), 24, etf.Tuple(etf.Atom("broadcast"), []byte(v4(255, 255, 255, 255)))), "broadcast outside"},
		{addrAdd(v4(198, 18, 0, 1), 32, etf.Tuple(etf.Atom("peer"), []byte(v4(10, 0, 0, 1)))), "peer outside"},
		{addrAdd(v4(198, 18, 0, 1), 8, etf.Tuple(etf.Atom("peer"), []byte(v4(198, 18, 0, 2)))), "peer/8"},
		{p.Call(etf.Tuple(etf.Atom("addr_set"), 1, []byte(v4(198, 18, 0, 1)), 1)), "addr_set: 128.0.0.0/1"},
		{p.Call(etf.Tuple(etf.Atom("addr_set"), 1, []byte(v4(198, 18, 0, 1)), 15)), "addr_set: 198.18.0.0/15"},
	} {
		assert.Equal(t, "eacces", errorReason(c.res), c.why)
	}
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", "it-addr0", "scope", "global").CombinedOutput()
	require.NoError(t, err)
	assert.Empty(t, string(out), "nothing was installed")

	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte(mapped), 120, etf.List()))
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte(v6), 64, etf.List()))
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte(v4(198, 18, 5, 1)), 32, etf.List(etf.Tuple(etf.Atom("peer"), []byte(v4(198, 18, 5, 2))))))
	out, err = exec.Command("ip", "-o", "addr", "show", "dev", "it-addr0", "scope", "global").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "inet 198.18.0.1/24", "the mapped address, as IPv4")
	assert.Contains(t, string(out), "inet6 2001:db8:1::1/64")
	assert.Contains(t, string(out), "inet 198.18.5.1 peer 198.18.5.2/32")
	// dstaddr routes peer/prefix of the primary address (198.18.0.1/24).
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("dstaddr"), 1, []byte(v4(10, 0, 0, 2))))))
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("broadcast"), 1, []byte(v4(198, 19, 0, 255))))))
}

// EOF on stdin ends the port also while the serve loop is stuck in a
// system call: here a write to stderr (the log) that blocks because
// nobody reads the port's stderr. The watchdog thread exits the process
// (status 3) 0.7 s after stdin's hang-up; the kernel closes the device.
// Before, the port stayed blocked for good.
func TestIntegrationStdinEOFWinsOverBlockedLog(t *testing.T) {
	requireNetns(t)
	pol := t.TempDir() + "/policy"
	require.NoError(t, os.WriteFile(pol, []byte("allow_address 198.18.0.0/16\n"), 0o644))
	cmd := exec.Command(portBinary, "-policy", pol)
	stderr, err := cmd.StderrPipe() // never read
	require.NoError(t, err)
	defer stderr.Close()
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	c := porttest.NewClient(t, stdin, stdout)
	c.Lenient = true
	c.Timeout = 3 * time.Second
	c.Next() // handshake
	c.MustOK(etf.Tuple(etf.Atom("open"), 1, []byte("it-log0"), porttest.Atoms("tun")))
	// Each refusal logs a line of ~90 bytes: enough of them fill the pipe.
	refused := callFrame(1, etf.Tuple(etf.Atom("addr_add"), 1, []byte{192, 0, 2, 1}, 24, etf.List()))
	var batch []byte
	for i := 0; i < 1000; i++ {
		batch = append(batch, refused...)
	}
	// In a goroutine: once the port is stuck it stops reading stdin, and
	// a full stdin pipe would block this write (Close below ends it).
	go func() { _, _ = stdin.Write(batch) }()
	time.Sleep(500 * time.Millisecond)
	require.True(t, linkExists("it-log0"))
	start := time.Now()
	require.NoError(t, stdin.Close())
	select {
	case <-done:
		t.Logf("exited %v after stdin closed: %v", time.Since(start), waitErr)
		var ee *exec.ExitError
		require.ErrorAs(t, waitErr, &ee)
		assert.Equal(t, 3, ee.ExitCode(), "the watchdog's status")
	case <-time.After(3 * time.Second):
		t.Fatal("the port ignored EOF on stdin while blocked writing its log")
	}
	assert.False(t, linkExists("it-log0"), "its device went with it")
}
