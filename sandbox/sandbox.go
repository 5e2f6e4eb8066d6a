// Package sandbox confines tunctl_port right after it starts: it keeps only
// the capabilities its work needs, sets no_new_privs, and installs a seccomp
// filter that refuses execve/execveat, so the process can never run another
// program. Every change applies to all threads of the process.
package sandbox

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capabilities tunctl_port may keep.
const (
	CapNetAdmin = unix.CAP_NET_ADMIN // create and configure interfaces
	CapSysAdmin = unix.CAP_SYS_ADMIN // setns(2) into another network namespace
)

// Restrict drops every capability not in keep from the bounding, effective,
// permitted, inheritable and ambient sets (a capability in keep that the
// process does not hold stays absent), sets no_new_privs, makes the process
// non-dumpable, and forbids execve(2), execveat(2) and x32 system calls
// with EPERM.
func Restrict(keep ...int) error {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	var want [2]unix.CapUserData
	for _, c := range keep {
		i, bit := c/32, uint32(1)<<(c%32)
		if cur[i].Permitted&bit != 0 {
			want[i].Permitted |= bit
			want[i].Effective |= bit
		}
	}
	// The bounding set can only shrink with CAP_SETPCAP (root has it; a
	// binary with file capabilities does not, and does not need to: with
	// no_new_privs nothing can be gained back through it).
	if cur[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; c <= unix.CAP_LAST_CAP; c++ {
			if !contains(keep, c) {
				if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil && err != unix.EINVAL {
					return fmt.Errorf("drop bounding capability %d: %w", c, err)
				}
			}
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&want[0])), 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// Not dumpable: no core file, and /proc/PID/* owned by root, so even
	// the user who started it cannot inspect its memory or descriptors.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("dumpable: %w", err)
	}
	return denyExec()
}

// Drop removes capability c from the effective, permitted and inheritable
// sets of every thread, for good (tunctl_port drops CAP_SYS_ADMIN once it
// has entered its network namespace).
func Drop(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	i, bit := c/32, uint32(1)<<(c%32)
	data[i].Effective &^= bit
	data[i].Permitted &^= bit
	data[i].Inheritable &^= bit
	if err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// allThreads runs a syscall on every thread of the process (capabilities
// and prctl state are per thread).
func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if errno == syscall.ENOTSUP {
		return fmt.Errorf("%w (the binary was built with cgo: build it with CGO_ENABLED=0, as make does)", errno)
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// x32SyscallBit tags the system call numbers of the x32 ABI on x86_64
// (__X32_SYSCALL_BIT); the filter refuses every call carrying it.
const x32SyscallBit = 0x40000000

// auditArch is the seccomp architecture of this build, 0 if unknown.
func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// denyExec installs, on all threads (SECCOMP_FILTER_FLAG_TSYNC), a filter
// that makes execve, execveat and every x32 system call fail with EPERM,
// kills the process on a call from another ABI (i386), and allows
// everything else.
func denyExec() error {
	arch := auditArch()
	if arch == 0 {
		return nil
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		deny = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	)
	// x32 system calls come with the x86_64 arch and the syscall number
	// tagged with __X32_SYSCALL_BIT; they have their own execve (520) and
	// execveat (545): refuse every x32 call. arm64 has no such bit.
	var x32Bit uint32
	if arch == unix.AUDIT_ARCH_X86_64 {
		x32Bit = x32SyscallBit
	}
	filter := []unix.SockFilter{
		{Code: ld, K: 4},                              // seccomp_data.arch
		{Code: jeq, K: arch, Jt: 1, Jf: 0},            // this arch?
		{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS}, // another ABI: refuse everything
		{Code: ld, K: 0},                              // seccomp_data.nr
		{Code: jset, K: x32Bit, Jt: 3},                // x32 -> deny
		{Code: jeq, K: unix.SYS_EXECVE, Jt: 2},        // -> deny
		{Code: jeq, K: unix.SYS_EXECVEAT, Jt: 1},      // -> deny
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: deny},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}
