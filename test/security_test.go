package test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto/porttest"
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
	assert.Equal(t, "0000000000001000", st["CapEff"], "-allow-netns alone: no CAP_SYS_ADMIN without the administrator's allow_netns")
}

func TestIntegrationOnlyItsOwnDevices(t *testing.T) {
	p := startPort(t)
	assert.Equal(t, "eperm", errorReason(p.Call(etf.Tuple(etf.Atom("open"), 1, []byte("lo"), porttest.Atoms("tun")))))

	// A persistent device given to another uid: root may still attach to
	// it (the ownership rule, doc/security.md); the unprivileged cases are
	// in privilege_test.go.
	open(p, 2, "it-owned", "tun", "no_pi")
	assert.Equal(t, 0, tunInfo(t, "it-owned").Owner, "created: the caller's")
	p.MustOK(etf.Tuple(etf.Atom("owner"), 2, 4242))
	p.MustOK(etf.Tuple(etf.Atom("persist"), 2, true))
	p.MustOK(etf.Tuple(etf.Atom("close"), 2))
	require.True(t, linkExists("it-owned"), "persistent device survives close")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "it-owned").Run() })
	q := startPort(t)
	assert.Equal(t, "it-owned", open(q, 1, "it-owned", "tun", "no_pi"))
	q.MustOK(etf.Tuple(etf.Atom("persist"), 1, false))
	q.MustOK(etf.Tuple(etf.Atom("close"), 1))
	assert.False(t, linkExists("it-owned"))
	assert.Equal(t, "ebusy", errorReason(q.Call(etf.Tuple(etf.Atom("open"), 2, []byte("lo"), porttest.Atoms("tun", "tun_excl")))), "tun_excl: never attach")
}

// Issue 10, item 5: namespaces only where the administrator's policy
// names them, and only namespace files.
func TestIntegrationNetns(t *testing.T) {
	requireNetns(t)
	for _, ns := range []string{"it-lab-1", "it-other"} {
		out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
		require.NoError(t, err, "%s", out)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	fifo := "/run/netns/it-lab-fifo"
	require.NoError(t, syscall.Mkfifo(fifo, 0o666))
	t.Cleanup(func() { os.Remove(fifo) })

	// No administrator's policy: -allow-netns gets nothing.
	p := startPort(t, "-allow-netns")
	assert.Equal(t, "eacces", errorReason(p.Call(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))))

	useBinary(t, buildWithSystemPolicy(t, "allow_netns /run/netns/it-lab-*\n"))
	p = startPort(t)
	assert.Equal(t, "eperm", errorReason(p.Call(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))), "no -allow-netns: CAP_SYS_ADMIN dropped")

	q := startPort(t, "-allow-netns")
	assert.Equal(t, "0000000000201000", procStatus(t, q.cmd.Process.Pid)["CapEff"], "CAP_NET_ADMIN and CAP_SYS_ADMIN")
	for path, want := range map[string]string{
		"/run/netns/it-other":               "eacces", // exists, not named
		"/proc/1/ns/net":                    "eacces",
		"/run/netns/it-lab-1/../it-other":   "eacces", // not clean
		"/run/netns/it-lab-nonexistent":     "enoent",
		fifo:                                "einval", // before: open(2) blocked for good
		"/run/netns/it-lab-1/../../../etc/": "eacces",
	} {
		assert.Equal(t, want, errorReason(q.Call(etf.Tuple(etf.Atom("netns"), []byte(path)))), path)
	}
	q.MustOK(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))
	assert.Equal(t, "0000000000001000", procStatus(t, q.cmd.Process.Pid)["CapEff"], "CAP_SYS_ADMIN dropped once used")
	assert.Equal(t, "0000000000001000", procStatus(t, q.cmd.Process.Pid)["CapPrm"])
	assert.Equal(t, "eperm", errorReason(q.Call(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))), "no second setns")
	open(q, 1, "it-ns0", "tun")
	q.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("up"), true))))
	assert.False(t, linkExists("it-ns0"), "not in this namespace")
	out, err := exec.Command("ip", "-n", "it-lab-1", "-o", "link", "show", "it-ns0").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "UP")
	assert.Equal(t, "ebusy", errorReason(q.Call(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))))

	// The application's policy narrows: without allow_netns, none.
	app := t.TempDir() + "/app-policy"
	require.NoError(t, os.WriteFile(app, []byte("allow_persist true\n"), 0o644))
	r := startPort(t, "-allow-netns", "-policy", app)
	assert.Equal(t, "0000000000001000", procStatus(t, r.cmd.Process.Pid)["CapEff"])
	assert.Equal(t, "eacces", errorReason(r.Call(etf.Tuple(etf.Atom("netns"), []byte("/run/netns/it-lab-1")))))

	// A FIFO as the policy file: an error at start, not a hang.
	start := time.Now()
	out, err = exec.Command(portBinary, "-policy", fifo).CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "not a regular file")
	assert.Less(t, time.Since(start), 2*time.Second)
}

// buildWithSystemPolicy builds tunctl_port with its administrator's policy
// moved to a file holding content, and returns the binary.
func buildWithSystemPolicy(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	sys := dir + "/system-policy"
	require.NoError(t, os.WriteFile(sys, []byte(content), 0o644))
	bin := dir + "/tunctl_port"
	build := exec.Command("go", "build", "-ldflags", "-X main.systemPolicy="+sys, "-o", bin, "../cmd/tunctl_port")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// useBinary makes startPort run bin until the test ends.
func useBinary(t *testing.T, bin string) {
	saved := portBinary
	portBinary = bin
	t.Cleanup(func() { portBinary = saved })
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
	useBinary(t, buildWithSystemPolicy(t, "name_prefix sys-\nallow_address 198.18.0.0/15\n"))
	loose := t.TempDir() + "/loose-policy"
	require.NoError(t, os.WriteFile(loose, []byte("# allows whatever the system policy allows\n"), 0o644))

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
