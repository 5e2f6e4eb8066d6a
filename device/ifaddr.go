package device

import (
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is one address of an interface, as the kernel reports it.
type Addr struct {
	IP        net.IP
	Prefix    int
	Peer      net.IP // point-to-point peer, nil when none
	Broadcast net.IP // IPv4 broadcast, nil when none
}

// inetIoctl runs one SIOCSIF* request carrying an IPv4 address (struct
// sockaddr_in) on an AF_INET datagram socket, as ifconfig(8) does.
func inetIoctl(name string, req uint, op string, ip net.IP) error {
	ip4 := ip.To4()
	if ip4 == nil {
		return opErr(op, unix.EINVAL)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return opErr(op, unix.EINVAL)
	}
	if err := ifr.SetInet4Addr(ip4); err != nil {
		return opErr(op, unix.EINVAL)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return opErr("socket", err)
	}
	defer unix.Close(s)
	return opErr(op, unix.IoctlIfreq(s, req, ifr))
}

// SetAddr4 sets the primary IPv4 address of the interface with
// SIOCSIFADDR, then its netmask with SIOCSIFNETMASK, as msantos/tunctl's
// up/2,3 did: the kernel replaces the first IPv4 address carrying the
// interface's label (or adds one when there is none), so setting the same
// address again changes nothing, and a new address replaces the old one.
// The broadcast address is the kernel's: the classful default for a
// broadcast-capable link, recomputed by SIOCSIFNETMASK for prefixes
// below 31; none on a point-to-point (TUN) link. EEXIST from SIOCSIFADDR
// (the address is already assigned as another, secondary address) counts
// as success, as in the original.
func (Links) SetAddr4(name string, addr net.IP, prefix int) error {
	if prefix < 0 || prefix > 32 {
		return opErr("SIOCSIFNETMASK", unix.EINVAL)
	}
	if err := inetIoctl(name, unix.SIOCSIFADDR, "SIOCSIFADDR", addr); err != nil && Errno(err) != unix.EEXIST {
		return err
	}
	return inetIoctl(name, unix.SIOCSIFNETMASK, "SIOCSIFNETMASK", net.IP(net.CIDRMask(prefix, 32)))
}

// SetPeer4 sets the point-to-point peer of the primary IPv4 address
// (SIOCSIFDSTADDR), as msantos/tunctl's dstaddr/2 did.
func (Links) SetPeer4(name string, peer net.IP) error {
	return inetIoctl(name, unix.SIOCSIFDSTADDR, "SIOCSIFDSTADDR", peer)
}

// SetBroadcast4 sets the broadcast address of the primary IPv4 address
// (SIOCSIFBRDADDR), as msantos/tunctl's broadcast/2 did.
func (Links) SetBroadcast4(name string, brd net.IP) error {
	return inetIoctl(name, unix.SIOCSIFBRDADDR, "SIOCSIFBRDADDR", brd)
}

// AddrList returns the interface's IPv4 and IPv6 addresses in the kernel's
// order (the primary IPv4 address first).
func (Links) AddrList(name string) ([]Addr, error) {
	l, err := link(name)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, opErr("RTM_GETADDR", err)
	}
	out := make([]Addr, 0, len(as))
	for _, a := range as {
		ones, _ := a.Mask.Size()
		r := Addr{IP: a.IP, Prefix: ones, Broadcast: a.Broadcast}
		if ip4 := a.IP.To4(); ip4 != nil {
			r.IP = ip4
		}
		if a.Peer != nil && !a.Peer.IP.Equal(a.IP) {
			r.Peer = a.Peer.IP
			if p4 := a.Peer.IP.To4(); p4 != nil {
				r.Peer = p4
			}
		}
		if b4 := a.Broadcast.To4(); b4 != nil {
			r.Broadcast = b4
		}
		out = append(out, r)
	}
	return out, nil
}
