package device

import (
	"errors"
	"unsafe"

	"github.com/tunctl/tunctl/gro"
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
	// vnet: the descriptor carries a virtio-net header the caller did
	// not ask for (OpenAs adds it so that WriteBatch can merge
	// datagrams): Read strips it, Write adds an empty one. gso: WriteBatch
	// merges (cleared when the kernel refuses a super-packet).
	vnet, gso bool
	hdr       [gro.HdrBufLen]byte
	iov       [gro.MaxSegments + 1]unix.Iovec
}

// noVnetHdr is the virtio-net header of a packet that needs nothing done.
var noVnetHdr [gro.VnetHdrLen]byte

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
	if t.vnet {
		return t.readVnet(p)
	}
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

// Write writes one packet with a single write(2) (writev(2) behind an
// empty virtio-net header when OpenAs added one).
func (t *Tun) Write(p []byte) (int, error) {
	if t.vnet {
		t.iov[0] = iovec(noVnetHdr[:])
		t.iov[1] = iovec(p)
		n, err := t.vectored(unix.SYS_WRITEV, 2)
		return max(n-gro.VnetHdrLen, 0), err
	}
	for {
		n, err := unix.Write(t.fd, p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// WriteBatch writes pkts in order and sets errs[i] to the error of
// pkts[i] (nil: written); errs must be as long as pkts. On a device OpenAs
// gave a virtio-net header of its own, runs of UDP datagrams of one flow
// go to the kernel as one UDP GSO super-packet each (package gro), which
// the kernel splits back into the same datagrams: one write(2) for up to
// gro.MaxSegments of them. A super-packet the kernel refuses is written
// again one datagram at a time, so each gets its own error; EINVAL (a
// kernel whose virtio-net header has no UDP segmentation, before Linux
// 6.2) turns merging off for the device.
func (t *Tun) WriteBatch(pkts [][]byte, errs []error) {
	for i := 0; i < len(pkts); {
		if t.gso {
			if n, hl := gro.Plan(&t.hdr, pkts[i:]); n >= 2 {
				t.iov[0] = iovec(t.hdr[:gro.VnetHdrLen+hl])
				for j := 0; j < n; j++ {
					t.iov[j+1] = iovec(pkts[i+j][hl:])
				}
				_, err := t.vectored(unix.SYS_WRITEV, n+1)
				if err == nil {
					clear(errs[i : i+n])
					i += n
					continue
				}
				if err == unix.EINVAL {
					t.gso = false
				}
				for end := i + n; i < end; i++ {
					_, errs[i] = t.Write(pkts[i])
				}
				continue
			}
		}
		_, errs[i] = t.Write(pkts[i])
		i++
	}
}

func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return v
}

// vectored runs readv(2) or writev(2) (trap) on t.iov[:n], retrying on
// EINTR, then drops the references to the buffers.
func (t *Tun) vectored(trap uintptr, n int) (int, error) {
	defer clear(t.iov[:n])
	for {
		r, _, e := unix.Syscall(trap, uintptr(t.fd), uintptr(unsafe.Pointer(&t.iov[0])), uintptr(n))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// readVnet reads one packet behind the virtio-net header OpenAs added,
// into p, and drops the header (with no offloads set the kernel hands over
// only whole packets with finished checksums: nothing in it to act on).
func (t *Tun) readVnet(p []byte) (int, error) {
	t.iov[0] = iovec(t.hdr[:gro.VnetHdrLen])
	t.iov[1] = iovec(p)
	n, err := t.vectored(unix.SYS_READV, 2)
	if err != nil {
		return 0, err
	}
	if n < gro.VnetHdrLen {
		return 0, unix.EIO
	}
	return n - gro.VnetHdrLen, nil
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
// them all off. The kernel refuses flags it does not know with EINVAL, and
// so does SetOffload on a device whose virtio-net header is OpenAs's own.
func (t *Tun) SetOffload(flags uint) error {
	if t.vnet && flags != 0 {
		// offloads need a virtio-net header the caller handles; this
		// one is Tun's own (OpenAs)
		return opErr("TUNSETOFFLOAD", unix.EINVAL)
	}
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
