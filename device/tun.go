package device

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Kernel TUN/TAP flags accepted by Open.
const (
	FlagTUN        = unix.IFF_TUN
	FlagTAP        = unix.IFF_TAP
	FlagNoPI       = unix.IFF_NO_PI
	FlagOneQueue   = unix.IFF_ONE_QUEUE
	FlagMultiQueue = unix.IFF_MULTI_QUEUE
	FlagVnetHdr    = unix.IFF_VNET_HDR
	FlagTunExcl    = unix.IFF_TUN_EXCL
)

// CloneDevice is the TUN/TAP clone device.
const CloneDevice = "/dev/net/tun"

// MaxNameLen is the longest interface name the kernel accepts (IFNAMSIZ-1).
const MaxNameLen = unix.IFNAMSIZ - 1

// OpError records the operation that failed and the underlying error.
type OpError struct {
	Op  string
	Err error
}

// Error returns "op: cause".
func (e *OpError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error (usually a unix.Errno).
func (e *OpError) Unwrap() error { return e.Err }

func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Err: err}
}

// Tun is an open TUN/TAP queue: one file descriptor on /dev/net/tun attached
// to an interface. It is not safe for concurrent use.
type Tun struct {
	fd    int
	name  string
	flags uint16
	// Set by OpenAs: who it was opened for, whether it was created (rather
	// than attached to) and its ifindex, for Verify.
	caller  *Caller
	created bool
	index   int
}

// Open creates (or attaches to) the interface name with the given IFF_* flags.
// An empty name lets the kernel pick one. The descriptor is close-on-exec
// and non-blocking, and it is closed on every error path.
func Open(name string, flags uint16) (*Tun, error) {
	if len(name) > MaxNameLen {
		return nil, opErr("open", unix.EINVAL)
	}
	if (flags&FlagTUN != 0) == (flags&FlagTAP != 0) {
		return nil, opErr("open", unix.EINVAL)
	}
	fd, err := unix.Open(CloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, opErr("open "+CloneDevice, err)
	}
	t, err := attach(fd, name, flags)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t, nil
}

func attach(fd int, name string, flags uint16) (*Tun, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, opErr("ifreq", unix.EINVAL)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, opErr("TUNSETIFF", err)
	}
	// Flags are the ones TUNSETIFF accepted: TUNGETIFF is not used, as
	// some kernels report IFF_NO_PI there whether or not it is in effect.
	return &Tun{fd: fd, name: ifr.Name(), flags: flags}, nil
}

// Fd returns the descriptor, for polling.
func (t *Tun) Fd() int { return t.fd }

// Name returns the interface name the kernel assigned.
func (t *Tun) Name() string { return t.name }

// Flags returns the IFF_* flags the device was opened with.
func (t *Tun) Flags() uint16 { return t.flags }

// Read reads one packet. It returns unix.EAGAIN when none is queued.
func (t *Tun) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(t.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// Write writes one packet with a single write(2).
func (t *Tun) Write(p []byte) (int, error) {
	for {
		n, err := unix.Write(t.fd, p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// SetPersist sets or clears TUNSETPERSIST.
func (t *Tun) SetPersist(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return opErr("TUNSETPERSIST", unix.IoctlSetInt(t.fd, unix.TUNSETPERSIST, v))
}

// Offload flags of TUNSETOFFLOAD (linux/if_tun.h): what the kernel may hand
// over unfinished, described by the virtio-net header in front of each packet
// (so they need FlagVnetHdr).
const (
	OffloadCsum   = 0x01 // TUN_F_CSUM: partial checksums (NEEDS_CSUM)
	OffloadTSO4   = 0x02 // TUN_F_TSO4: TCP segmentation over IPv4
	OffloadTSO6   = 0x04 // TUN_F_TSO6: TCP segmentation over IPv6
	OffloadTSOECN = 0x08 // TUN_F_TSO_ECN: TSO with the ECN (CWR) bit
	OffloadUSO4   = 0x20 // TUN_F_USO4: UDP segmentation over IPv4
	OffloadUSO6   = 0x40 // TUN_F_USO6: UDP segmentation over IPv6
)

// SetOffload sets the offloads the device accepts (TUNSETOFFLOAD); 0 turns
// them all off. The kernel refuses flags it does not know with EINVAL.
func (t *Tun) SetOffload(flags uint) error {
	return opErr("TUNSETOFFLOAD", unix.IoctlSetInt(t.fd, unix.TUNSETOFFLOAD, int(flags)))
}

// SetOwner sets the uid allowed to attach to the device (TUNSETOWNER).
func (t *Tun) SetOwner(uid int) error {
	return opErr("TUNSETOWNER", unix.IoctlSetInt(t.fd, unix.TUNSETOWNER, uid))
}

// SetGroup sets the gid allowed to attach to the device (TUNSETGROUP).
func (t *Tun) SetGroup(gid int) error {
	return opErr("TUNSETGROUP", unix.IoctlSetInt(t.fd, unix.TUNSETGROUP, gid))
}

// Close closes the descriptor; a non-persistent device disappears with its
// last descriptor.
func (t *Tun) Close() error {
	if t.fd < 0 {
		return opErr("close", unix.EBADF)
	}
	err := unix.Close(t.fd)
	t.fd = -1
	return opErr("close", err)
}

// Errno extracts the errno from err, or EIO when there is none.
func Errno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
