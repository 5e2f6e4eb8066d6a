package test

import (
	"github.com/tunctl/tunctl/portproto/porttest"
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

func procStatus(t *testing.T, pid int) map[string]string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestIntegrationPortIsSandboxed(t *testing.T) {
	p := startPort(t)
	st := procStatus(t, p.cmd.Process.Pid)
	assert.Equal(t, "0000000000001000", st["CapEff"], "only CAP_NET_ADMIN")
	assert.Equal(t, "0000000000001000", st["CapPrm"])
	assert.Equal(t, "0000000000001000", st["CapBnd"])
	assert.Equal(t, "1", st["NoNewPrivs"])
	assert.Equal(t, "2", st["Seccomp"], "seccomp filter installed")
	// Still able to do its job.
	open(p, 1, "it-sbx0", "tun")

	q := startPort(t, "-allow-netns")
	st = procStatus(t, q.cmd.Process.Pid)
	assert.Equal(t, "0000000000201000", st["CapEff"], "CAP_NET_ADMIN and CAP_SYS_ADMIN")
}

func TestIntegrationOnlyItsOwnDevices(t *testing.T) {
	p := startPort(t)
	assert.Equal(t, "eperm", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("lo"), porttest.Atoms("tun")))))

	// A persistent device owned by another uid cannot be attached to, even
	// though the port holds CAP_NET_ADMIN.
	open(p, 2, "it-owned", "tun", "no_pi")
	p.MustOK(etf.Tuple(etf.Atom("owner"), 2, 4242))
	p.MustOK(etf.Tuple(etf.Atom("persist"), 2, true))
	p.MustOK(etf.Tuple(etf.Atom("close"), 2))
	require.True(t, linkExists("it-owned"), "persistent device survives close")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "it-owned").Run() })

	q := startPort(t)
	assert.Equal(t, "eperm", errorReason(q.Call(etf.Tuple(etf.Atom("open"), 1, []byte("it-owned"), porttest.Atoms("tun", "no_pi")))))
	assert.True(t, linkExists("it-owned"))

	// One with no owner can be attached to (the kernel's rule), and the
	// attaching port may clear persist so that it goes away with the port.
	open(q, 3, "it-free", "tun", "no_pi")
	q.MustOK(etf.Tuple(etf.Atom("persist"), 3, true))
	q.MustOK(etf.Tuple(etf.Atom("close"), 3))
	r := startPort(t)
	assert.Equal(t, "it-free", open(r, 1, "it-free", "tun", "no_pi"))
	r.MustOK(etf.Tuple(etf.Atom("persist"), 1, false))
	r.MustOK(etf.Tuple(etf.Atom("close"), 1))
	assert.False(t, linkExists("it-free"))
}

func TestIntegrationNetns(t *testing.T) {
	requireNetns(t)
	// A second namespace, held open by a child process with no capabilities
	// (a capability-less port may only open /proc/PID/ns of processes whose
	// capabilities are a subset of its own).
	holder := exec.Command("unshare", "--net", "setpriv", "--bounding-set=-all", "--inh-caps=-all", "sleep", "30")
	require.NoError(t, holder.Start())
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	path := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	deadline := time.Now().Add(2 * time.Second)
	for {
		self, _ := os.Readlink("/proc/self/ns/net")
		other, err := os.Readlink(path)
		if err == nil && other != self {
			break
		}
		require.True(t, time.Now().Before(deadline), "child never entered its namespace")
		time.Sleep(10 * time.Millisecond)
	}

	p := startPort(t)
	assert.Equal(t, "eperm", errorReason(p.Call(etf.Tuple(etf.Atom("netns"), []byte(path)))), "CAP_SYS_ADMIN was dropped")

	q := startPort(t, "-allow-netns")
	assert.Equal(t, "enoent", errorReason(q.Call(etf.Tuple(etf.Atom("netns"), []byte("/nonexistent/ns")))))
	q.MustOK(etf.Tuple(etf.Atom("netns"), []byte(path)))
	open(q, 1, "it-ns0", "tun")
	q.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("up"), true))))
	assert.False(t, linkExists("it-ns0"), "not in this namespace")
	out, err := exec.Command("nsenter", "--net="+path, "ip", "-o", "link", "show", "it-ns0").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "UP")
	assert.Equal(t, "ebusy", errorReason(q.Call(etf.Tuple(etf.Atom("netns"), []byte(path)))))
}

func TestIntegrationPolicyFile(t *testing.T) {
	dir := t.TempDir()
	pol := dir + "/policy"
	require.NoError(t, os.WriteFile(pol, []byte("name_prefix pol-\nmax_devices 2\nallow_address 198.18.0.0/15\n"), 0o644))
	p := startPort(t, "-policy", pol)
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("tun5"), porttest.Atoms("tun")))))
	assert.Equal(t, "pol-0", open(p, 1, "", "tun"))
	assert.Equal(t, "pol-x", open(p, 2, "pol-x", "tun"))
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 3, []byte(""), porttest.Atoms("tun")))), "max_devices")
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("addr_add"), 1, []byte{192, 0, 2, 1}, 24, etf.List()))))
	p.MustOK(etf.Tuple(etf.Atom("addr_add"), 1, []byte{198, 18, 9, 1}, 24, etf.List()))

	require.NoError(t, os.WriteFile(pol, []byte("no_such_key 1\n"), 0o644))
	bad := exec.Command(portBinary, "-policy", pol)
	out, err := bad.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "unknown key")
}

// The administrator's policy (a fixed path, moved here at build time) is
// enforced whatever flags the BEAM starts the port with.
func TestIntegrationSystemPolicyCannotBeBypassed(t *testing.T) {
	requireNetns(t)
	dir := t.TempDir()
	sys := dir + "/system-policy"
	require.NoError(t, os.WriteFile(sys, []byte("name_prefix sys-\nallow_address 198.18.0.0/15\n"), 0o644))
	bin := dir + "/tunctl_port"
	build := exec.Command("go", "build", "-ldflags", "-X main.systemPolicy="+sys, "-o", bin, "../cmd/tunctl_port")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	loose := dir + "/loose-policy"
	require.NoError(t, os.WriteFile(loose, []byte("# allows whatever the system policy allows\n"), 0o644))
	saved := portBinary
	portBinary = bin
	defer func() { portBinary = saved }()

	for _, args := range [][]string{nil, {"-policy", loose}, {"-allow-netns"}} {
		p := startPort(t, args...)
		assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("tun5"), porttest.Atoms("tun")))), "%v", args)
		assert.Equal(t, "sys-0", open(p, 1, "", "tun"), "%v", args)
		assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("addr_add"), 1, []byte{192, 0, 2, 1}, 24, etf.List()))))
		assert.Equal(t, "0000000000001000", procStatus(t, p.cmd.Process.Pid)["CapEff"],
			"no CAP_SYS_ADMIN: the system policy does not allow namespaces (%v)", args)
		p.MustOK(etf.Tuple(etf.Atom("close"), 1))
	}
}
