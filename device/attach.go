package device

import (
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenAs opens the interface name for caller c, creating it or attaching
// a queue to it when it exists, under the ownership rule (Caller.MayUse).
//
// Creating uses TUNSETIFF with IFF_TUN_EXCL, which fails (EBUSY) rather
// than attach when the name exists, so nothing can slip in between a
// lookup and the attach; the new device gets c's uid as its owner
// (TUNSETOWNER) before it is returned.
//
// Attaching (the name exists) is refused with EPERM unless the interface
// is a TUN/TAP device c may use. The TUNSETIFF runs with CAP_NET_ADMIN
// lowered from the effective set for a non-root caller, so the kernel
// applies the device's owner/group to the caller's own ids as well; then
// the device the descriptor actually got is read back and checked again,
// and the queue closed (EPERM) if c may not use it.
//
// With merge, a TUN device it creates with flags IFF_TUN|IFF_NO_PI (and
// neither IFF_VNET_HDR nor IFF_MULTI_QUEUE) gets a virtio-net header the
// caller never sees, so that WriteBatch can hand the kernel UDP GSO
// super-packets (Tun.WriteBatch). The header is a device-wide setting, so
// only a device with one queue, this one, gets it: nobody else can attach
// while the queue is open.
//
// With IFF_TUN_EXCL in flags, an existing name is EBUSY. The calling
// goroutine must be locked to its OS thread (capabilities are per thread).
func OpenAs(c Caller, name string, flags uint16, merge bool) (*Tun, error) {
	excl := flags&FlagTunExcl != 0
	var extra uint16
	if merge && flags&^(FlagTunExcl|FlagOneQueue) == FlagTUN|FlagNoPI {
		extra = FlagVnetHdr
	}
	for attempt := 0; ; attempt++ {
		t, err := Open(name, flags|FlagTunExcl|extra)
		if err == nil {
			t.flags = flags
			t.vnet, t.gso = extra != 0, extra != 0
			t.caller, t.created = &c, true
			if err = t.SetOwner(c.UID); err == nil {
				err = t.identify()
			}
			if err != nil {
				t.Close()
				return nil, err
			}
			return t, nil
		}
		if excl || Errno(err) != unix.EBUSY {
			return nil, err
		}
		t, err = attachAs(c, name, flags)
		if Errno(err) != unix.ENODEV || attempt == 2 {
			return t, err
		}
		// Gone between the two TUNSETIFFs: try to create it again.
	}
}

// attachAs attaches to the existing interface name for c (see OpenAs).
func attachAs(c Caller, name string, flags uint16) (*Tun, error) {
	ti, err := Links{}.TunInfo(name)
	if err != nil {
		return nil, err
	}
	if !c.MayUse(ti) {
		return nil, opErr("attach "+name+" ("+ti.Kind+")", unix.EPERM)
	}
	var t *Tun
	open := func() error {
		var oerr error
		t, oerr = Open(name, flags)
		return oerr
	}
	if c.Root() {
		err = open()
	} else {
		err = withoutNetAdmin(open)
	}
	if err != nil {
		if Errno(err) == unix.EPERM {
			// Without CAP_NET_ADMIN the kernel refuses to create: the
			// device went away in between.
			if _, lerr := (Links{}).TunInfo(name); Errno(lerr) == unix.ENODEV {
				return nil, lerr
			}
		}
		return nil, err
	}
	t.caller = &c
	if err := t.Verify(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// identify records the ifindex of the device the descriptor is attached
// to, found by the name the kernel reports for the descriptor.
func (t *Tun) identify() error {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return opErr("ifreq", err)
	}
	if err := unix.IoctlIfreq(t.fd, unix.TUNGETIFF, ifr); err != nil {
		return opErr("TUNGETIFF", err)
	}
	t.name = ifr.Name()
	ti, err := Links{}.TunInfo(t.name)
	if err != nil {
		return err
	}
	t.index = ti.Index
	return nil
}

// Verify checks that the caller may configure the device now: the name
// the descriptor was attached under still denotes the same interface (same
// ifindex), and a device attached to rather than created is still one the
// caller may use (its owner or group may have changed since): EPERM
// otherwise. A Tun made by Open, outside OpenAs, has no caller and is not
// checked.
func (t *Tun) Verify() error {
	if t.caller == nil {
		return nil
	}
	if t.index == 0 {
		if err := t.identify(); err != nil {
			return err
		}
	}
	ti, err := Links{}.TunInfo(t.name)
	if err != nil {
		return err
	}
	if ti.Index != t.index || !t.created && !t.caller.MayUse(ti) {
		return opErr("device "+t.name+" owned by another user", unix.EPERM)
	}
	return nil
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
// (for example /run/netns/NAME or /proc/PID/ns/net). It needs
// CAP_SYS_ADMIN. The caller must keep the goroutine locked to its thread.
//
// path is first opened with O_PATH, which never blocks and opens nothing,
// and must be a namespace file (nsfs): anything else, a FIFO that would
// block open(2) for instance, is EINVAL. Only then is the same file opened
// for setns(2), through /proc/self/fd.
func EnterNetns(path string) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return opErr("open "+path, err)
	}
	defer unix.Close(pfd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(pfd, &st); err != nil {
		return opErr("fstatfs "+path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return opErr(path+": not a namespace file", unix.EINVAL)
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return opErr("open "+path, err)
	}
	defer unix.Close(fd)
	return opErr("setns", unix.Setns(fd, unix.CLONE_NEWNET))
}
