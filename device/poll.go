package device

import "golang.org/x/sys/unix"

// Poll waits for events on fds (see poll(2)), retrying on EINTR.
// timeoutMs < 0 waits forever.
func Poll(fds []unix.PollFd, timeoutMs int) (int, error) {
	for {
		n, err := unix.Poll(fds, timeoutMs)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// SetNonblock switches fd to non-blocking mode (ERTS leaves the port
// program's end of the stdio pipes blocking).
func SetNonblock(fd int) error { return opErr("fcntl", unix.SetNonblock(fd, true)) }

// ReadFd reads from a raw descriptor, retrying on EINTR.
func ReadFd(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// WriteAll writes p to a descriptor in full, waiting with poll(2) when the
// descriptor is non-blocking and full.
func WriteAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		switch err {
		case nil:
			p = p[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			if _, err := Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, -1); err != nil {
				return opErr("poll", err)
			}
		default:
			return opErr("write", err)
		}
	}
	return nil
}
