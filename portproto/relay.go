package portproto

import (
	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// The descriptor relay behind tuncer:getfd/1 (doc/design.md, "getfd/1: a
// relayed socket"). The BEAM makes a connected SOCK_SEQPACKET pair of its
// own and hands one end to the port; the port moves packets between that
// end and the device, one packet per message, and the BEAM gives the
// other end's descriptor to the user (open_port({fd, Fd, Fd}, ...)). The
// BEAM never holds the TUN descriptor, so it can issue no ioctl on it.
//
// Hand-over: {relay_listen, Ref} makes the port listen on a fresh random
// abstract address (in the BEAM's network namespace) and answer its name;
// the BEAM connects, sends a nonce with the descriptor attached, then
// sends {relay_accept, Ref, Nonce} over the pipe, and the port takes the
// descriptor from the connection that carried that nonce.

// relayState is one device's relay.
type relayState struct {
	listen   int    // listening socket between relay_listen and relay_accept, or -1
	fd       int    // the relayed socket, or -1
	blocked  bool   // the last send to fd would block: wait for POLLOUT
	pending  []byte // the packet that send was for, sent first on POLLOUT
	on       bool   // device -> fd forwarding is on ({relay, Ref, true})
	polledAt int    // index of fd in the poll set, or -1
}

func (d *devState) relayFd() int {
	if d.relay == nil {
		return -1
	}
	return d.relay.fd
}

// relayWantsRead: the device is read for the relay when forwarding is on
// (the BEAM turns it on while something reads its end), the owner has no
// credit (packets go to whoever reads first, as two readers of one fd)
// and the relay can take a packet.
func (d *devState) relayWantsRead() bool {
	return d.relayFd() >= 0 && d.relay.on && !d.failed && !d.relay.blocked && !d.wantsRead()
}

// cmdRelay turns device -> relay forwarding on or off: {relay, Ref, Bool}.
// Until it is on, packets the owner does not take stay in the device
// (messages from the relay are written to the device either way).
func cmdRelay(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	on, isB := etf.AsBool(a[0])
	if !isB {
		return nil, ErrBadArg
	}
	if d.relayFd() < 0 {
		return nil, unix.EINVAL
	}
	d.relay.on = on
	return ok, nil
}

// rendezvous returns a socket created in the port's first network
// namespace (see device.NewRendezvous).
func (s *Server) rendezvous() (int, error) {
	if s.home >= 0 {
		fd := s.home
		s.home = -1
		return fd, nil
	}
	if s.entered {
		return -1, unix.EXDEV
	}
	return device.NewRendezvous()
}

func cmdRelayListen(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	if d.relay != nil {
		return nil, unix.EBUSY
	}
	l, err := s.rendezvous()
	if err != nil {
		return nil, err
	}
	name, err := device.Listen(l)
	if err != nil {
		unix.Close(l)
		return nil, err
	}
	d.relay = &relayState{listen: l, fd: -1, polledAt: -1}
	return okWith(name), nil
}

func cmdRelayAccept(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	nonce, isB := etf.AsBinary(a[0])
	if !isB || len(nonce) < 16 || len(nonce) > 64 {
		return nil, ErrBadArg
	}
	if d.relay == nil || d.relay.listen < 0 {
		return nil, unix.EINVAL
	}
	fd, err := device.AcceptRelay(d.relay.listen, nonce)
	unix.Close(d.relay.listen)
	d.relay.listen = -1
	if err != nil {
		d.relay = nil
		return nil, err
	}
	d.relay.fd = fd
	return ok, nil
}

// closeRelay closes the relay of a device being closed: the BEAM's end
// then reads end-of-file.
func closeRelay(d *devState) {
	if d.relay == nil {
		return
	}
	for _, fd := range []int{d.relay.listen, d.relay.fd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	d.relay = nil
}

// appendRelayPolls adds the relayed sockets to the poll set: POLLIN for
// packets to write to the device, POLLOUT while a send would block.
func (s *Server) appendRelayPolls() {
	for _, d := range s.order {
		if fd := d.relayFd(); fd >= 0 {
			ev := int16(unix.POLLIN)
			if d.relay.blocked {
				ev |= unix.POLLOUT
			}
			d.relay.polledAt = len(s.pfds)
			s.pfds = append(s.pfds, unix.PollFd{Fd: int32(fd), Events: ev})
		}
	}
}

// serviceRelays handles the relayed sockets that poll reported.
func (s *Server) serviceRelays() {
	for _, d := range s.order {
		r := d.relay
		if r == nil || r.fd < 0 || r.polledAt < 0 || r.polledAt >= len(s.pfds) || s.pfds[r.polledAt].Fd != int32(r.fd) {
			continue
		}
		ev := s.pfds[r.polledAt].Revents
		r.polledAt = -1
		if ev&unix.POLLOUT != 0 {
			s.relayPending(d)
		}
		if d.relay == nil {
			continue
		}
		if ev&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			s.relayToDevice(d, ev&(unix.POLLHUP|unix.POLLERR) != 0)
		}
	}
}

// relayToDevice writes up to readBurst messages from the relay to the
// device, one write(2) each. End-of-file or an error ends the relay. The
// socket's file description is shared with the BEAM, which may clear
// O_NONBLOCK on it: every call says MSG_DONTWAIT instead.
func (s *Server) relayToDevice(d *devState, hup bool) {
	for i := 0; i < readBurst; i++ {
		n, _, err := unix.Recvfrom(d.relay.fd, s.rbuf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || (n == 0 && hup):
			closeRelay(d)
			return
		case n == 0:
			continue // an empty message: nothing a device takes
		}
		if _, err := d.Write(s.rbuf[:n]); err != nil {
			d.stats.TxErrors++
			continue
		}
		d.stats.TxPackets++
		d.stats.TxBytes += uint64(n)
	}
}

// relayDevice reads up to readBurst packets from the device into the
// relay, one message each, unfiltered (as a read of the descriptor would
// be). A full relay stops reading: the packet whose send would block is
// kept and sent first when the relay drains, the others wait in the
// device's queue.
func (s *Server) relayDevice(d *devState) {
	for i := 0; i < readBurst && d.relayWantsRead(); i++ {
		n, err := d.Read(s.rbuf)
		if err != nil {
			if err != unix.EAGAIN {
				d.failed = true
				d.stats.RxErrors++
				s.event("tuntap_read_error", d.ref, err)
			}
			return
		}
		if !s.relaySend(d, s.rbuf[:n]) {
			return
		}
	}
}

// relaySend sends one packet to the relay: false when the relay is full
// (the packet is kept, see relayPending) or gone.
func (s *Server) relaySend(d *devState, pkt []byte) bool {
	switch err := s.relayTry(d, pkt); err {
	case nil:
		return true
	case unix.EAGAIN:
		d.relay.blocked = true
		d.relay.pending = append(d.relay.pending[:0], pkt...)
	default:
		closeRelay(d)
	}
	return false
}

// relayPending: the relay can take data again; the kept packet goes first.
// Still full, it stays kept where it is (no copy).
func (s *Server) relayPending(d *devState) {
	r := d.relay
	r.blocked = false
	if len(r.pending) == 0 {
		return
	}
	switch err := s.relayTry(d, r.pending); err {
	case nil:
		r.pending = r.pending[:0] // keep the buffer
	case unix.EAGAIN:
		r.blocked = true
	default:
		closeRelay(d)
	}
}

// relayTry sends pkt to the relay once (EINTR aside), counting it if sent.
func (s *Server) relayTry(d *devState, pkt []byte) error {
	for {
		err := unix.Send(d.relay.fd, pkt, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			d.stats.RxPackets++
			d.stats.RxBytes += uint64(len(pkt))
		}
		return err
	}
}
