package sandbox

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checks run in a child process: Restrict cannot be undone.
func TestRestrictInChild(t *testing.T) {
	if os.Getenv("SANDBOX_CHILD") == "1" {
		child()
		return
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0); e == syscall.ENOTSUP {
		t.Skip("built with cgo: AllThreadsSyscall unavailable (make test builds with CGO_ENABLED=0)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestrictInChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SANDBOX_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "/bin/true: operation not permitted")
	if runtime.GOARCH == "amd64" {
		// Before the fix: ENOSYS on a kernel without x32, an exec with it.
		assert.Contains(t, s, "x32 execve: operation not permitted")
		assert.Contains(t, s, "x32 getpid: operation not permitted")
	}
	assert.Contains(t, s, "NoNewPrivs:\t1")
	assert.Contains(t, s, "Seccomp:\t2")
	if os.Geteuid() == 0 {
		assert.Contains(t, s, "CapEff:\t0000000000001000", "only CAP_NET_ADMIN left")
		assert.Contains(t, s, "CapBnd:\t0000000000001000")
	}
	assert.Contains(t, s, "CapInh:\t0000000000000000")
	assert.Contains(t, s, "dumpable: 0")
	if os.Geteuid() == 0 {
		assert.Contains(t, s, "after Drop(CapNetAdmin): CapEff 0000000000000000 CapPrm 0000000000000000")
	}
}

func child() {
	if err := Restrict(CapNetAdmin); err != nil {
		println("restrict failed:", err.Error())
		os.Exit(1)
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Cap") || strings.HasPrefix(l, "NoNewPrivs") || strings.HasPrefix(l, "Seccomp:") {
			println(l)
		}
	}
	err := exec.Command("/bin/true").Run()
	println("exec:", err.Error())
	d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	println("dumpable:", d)
	defer func() {
		if err := Drop(CapNetAdmin); err != nil {
			println("drop:", err.Error())
			return
		}
		status, _ := os.ReadFile("/proc/self/status")
		var eff, prm string
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
				eff = v
			}
			if v, ok := strings.CutPrefix(l, "CapPrm:\t"); ok {
				prm = v
			}
		}
		println("after Drop(CapNetAdmin): CapEff", eff, "CapPrm", prm)
	}()
	if runtime.GOARCH == "amd64" {
		path, _ := syscall.BytePtrFromString("/bin/true")
		argv := []*byte{path, nil}
		_, _, e := syscall.RawSyscall(0x40000000|520, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&argv[0])), 0)
		println("x32 execve:", e.Error())
		_, _, e = syscall.RawSyscall(0x40000000|39, 0, 0, 0)
		println("x32 getpid:", e.Error())
	}
}
