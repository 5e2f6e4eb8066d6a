package device

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func TestMayUse(t *testing.T) {
	user := Caller{UID: 1000, GIDs: []int{1000, 27}}
	root := Caller{UID: 0, GIDs: []int{0}}
	tun := func(owner, group int) TunInfo { return TunInfo{Kind: "tun", Owner: owner, Group: group} }
	for _, c := range []struct {
		c    Caller
		ti   TunInfo
		want bool
		why  string
	}{
		{user, tun(1000, -1), true, "its owner"},
		{user, tun(-1, 27), true, "in its group (supplementary)"},
		{user, tun(-1, 1000), true, "in its group (real gid)"},
		{user, tun(1000, 27), true, "both match"},
		{user, tun(1000, 4), false, "owner matches, group does not (the kernel's rule too)"},
		{user, tun(2000, 27), false, "group matches, owner does not"},
		{user, tun(-1, -1), false, "ownerless: root's"},
		{user, tun(2000, -1), false, "another user's"},
		{user, TunInfo{Kind: "veth", Owner: -1, Group: -1}, false, "not a TUN/TAP device"},
		{user, TunInfo{Kind: "", Owner: 1000, Group: -1}, false, "no kind"},
		{root, tun(-1, -1), true, "root: ownerless"},
		{root, tun(2000, 4), true, "root: anyone's"},
		{root, TunInfo{Kind: "dummy", Owner: -1, Group: -1}, false, "root: still only TUN/TAP"},
	} {
		assert.Equal(t, c.want, c.c.MayUse(c.ti), c.why)
	}
}

// rtnetlink attributes as the kernel sends them (tun_fill_info): owner and
// group only when set.
func linkMsg(index int, name string, kind string, tunAttrs map[int]uint32) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
	li := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	li.AddRtAttr(unix.IFLA_INFO_KIND, nl.NonZeroTerminated(kind))
	data := li.AddRtAttr(unix.IFLA_INFO_DATA, nil)
	for typ, v := range tunAttrs {
		data.AddRtAttr(typ, binary.NativeEndian.AppendUint32(nil, v))
	}
	return append(b, li.Serialize()...)
}

func TestParseLink(t *testing.T) {
	ti, ok := parseLink(linkMsg(7, "tap3", "tun", map[int]uint32{unix.IFLA_TUN_OWNER: 0, unix.IFLA_TUN_NUM_QUEUES: 3}))
	assert.True(t, ok)
	assert.Equal(t, TunInfo{Name: "tap3", Index: 7, Kind: "tun", Owner: 0, Group: -1, Queues: 3}, ti, "owner 0 is root, not absent")
	ti, ok = parseLink(linkMsg(8, "tun9", "tun", map[int]uint32{unix.IFLA_TUN_GROUP: 27}))
	assert.True(t, ok)
	assert.Equal(t, -1, ti.Owner, "absent: no owner")
	assert.Equal(t, 27, ti.Group)
	ti, ok = parseLink(linkMsg(9, "veth0", "veth", map[int]uint32{unix.IFLA_TUN_OWNER: 5}))
	assert.True(t, ok)
	assert.Equal(t, -1, ti.Owner, "only a tun kind's data is read")
	_, ok = parseLink([]byte{1, 2, 3})
	assert.False(t, ok)
}
