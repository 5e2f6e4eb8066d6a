package main

import (
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpConn is a connected, blocking IPv4 UDP socket that sends and receives
// in batches with sendmmsg(2) and recvmmsg(2). The receive timeout is
// SO_RCVTIMEO. It implements conn.
type udpConn struct {
	fd   int
	rh   []unix.Mmsghdr
	riov []unix.Iovec
	sh   []unix.Mmsghdr
	siov []unix.Iovec
}

// dialUDP opens a socket bound to local (any port) and connected to remote,
// ready for batches of up to batch datagrams.
func dialUDP(local netip.Addr, remote netip.AddrPort, timeout time.Duration, batch int) (*udpConn, error) {
	if !local.Is4() || !remote.Addr().Is4() {
		return nil, unix.EAFNOSUPPORT
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &udpConn{fd: fd}
	fail := func(err error) (*udpConn, error) {
		unix.Close(fd)
		return nil, err
	}
	for _, o := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 4<<20); err != nil {
			return fail(err)
		}
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: local.As4()}); err != nil {
		return fail(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: remote.Addr().As4(), Port: int(remote.Port())}); err != nil {
		return fail(err)
	}
	c.rh = make([]unix.Mmsghdr, batch)
	c.riov = make([]unix.Iovec, batch)
	c.sh = make([]unix.Mmsghdr, batch)
	c.siov = make([]unix.Iovec, batch)
	return c, nil
}

func (c *udpConn) close() { unix.Close(c.fd) }

// prepare points hdrs[i] at bufs[i].
func prepare(hdrs []unix.Mmsghdr, iov []unix.Iovec, bufs [][]byte) {
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
		hdrs[i].Hdr.Iov = &iov[i]
		hdrs[i].Hdr.SetIovlen(1)
		hdrs[i].Len = 0
	}
}

// send sends every packet of pkts, one datagram each.
func (c *udpConn) send(pkts [][]byte) error {
	for len(pkts) > 0 {
		n := min(len(pkts), len(c.sh))
		prepare(c.sh, c.siov, pkts[:n])
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.sh[0])), uintptr(n), 0, 0, 0)
		switch e {
		case 0:
			pkts = pkts[r:]
		case unix.EINTR:
		default:
			return e
		}
	}
	return nil
}

// recv blocks (up to SO_RCVTIMEO) for the first datagram and takes the
// others already queued.
func (c *udpConn) recv(bufs [][]byte, lens []int) (int, error) {
	n := min(len(bufs), len(c.rh))
	prepare(c.rh, c.riov, bufs[:n])
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.rh[0])), uintptr(n), unix.MSG_WAITFORONE, 0, 0)
		switch e {
		case 0:
			for i := 0; i < int(r); i++ {
				lens[i] = int(c.rh[i].Len)
			}
			return int(r), nil
		case unix.EAGAIN:
			return 0, nil
		case unix.EINTR:
		default:
			return 0, e
		}
	}
}
