package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/portproto/porttest"
)

var (
	capOnce   sync.Once
	capBinary string
	capErr    error
)

// setcapBinary returns a copy of tunctl_port with cap_net_admin=ep that
// any uid may run, and makes /dev/net/tun usable by every uid. Both only
// inside the private mount namespace scripts/in-netns makes (a tmpfs on
// /dev/net, gone with the namespace), which it checks first.
func setcapBinary(t *testing.T) string {
	t.Helper()
	requireNetns(t)
	capOnce.Do(func() {
		mounts, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil || !strings.Contains(string(mounts), " tunctl-netns ") {
			capErr = errUnshared
			return
		}
		dir, err := os.MkdirTemp("", "tunctl-cap")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			capErr = err
			return
		}
		capBinary = filepath.Join(dir, "tunctl_port")
		steps := [][]string{
			{"cp", portBinary, capBinary},
			{"chmod", "0755", capBinary},
			{"setcap", "cap_net_admin=ep", capBinary},
			{"mount", "-t", "tmpfs", "-o", "mode=755", "tunctl-devnet", "/dev/net"},
			{"mknod", "-m", "666", "/dev/net/tun", "c", "10", "200"},
		}
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				capErr = &stepError{s, string(out), err}
				return
			}
		}
	})
	require.NoError(t, capErr)
	return capBinary
}

type stepError struct {
	step []string
	out  string
	err  error
}

func (e *stepError) Error() string {
	return strings.Join(e.step, " ") + ": " + e.err.Error() + ": " + e.out
}

var errUnshared = &stepError{step: []string{"check private mount namespace"}, err: os.ErrPermission,
	out: "no tunctl-netns mount: not under scripts/in-netns"}

// startPortAs runs the setcap'd copy as uid (gid the same, with the given
// supplementary groups), with no capabilities of its own: the binary's
// file capability is all it has.
func startPortAs(t *testing.T, uid int, groups []int, args ...string) *port {
	t.Helper()
	bin := setcapBinary(t)
	id := strconv.Itoa(uid)
	gs := "--clear-groups"
	if len(groups) > 0 {
		l := make([]string, len(groups))
		for i, g := range groups {
			l[i] = strconv.Itoa(g)
		}
		gs = "--groups=" + strings.Join(l, ",")
	}
	setpriv := append([]string{"--reuid=" + id, "--regid=" + id, gs, "--inh-caps=-all", bin}, args...)
	p := startPortCmd(t, exec.Command("setpriv", setpriv...))
	require.Equal(t, "0000000000001000", procStatus(t, p.cmd.Process.Pid)["CapEff"])
	return p
}

func tunInfo(t *testing.T, name string) device.TunInfo {
	t.Helper()
	ti, err := device.Links{}.TunInfo(name)
	require.NoError(t, err, name)
	return ti
}

func ipTuntapAdd(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"tuntap", "add", "dev", name, "mode", "tun"}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
}

func openErr(p *port, ref int, name string, flags ...string) string {
	return errorReason(p.Call(etf.Tuple(etf.Atom("open"), ref, []byte(name), porttest.Atoms(flags...))))
}

// Issue 10, item 1: no takeover of other users' devices.
func TestIntegrationNoTakeoverBetweenUsers(t *testing.T) {
	// uid 1000 holds a multi-queue device through the port: it is its owner.
	alice := startPortAs(t, 1000, nil)
	open(alice, 1, "it-alice", "tun", "no_pi", "multi_queue")
	ti := tunInfo(t, "it-alice")
	assert.Equal(t, 1000, ti.Owner, "the creator's real uid")
	assert.Equal(t, -1, ti.Group)
	assert.Equal(t, 1, ti.Queues)

	// A root-made persistent device without owner (ip tuntap add), and one
	// that only a group may use.
	ipTuntapAdd(t, "it-rootless")
	ipTuntapAdd(t, "it-grp", "group", "4343")

	mallory := startPortAs(t, 65534, nil)
	assert.Equal(t, "eperm", openErr(mallory, 1, "it-alice", "tun", "no_pi", "multi_queue"), "another user's queue")
	assert.Equal(t, "eperm", openErr(mallory, 1, "it-alice", "tun", "no_pi"))
	assert.Equal(t, "eperm", openErr(mallory, 1, "it-rootless", "tun"), "ownerless: root's")
	assert.Equal(t, "eperm", openErr(mallory, 1, "it-grp", "tun"), "not in the group")
	assert.Equal(t, "eperm", openErr(mallory, 1, "lo", "tun"))
	assert.Equal(t, 1, tunInfo(t, "it-alice").Queues, "no queue was added")
	assert.Equal(t, -1, tunInfo(t, "it-rootless").Owner, "and so no owner/2 to itself")
	// Its own device is its own.
	open(mallory, 2, "it-mallory", "tun")
	assert.Equal(t, 65534, tunInfo(t, "it-mallory").Owner)

	// In the group: allowed; the group owns it, and so does it.
	grp := startPortAs(t, 65534, []int{4343})
	open(grp, 1, "it-grp", "tun")
	grp.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 1400))))

	// The owner attaches a second queue; root may attach anything.
	alice2 := startPortAs(t, 1000, nil)
	open(alice2, 1, "it-alice", "tun", "no_pi", "multi_queue")
	assert.Equal(t, 2, tunInfo(t, "it-alice").Queues)
	root := startPort(t)
	open(root, 1, "it-alice", "tun", "no_pi", "multi_queue")
	open(root, 2, "it-rootless", "tun")
	assert.Equal(t, 3, tunInfo(t, "it-alice").Queues)

	// Every command on an attached device checks ownership when it runs:
	// once the creator gives the device away, the queue attached by uid
	// 1000 may no longer configure it (the creator still may).
	alice.MustOK(etf.Tuple(etf.Atom("owner"), 1, 2000))
	assert.Equal(t, 2000, tunInfo(t, "it-alice").Owner)
	for _, cmd := range []etf.Term{
		etf.Tuple(etf.Atom("addr_add"), 1, []byte{198, 18, 70, 1}, 24, etf.List()),
		etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("up"), true))),
		etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 1280))),
		etf.Tuple(etf.Atom("persist"), 1, true),
		etf.Tuple(etf.Atom("owner"), 1, 1000),
	} {
		assert.Equal(t, "eperm", errorReason(alice2.Call(cmd)), "%v", cmd)
	}
	assert.Equal(t, 2000, tunInfo(t, "it-alice").Owner)
	alice.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 1280))))
	root.MustOK(etf.Tuple(etf.Atom("link_set"), 1, etf.List(etf.Tuple(etf.Atom("mtu"), 1300))))
}
