package device

import (
	"errors"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kind returns the rtnetlink kind of interface name ("tun" for TUN/TAP
// devices), or an *OpError wrapping ENODEV when it does not exist.
func (Links) Kind(name string) (string, error) {
	l, err := link(name)
	if err != nil {
		return "", err
	}
	return l.Type(), nil
}

// Count returns how many interfaces have names starting with prefix.
func (Links) Count(prefix string) (int, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return 0, opErr("RTM_GETLINK", err)
	}
	n := 0
	for _, l := range ls {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			n++
		}
	}
	return n, nil
}

// OpenOrAttach opens name like Open, with one difference that matters for a
// privileged caller: when an interface called name already exists, it is
// attached to with CAP_NET_ADMIN lowered from the effective set, so the
// kernel applies the device's owner/group rules (TUNSETOWNER/TUNSETGROUP) to
// this process's real identity instead of waving them through. An existing
// interface that is not a TUN/TAP device (eth0, lo, ...) is refused with
// EPERM. The calling goroutine must be locked to its OS thread
// (capabilities are per thread).
func OpenOrAttach(name string, flags uint16) (*Tun, error) {
	if name == "" || strings.Contains(name, "%") {
		return Open(name, flags)
	}
	kind, err := Links{}.Kind(name)
	if errors.Is(err, unix.ENODEV) {
		return Open(name, flags)
	}
	if err != nil {
		return nil, err
	}
	if kind != "tuntap" && kind != "tun" {
		return nil, opErr("attach "+name+" ("+kind+")", unix.EPERM)
	}
	var t *Tun
	err = withoutNetAdmin(func() error {
		var oerr error
		t, oerr = Open(name, flags)
		return oerr
	})
	return t, err
}

// withoutNetAdmin runs f with CAP_NET_ADMIN cleared from this thread's
// effective set, then restores it from the permitted set.
func withoutNetAdmin(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return opErr("capget", err)
	}
	saved := data
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return opErr("capset", err)
	}
	ferr := f()
	if err := unix.Capset(&hdr, &saved[0]); err != nil {
		return opErr("capset restore", err)
	}
	return ferr
}

// EnterNetns moves the calling thread into the network namespace at path
// (for example /var/run/netns/NAME or /proc/PID/ns/net). It needs
// CAP_SYS_ADMIN. The caller must keep the goroutine locked to its thread.
func EnterNetns(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return opErr("open "+path, err)
	}
	defer unix.Close(fd)
	return opErr("setns", unix.Setns(fd, unix.CLONE_NEWNET))
}
