package device

import (
	"errors"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkInfo is the part of an interface's rtnetlink state the protocol reports.
type LinkInfo struct {
	Name  string
	Index int
	MTU   int
	Up    bool
}

// Links configures interfaces over rtnetlink. The zero value is ready to use.
type Links struct{}

func link(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, opErr("link "+name, unix.ENODEV)
		}
		return nil, opErr("link "+name, err)
	}
	return l, nil
}

func ipNet(addr net.IP, prefix int) (*net.IPNet, error) {
	bits := 8 * len(addr)
	if (bits != 32 && bits != 128) || prefix < 0 || prefix > bits {
		return nil, opErr("address", unix.EINVAL)
	}
	return &net.IPNet{IP: addr, Mask: net.CIDRMask(prefix, bits)}, nil
}

// linkAndNet resolves the interface and checks addr/prefix.
func linkAndNet(name string, addr net.IP, prefix int) (netlink.Link, *net.IPNet, error) {
	l, err := link(name)
	if err != nil {
		return nil, nil, err
	}
	n, err := ipNet(addr, prefix)
	return l, n, err
}

// AddrAdd adds addr/prefix to the interface, with an optional IPv4 broadcast
// address and an optional point-to-point peer (nil when absent).
func (Links) AddrAdd(name string, addr net.IP, prefix int, brd, peer net.IP) error {
	l, n, err := linkAndNet(name, addr, prefix)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: n, Broadcast: brd}
	if peer != nil {
		if len(peer) != len(addr) {
			return opErr("address", unix.EINVAL)
		}
		a.Peer = &net.IPNet{IP: peer, Mask: net.CIDRMask(8*len(peer), 8*len(peer))}
	}
	return opErr("RTM_NEWADDR", netlink.AddrAdd(l, a))
}

// AddrDel removes addr/prefix from the interface. The address is looked up
// first, so that a point-to-point address (which the kernel keys by its
// peer) is removed as well.
func (Links) AddrDel(name string, addr net.IP, prefix int) error {
	l, n, err := linkAndNet(name, addr, prefix)
	if err != nil {
		return err
	}
	family := netlink.FAMILY_V4
	if addr.To4() == nil {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, family)
	if err != nil {
		return opErr("RTM_GETADDR", err)
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(addr) && ones == prefix {
			return opErr("RTM_DELADDR", netlink.AddrDel(l, &a))
		}
	}
	return opErr("RTM_DELADDR", netlink.AddrDel(l, &netlink.Addr{IPNet: n}))
}

// SetUp brings the interface up or down.
func (Links) SetUp(name string, up bool) error {
	l, err := link(name)
	if err != nil {
		return err
	}
	if up {
		return opErr("RTM_NEWLINK up", netlink.LinkSetUp(l))
	}
	return opErr("RTM_NEWLINK down", netlink.LinkSetDown(l))
}

// SetMTU sets the interface MTU.
func (Links) SetMTU(name string, mtu int) error {
	l, err := link(name)
	if err != nil {
		return err
	}
	if mtu <= 0 {
		return opErr("RTM_NEWLINK mtu", unix.EINVAL)
	}
	return opErr("RTM_NEWLINK mtu", netlink.LinkSetMTU(l, mtu))
}

// Info reads the interface's name, index, MTU and administrative state.
func (Links) Info(name string) (LinkInfo, error) {
	l, err := link(name)
	if err != nil {
		return LinkInfo{}, err
	}
	a := l.Attrs()
	return LinkInfo{Name: a.Name, Index: a.Index, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}, nil
}
