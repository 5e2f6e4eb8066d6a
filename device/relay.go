package device

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"

	"golang.org/x/sys/unix"
)

// relaySockBuf is the send and receive buffer asked for on a relay socket:
// room for a few hundred frames in flight each way (the kernel caps it at
// net.core.wmem_max/rmem_max).
const relaySockBuf = 4 << 20

// NewRendezvous returns an unbound AF_UNIX SOCK_SEQPACKET socket. A
// socket's abstract address lives in the network namespace the socket was
// created in, so a port that is about to enter another namespace creates
// this first, to listen later where the BEAM can connect.
func NewRendezvous() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	return fd, opErr("socket", err)
}

// Listen binds fd (from NewRendezvous) to a random abstract address and
// listens on it. It returns the address (its first byte is NUL). Binding
// first, before anyone learns the name, means nobody else can hold it.
func Listen(fd int) ([]byte, error) {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, opErr("random", err)
	}
	name := "\x00tunctl-" + hex.EncodeToString(r[:])
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		return nil, opErr("bind", err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		return nil, opErr("listen", err)
	}
	return []byte(name), nil
}

// AcceptRelay takes, from the connections already queued on the listening
// socket l, the one whose first message is exactly nonce with exactly one
// descriptor attached, an AF_UNIX SOCK_SEQPACKET socket: that descriptor
// is returned, non-blocking, close-on-exec, with relaySockBuf buffers.
// Every other connection, and every descriptor they carried, is closed, so
// a local user who connects to the address gets nothing and leaves nothing
// behind. EACCES when no connection carried the nonce.
func AcceptRelay(l int, nonce []byte) (int, error) {
	found := -1
	for {
		c, _, err := unix.Accept4(l, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		fd := takeRelay(c, nonce)
		unix.Close(c)
		if fd >= 0 && found < 0 {
			found = fd
		} else if fd >= 0 {
			unix.Close(fd)
		}
	}
	if found < 0 {
		return -1, opErr("relay", unix.EACCES)
	}
	return found, nil
}

// takeRelay reads one message from connection c: the descriptor it
// carries when the message is the nonce and the descriptor a seqpacket
// socket, else -1 (anything received is closed).
func takeRelay(c int, nonce []byte) int {
	buf := make([]byte, len(nonce)+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := unix.Recvmsg(c, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1
	}
	var fds []int
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if got, rerr := unix.ParseUnixRights(&m); rerr == nil {
				fds = append(fds, got...)
			}
		}
	}
	good := flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) == 0 && n == len(nonce) &&
		bytes.Equal(buf[:n], nonce) && len(fds) == 1 && isSeqpacket(fds[0])
	if !good {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1
	}
	fd := fds[0]
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, relaySockBuf)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, relaySockBuf)
	return fd
}

func isSeqpacket(fd int) bool {
	dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err1 == nil && err2 == nil && dom == unix.AF_UNIX && typ == unix.SOCK_SEQPACKET
}
