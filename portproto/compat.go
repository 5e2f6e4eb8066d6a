package portproto

import (
	"errors"
	"net"

	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// Commands that give msantos/tunctl 1.0's semantics, with the kernel as
// the only record of addresses: the BEAM keeps no copy.

// AddrLinks is implemented by Links that can set addresses the way
// ifconfig(8) does and list them (device.Links does). A Links without it
// answers these commands with ENOTSUP.
type AddrLinks interface {
	SetAddr4(name string, addr net.IP, prefix int) error
	SetPeer4(name string, peer net.IP) error
	SetBroadcast4(name string, brd net.IP) error
	AddrList(name string) ([]device.Addr, error)
}

// TunIoctler is implemented by devices that run tunctl:ioctl/3 requests
// (*device.Tun does).
type TunIoctler interface {
	Ioctl(req uint32, val uint64, arg []byte, isBytes bool) ([]byte, error)
}

// persistenceReporter is implemented by devices that can tell whether
// the interface is persistent (*device.Tun does).
type persistenceReporter interface {
	Persistent() (bool, error)
}

func (s *Server) addrLinks() (AddrLinks, error) {
	if al, isAL := s.links.(AddrLinks); isAL {
		return al, nil
	}
	return nil, unix.ENOTSUP
}

// cmdAddrSet sets the primary address: IPv4 as SIOCSIFADDR and
// SIOCSIFNETMASK do (replace the primary address, idempotent); IPv6 adds
// the address, an address already present being success.
func cmdAddrSet(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	addr, prefix, err := argPrefix(a[0], a[1])
	if err != nil {
		return nil, err
	}
	if err := s.policy.Address(addr, prefix, nil, kernelBroadcast(d, addr, prefix)); err != nil {
		return nil, s.denied(err)
	}
	if len(addr) == net.IPv6len {
		err := s.links.AddrAdd(d.Name(), addr, prefix, nil, nil)
		if errors.Is(err, unix.EEXIST) {
			err = nil
		}
		return ok, err
	}
	al, err := s.addrLinks()
	if err != nil {
		return nil, err
	}
	return ok, al.SetAddr4(d.Name(), addr, prefix)
}

// cmdAddrList answers the interface's addresses, primary IPv4 first:
// [{Addr, PrefixLen, Opts}] with Opts as addr_add's.
func cmdAddrList(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	al, err := s.addrLinks()
	if err != nil {
		return nil, err
	}
	addrs, err := al.AddrList(d.Name())
	if err != nil {
		return nil, err
	}
	l := make([]etf.Term, 0, len(addrs))
	for _, x := range addrs {
		var opts []etf.Term
		if x.Peer != nil {
			opts = append(opts, etf.Tuple(etf.Atom("peer"), []byte(x.Peer)))
		}
		if x.Broadcast != nil {
			opts = append(opts, etf.Tuple(etf.Atom("broadcast"), []byte(x.Broadcast)))
		}
		l = append(l, etf.Tuple([]byte(x.IP), x.Prefix, etf.List(opts...)))
	}
	return okWith(etf.List(l...)), nil
}

// primary4 returns the primary IPv4 address of the device and its
// prefix, or ip/32 when it has none (for the policy's address check). A
// failed address dump is an error, not "no address": the policy would
// otherwise check the wrong network.
func primary4(al AddrLinks, d *devState, ip net.IP) (net.IP, int, error) {
	addrs, err := al.AddrList(d.Name())
	if err != nil {
		return nil, 0, err
	}
	for _, a := range addrs {
		if len(a.IP) == net.IPv4len {
			return a.IP, a.Prefix, nil
		}
	}
	return ip, 32, nil
}

// kernelBroadcast is the broadcast address SIOCSIFADDR and SIOCSIFNETMASK
// leave on a TAP device for addr/prefix: the prefix's for prefixes below
// 31, the classful default otherwise (nil on TUN, point-to-point, links
// and for IPv6).
func kernelBroadcast(d *devState, addr net.IP, prefix int) net.IP {
	if len(addr) != net.IPv4len || d.Flags()&device.FlagTAP == 0 {
		return nil
	}
	if prefix >= 31 {
		switch {
		case addr[0] < 128:
			prefix = 8
		case addr[0] < 192:
			prefix = 16
		case addr[0] < 224:
			prefix = 24
		}
	}
	brd := make(net.IP, net.IPv4len)
	m := net.CIDRMask(prefix, 32)
	for i := range brd {
		brd[i] = addr[i] | ^m[i]
	}
	return brd
}

func argIPv4(t etf.Term) (net.IP, error) {
	ip, err := argIP(t)
	if err == nil && len(ip) != net.IPv4len {
		err = unix.EINVAL
	}
	return ip, err
}

// cmdDstaddr sets the peer of the primary IPv4 address (SIOCSIFDSTADDR).
// The kernel routes peer/prefix of the primary address: that is checked.
func cmdDstaddr(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	return primary4Command(s, d, a[0], false)
}

// cmdBroadcast sets the broadcast address of the primary IPv4 address
// (SIOCSIFBRDADDR).
func cmdBroadcast(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	return primary4Command(s, d, a[0], true)
}

// primary4Command sets the peer (or, isBrd, the broadcast address) of the
// primary IPv4 address, once the policy accepts it with that address's
// network.
func primary4Command(s *Server, d *devState, ipT etf.Term, isBrd bool) (etf.Term, error) {
	ip, err := argIPv4(ipT)
	if err != nil {
		return nil, err
	}
	al, err := s.addrLinks()
	if err != nil {
		return nil, err
	}
	addr, prefix, err := primary4(al, d, ip)
	if err != nil {
		return nil, err
	}
	peer, brd, set := ip, net.IP(nil), al.SetPeer4
	if isBrd {
		peer, brd, set = nil, ip, al.SetBroadcast4
	}
	if err := s.policy.Address(addr, prefix, peer, brd); err != nil {
		return nil, s.denied(err)
	}
	return ok, set(d.Name(), ip)
}

// ioctlOps maps the requests a policy governs to the policy's operation.
var ioctlOps = map[uint32]string{
	unix.TUNSETPERSIST: "persist",
	unix.TUNSETOWNER:   "owner",
	unix.TUNSETGROUP:   "group",
}

// cmdIoctl runs one whitelisted TUN/TAP request (device.TunIoctls) on the
// device: {ioctl, Ref, Request, Arg}, Arg an integer or a binary. The
// policy applies to TUNSETPERSIST, TUNSETOWNER and TUNSETGROUP as to the
// persist, owner and group commands; any other request is EPERM.
func cmdIoctl(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	req, isI := etf.AsInt(a[0])
	if !isI || req < 0 || req > 1<<32-1 {
		return nil, ErrBadArg
	}
	val, isVal := etf.AsInt(a[1])
	arg, isBytes := etf.AsBinary(a[1])
	if (!isVal && !isBytes) || (isVal && (val < -1<<31 || val > 1<<32-1)) || len(arg) > 4096 {
		return nil, ErrBadArg
	}
	if _, known := device.TunIoctls[uint32(req)]; !known {
		return nil, unix.EPERM
	}
	if op, governed := ioctlOps[uint32(req)]; governed {
		if err := s.policy.Operation(op); err != nil {
			return nil, s.denied(err)
		}
	}
	io, isIo := d.Device.(TunIoctler)
	if !isIo {
		return nil, unix.ENOTSUP
	}
	if _, err := io.Ioctl(uint32(req), uint64(uint32(val)), arg, isBytes); err != nil {
		return nil, err
	}
	if uint32(req) == unix.TUNSETPERSIST {
		d.persisted = val != 0 || (isBytes && string(arg) != "\x00\x00\x00\x00")
	}
	return ok, nil
}

// linkDownUnlessPersisted brings the link of a device being closed down
// when the interface outlives the close (it is persistent) and it was not
// made persistent through this port, as msantos/tunctl's destroy/1 did.
func linkDownUnlessPersisted(s *Server, d *devState) {
	if d.persisted {
		return
	}
	pr, isPR := d.Device.(persistenceReporter)
	if !isPR {
		return
	}
	if persistent, err := pr.Persistent(); err == nil && persistent {
		if err := s.links.SetUp(d.Name(), false); err != nil {
			s.log.Printf("close %s: link down: %v", d.Name(), err)
		}
	}
}
