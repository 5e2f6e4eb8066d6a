package device

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// TunInfo is what rtnetlink reports about an interface, as `ip -d link`
// shows it: its kind and, for a TUN/TAP device, owner, group and queues.
type TunInfo struct {
	Name   string
	Index  int
	Kind   string // IFLA_INFO_KIND: "tun" for TUN and TAP devices
	Owner  int    // IFLA_TUN_OWNER, -1 when the device has no owner
	Group  int    // IFLA_TUN_GROUP, -1 when the device has no group
	Queues int    // IFLA_TUN_NUM_QUEUES: descriptors attached
}

// IsTun reports whether the interface is a TUN/TAP device.
func (ti TunInfo) IsTun() bool { return ti.Kind == "tun" }

// TunInfo reads the interface called name from rtnetlink, in the calling
// thread's network namespace (unlike /sys/class/net, which shows the
// namespace /sys was mounted in). A missing interface is ENODEV.
func (Links) TunInfo(name string) (TunInfo, error) {
	if name == "" || len(name) > MaxNameLen {
		return TunInfo{}, opErr("RTM_GETLINK", unix.ENODEV)
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return TunInfo{}, opErr("RTM_GETLINK "+name, err)
	}
	for _, m := range msgs {
		if ti, ok := parseLink(m); ok && ti.Name == name {
			return ti, nil
		}
	}
	return TunInfo{}, opErr("RTM_GETLINK "+name, unix.ENODEV)
}

// tunInfos lists every interface of the calling thread's namespace. A
// dump that interfaces changing meanwhile made inconsistent
// (NLM_F_DUMP_INTR) is taken again, up to 10 times, then answered EAGAIN.
func (Links) tunInfos() ([]TunInfo, error) {
	var msgs [][]byte
	for attempt := 0; ; attempt++ {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		var err error
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		if errors.Is(err, nl.ErrDumpInterrupted) && attempt < 10 {
			continue
		}
		if errors.Is(err, nl.ErrDumpInterrupted) {
			err = unix.EAGAIN
		}
		if err != nil {
			return nil, opErr("RTM_GETLINK", err)
		}
		break
	}
	l := make([]TunInfo, 0, len(msgs))
	for _, m := range msgs {
		if ti, ok := parseLink(m); ok {
			l = append(l, ti)
		}
	}
	return l, nil
}

// Count returns how many interfaces have names starting with prefix, each
// queue of a TUN/TAP device counting as one (a device with no queue
// attached, a persistent one, counts as one too): the kernel memory a
// device can pin grows with its queues.
func (l Links) Count(prefix string) (int, error) {
	infos, err := l.tunInfos()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ti := range infos {
		if strings.HasPrefix(ti.Name, prefix) {
			n += max(1, ti.Queues)
		}
	}
	return n, nil
}

// parseLink decodes one RTM_NEWLINK message.
func parseLink(m []byte) (TunInfo, bool) {
	if len(m) < unix.SizeofIfInfomsg {
		return TunInfo{}, false
	}
	ti := TunInfo{Index: int(nl.DeserializeIfInfomsg(m).Index), Owner: -1, Group: -1}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return TunInfo{}, false
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			ti.Name = cString(a.Value)
		case unix.IFLA_LINKINFO:
			parseLinkInfo(a.Value, &ti)
		}
	}
	return ti, ti.Name != ""
}

func parseLinkInfo(b []byte, ti *TunInfo) {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return
	}
	var data []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_INFO_KIND:
			ti.Kind = cString(a.Value)
		case unix.IFLA_INFO_DATA:
			data = a.Value
		}
	}
	if ti.Kind != "tun" || data == nil {
		return
	}
	attrs, err = nl.ParseRouteAttr(data)
	if err != nil {
		return
	}
	for _, a := range attrs {
		if len(a.Value) < 4 {
			continue
		}
		v := int(binary.NativeEndian.Uint32(a.Value))
		switch a.Attr.Type {
		case unix.IFLA_TUN_OWNER:
			ti.Owner = v
		case unix.IFLA_TUN_GROUP:
			ti.Group = v
		case unix.IFLA_TUN_NUM_QUEUES:
			ti.Queues = v
		}
	}
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Caller is the identity tunctl_port acts for: its real user and group
// ids (the user who ran it; file capabilities do not change them).
type Caller struct {
	UID  int
	GIDs []int // real gid first, then the supplementary groups
}

// CurrentCaller returns this process's real uid and groups.
func CurrentCaller() (Caller, error) {
	groups, err := unix.Getgroups()
	if err != nil {
		return Caller{}, opErr("getgroups", err)
	}
	return Caller{UID: unix.Getuid(), GIDs: append([]int{unix.Getgid()}, groups...)}, nil
}

// Root reports whether the caller is the superuser (real uid 0).
func (c Caller) Root() bool { return c.UID == 0 }

// MayUse is the ownership rule: root may use any TUN/TAP device; anyone
// else only one that has an owner or a group, whose owner (when set) is
// the caller's uid and whose group (when set) is one of the caller's
// groups. An ownerless device is root's.
func (c Caller) MayUse(ti TunInfo) bool {
	if !ti.IsTun() {
		return false
	}
	if c.Root() {
		return true
	}
	if ti.Owner < 0 && ti.Group < 0 {
		return false
	}
	if ti.Owner >= 0 && ti.Owner != c.UID {
		return false
	}
	if ti.Group >= 0 {
		for _, g := range c.GIDs {
			if g == ti.Group {
				return true
			}
		}
		return false
	}
	return true
}
