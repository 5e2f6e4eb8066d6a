package device

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TunIoctl describes one TUN/TAP request of msantos/tunctl 1.0's
// include/tuntap.hrl that tunctl:ioctl/3 may pass to a device.
type TunIoctl struct {
	Name  string
	ByVal bool // the kernel takes the argument itself, not a pointer
	Size  int  // bytes the kernel reads or writes through the pointer
}

// TunIoctls is the whitelist of tunctl:ioctl/3, keyed by request number.
// Every other request is refused with EPERM. Sizes are the kernel's:
// struct ifreq for TUNSETIFF/TUNGETIFF, an int otherwise; TUNSETTXFILTER
// reads a struct tun_filter whose length the caller's buffer must cover.
var TunIoctls = map[uint32]TunIoctl{
	unix.TUNSETNOCSUM:   {"TUNSETNOCSUM", true, 0},
	unix.TUNSETDEBUG:    {"TUNSETDEBUG", true, 0},
	unix.TUNSETIFF:      {"TUNSETIFF", false, sizeofIfreq},
	unix.TUNSETPERSIST:  {"TUNSETPERSIST", true, 0},
	unix.TUNSETOWNER:    {"TUNSETOWNER", true, 0},
	unix.TUNSETLINK:     {"TUNSETLINK", true, 0},
	unix.TUNSETGROUP:    {"TUNSETGROUP", true, 0},
	unix.TUNGETFEATURES: {"TUNGETFEATURES", false, 4},
	unix.TUNSETOFFLOAD:  {"TUNSETOFFLOAD", true, 0},
	unix.TUNSETTXFILTER: {"TUNSETTXFILTER", false, 4},
	unix.TUNGETIFF:      {"TUNGETIFF", false, sizeofIfreq},
	unix.TUNGETSNDBUF:   {"TUNGETSNDBUF", false, 4},
	unix.TUNSETSNDBUF:   {"TUNSETSNDBUF", false, 4},
}

// Ioctl runs a whitelisted TUN/TAP request on the device. For a by-value
// request the argument is an integer (or a 4-byte native integer given as
// bytes); for a pointer request it is copied into a zeroed buffer at least
// as large as the kernel's structure, so the kernel never reads or writes
// past it. It returns the buffer after the call (nil for by-value
// requests).
func (t *Tun) Ioctl(req uint32, val uint64, arg []byte, isBytes bool) ([]byte, error) {
	spec, ok := TunIoctls[req]
	if !ok {
		return nil, opErr("ioctl", unix.EPERM)
	}
	if spec.ByVal {
		if isBytes {
			if len(arg) != 4 {
				return nil, opErr(spec.Name, unix.EINVAL)
			}
			val = uint64(binary.NativeEndian.Uint32(arg))
		}
		if req == unix.TUNSETOFFLOAD {
			return nil, t.SetOffload(uint(val)) // its rule for OpenAs's own header
		}
		return nil, opErr(spec.Name, rawIoctl(t.fd, req, uintptr(val)))
	}
	size := spec.Size
	if req == unix.TUNSETTXFILTER {
		// struct tun_filter { __u16 flags; __u16 count; __u8 addr[][6]; }
		if !isBytes || len(arg) < 4 || len(arg) < 4+6*int(binary.NativeEndian.Uint16(arg[2:4])) {
			return nil, opErr(spec.Name, unix.EINVAL)
		}
	}
	buf := make([]byte, max(size, len(arg), 4))
	if isBytes {
		copy(buf, arg)
	} else {
		binary.NativeEndian.PutUint32(buf, uint32(val))
	}
	err := rawIoctl(t.fd, req, uintptr(unsafe.Pointer(&buf[0])))
	return buf, opErr(spec.Name, err)
}

func rawIoctl(fd int, req uint32, arg uintptr) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
	if e != 0 {
		return e
	}
	return nil
}

// Persistent reports whether the interface is persistent (IFF_PERSIST in
// TUNGETIFF).
func (t *Tun) Persistent() (bool, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return false, opErr("TUNGETIFF", err)
	}
	if err := unix.IoctlIfreq(t.fd, unix.TUNGETIFF, ifr); err != nil {
		return false, opErr("TUNGETIFF", err)
	}
	return ifr.Uint16()&unix.IFF_PERSIST != 0, nil
}

// sizeofIfreq is sizeof(struct ifreq) on Linux.
const sizeofIfreq = 40
