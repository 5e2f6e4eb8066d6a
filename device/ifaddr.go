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

// SetAddr4 sets the primary IPv4 address of the interface as
// msantos/tunctl's up/2,3 did: SIOCSIFADDR, so the kernel replaces the
// first IPv4 address carrying the interface's label (or adds one when
// there is none): setting the same address again changes nothing, a new
// address replaces the old one, and the broadcast address is the
// kernel's (the classful default on a broadcast-capable link, none on a
// point-to-point TUN link). EEXIST (the address is already there as
// another address) counts as success, as in the original. Then the prefix:
// the original used SIOCSIFNETMASK, which changes the interface's first
// address, not necessarily this one once there are several; here the
// address just set gets it (over rtnetlink), with SIOCSIFNETMASK's rule
// for the broadcast address (recomputed when it was the default of the
// old prefix and the new prefix is below 31).
func (Links) SetAddr4(name string, addr net.IP, prefix int) error {
	ip4 := addr.To4()
	if ip4 == nil || prefix < 0 || prefix > 32 {
		return opErr("SIOCSIFADDR", unix.EINVAL)
	}
	if err := inetIoctl(name, unix.SIOCSIFADDR, "SIOCSIFADDR", ip4); err != nil && Errno(err) != unix.EEXIST {
		return err
	}
	l, err := link(name)
	if err != nil {
		return err
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return opErr("RTM_GETADDR", err)
	}
	for _, a := range as {
		ones, _ := a.Mask.Size()
		if !a.IP.Equal(ip4) {
			continue
		}
		if ones == prefix {
			return nil
		}
		b := netlink.Addr{IPNet: &net.IPNet{IP: ip4, Mask: net.CIDRMask(prefix, 32)}, Peer: a.Peer, Broadcast: a.Broadcast}
		if prefix < 31 && a.Broadcast != nil && a.Broadcast.Equal(broadcast4(ip4, ones)) {
			b.Broadcast = broadcast4(ip4, prefix)
		}
		if b.Broadcast == nil {
			// none, as before (netlink.AddrAdd would compute one)
			b.Broadcast = net.IPv4zero.To4()
		}
		if err := netlink.AddrDel(l, &a); err != nil {
			return opErr("RTM_DELADDR", err)
		}
		return opErr("RTM_NEWADDR", netlink.AddrAdd(l, &b))
	}
	return opErr("SIOCSIFADDR", unix.EADDRNOTAVAIL)
}

// broadcast4 is the broadcast address of ip's network of that prefix.
func broadcast4(ip net.IP, prefix int) net.IP {
	m := net.CIDRMask(prefix, 32)
	b := make(net.IP, 4)
	for i := range b {
		b[i] = ip[i] | ^m[i]
	}
	return b
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
		r := Addr{IP: a.IP, Prefix: ones}
		if ip4 := a.IP.To4(); ip4 != nil {
			r.IP = ip4
		}
		if a.Peer != nil && !a.Peer.IP.Equal(a.IP) {
			r.Peer = a.Peer.IP
			if p4 := a.Peer.IP.To4(); p4 != nil {
				r.Peer = p4
			}
		}
		if b4 := a.Broadcast.To4(); b4 != nil && !b4.IsUnspecified() {
			r.Broadcast = b4
		}
		out = append(out, r)
	}
	return out, nil
}
