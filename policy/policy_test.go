package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `
# tunctl_port policy
name_prefix   app-        # devices must be named app-*
max_devices   2
allow_address 198.18.0.0/15
allow_address 2001:db8::/32
allow_persist false
allow_owner   true
`

func TestParseAndApply(t *testing.T) {
	p, err := Parse(strings.NewReader(sample))
	require.NoError(t, err)

	name, err := p.DeviceName("")
	require.NoError(t, err)
	assert.Equal(t, "app-%d", name)
	name, err = p.DeviceName("app-1")
	require.NoError(t, err)
	assert.Equal(t, "app-1", name)
	_, err = p.DeviceName("eth0")
	assert.ErrorIs(t, err, ErrDenied)

	count := func(n int) func(string) (int, error) {
		return func(prefix string) (int, error) { assert.Equal(t, "app-", prefix); return n, nil }
	}
	assert.NoError(t, p.CheckCount(count(1), false))
	assert.ErrorIs(t, p.CheckCount(count(2), false), ErrDenied, "before opening: the limit is reached")
	assert.NoError(t, p.CheckCount(count(2), true), "after opening: the new queue is counted")
	assert.ErrorIs(t, p.CheckCount(count(3), true), ErrDenied, "a concurrent port got in first")

	assert.NoError(t, p.Address(v4(198, 19, 255, 1), 24, nil, nil))
	assert.NoError(t, p.Address(net.ParseIP("2001:db8::1"), 64, nil, nil))
	assert.ErrorIs(t, p.Address(v4(10, 0, 0, 1), 32, nil, nil), ErrDenied)
	assert.ErrorIs(t, p.Address(net.ParseIP("2001:db9::1"), 128, nil, nil), ErrDenied)

	assert.ErrorIs(t, p.Operation("persist"), ErrDenied)
	assert.NoError(t, p.Operation("owner"))
	assert.ErrorIs(t, p.Operation("group"), ErrDenied)
}

func v4(a, b, c, d byte) net.IP { return net.IPv4(a, b, c, d).To4() }

// The network an address installs, its peer's and its broadcast must all
// lie in one allowed range (issue 10, item 2).
func TestAddressBoundsWholeNetworks(t *testing.T) {
	p, err := Parse(strings.NewReader("allow_address 198.18.0.0/16\nallow_address 2001:db8::/32\nallow_address 198.20.0.0/24\n"))
	require.NoError(t, err)
	mapped := net.ParseIP("::ffff:198.18.0.1") // 16 bytes
	require.Len(t, mapped, 16)
	for _, c := range []struct {
		addr   net.IP
		prefix int
		peer   net.IP
		brd    net.IP
		ok     bool
		why    string
	}{
		{v4(198, 18, 0, 1), 24, nil, nil, true, "inside"},
		{v4(198, 18, 0, 1), 16, nil, nil, true, "the whole range"},
		{v4(198, 18, 0, 1), 1, nil, nil, false, "installs 128.0.0.0/1"},
		{v4(198, 18, 0, 1), 15, nil, nil, false, "installs 198.18.0.0/15"},
		{net.ParseIP("2001:db8:1::1"), 0, nil, nil, false, "installs a default route"},
		{net.ParseIP("2001:db8:1::1"), 31, nil, nil, false, "wider than 2001:db8::/32"},
		{net.ParseIP("2001:db8:1::1"), 64, nil, nil, true, "inside"},
		{v4(198, 18, 0, 1), 24, nil, v4(198, 18, 0, 255), true, "broadcast inside"},
		{v4(198, 18, 0, 1), 24, nil, v4(255, 255, 255, 255), false, "broadcast outside"},
		{v4(198, 18, 0, 1), 32, v4(198, 18, 0, 2), nil, true, "peer inside"},
		{v4(198, 18, 0, 1), 32, v4(10, 0, 0, 1), nil, false, "peer outside"},
		{v4(198, 18, 0, 1), 8, v4(198, 18, 0, 2), nil, false, "peer/8 routes 198.0.0.0/8"},
		{v4(198, 18, 0, 1), 32, v4(198, 20, 0, 2), nil, false, "peer in another range: one range must hold all"},
		{mapped, 120, nil, nil, true, "mapped: 198.18.0.0/24"},
		{mapped, 104, nil, nil, false, "mapped: 198.0.0.0/8"},
		{mapped, 8, nil, nil, false, "mapped, prefix below 96"},
		{net.ParseIP("::ffff:10.0.0.1"), 128, nil, nil, false, "mapped outside"},
		{v4(198, 18, 0, 1), 32, net.ParseIP("::ffff:10.0.0.1"), nil, false, "mapped peer outside"},
	} {
		err := p.Address(c.addr, c.prefix, c.peer, c.brd)
		if c.ok {
			assert.NoError(t, err, c.why)
		} else {
			assert.ErrorIs(t, err, ErrDenied, c.why)
		}
	}
}

func TestNamespaces(t *testing.T) {
	admin, err := Parse(strings.NewReader("allow_netns /run/netns/lab-*\nallow_netns /run/netns/x\n"))
	require.NoError(t, err)
	admin.System = true
	app, err := Parse(strings.NewReader("allow_netns /run/netns/lab-1\n"))
	require.NoError(t, err)

	assert.ErrorIs(t, Set(nil).Namespace("/run/netns/lab-1"), ErrDenied, "no administrator's policy: no namespace")
	assert.False(t, Set(nil).NamespacesPossible())
	appOnly := *admin
	appOnly.System = false
	assert.ErrorIs(t, Set{&appOnly}.Namespace("/run/netns/lab-1"), ErrDenied, "a policy the BEAM names cannot allow namespaces")

	s := Set{admin}
	assert.True(t, s.NamespacesPossible())
	assert.NoError(t, s.Namespace("/run/netns/lab-1"))
	assert.NoError(t, s.Namespace("/run/netns/x"))
	for _, bad := range []string{"/run/netns/y", "/run/netns/lab-1/../../../proc/1/ns/net", "/run/netns//lab-1",
		"run/netns/lab-1", "/run/netns/lab-a/b", "/proc/1/ns/net", "/run/netns/lab-1/"} {
		assert.ErrorIs(t, s.Namespace(bad), ErrDenied, bad)
	}
	s = Set{admin, app}
	assert.NoError(t, s.Namespace("/run/netns/lab-1"))
	assert.ErrorIs(t, s.Namespace("/run/netns/lab-2"), ErrDenied, "the application's policy narrows")
	noNs, err := Parse(strings.NewReader("allow_persist true\n"))
	require.NoError(t, err)
	assert.False(t, Set{admin, noNs}.NamespacesPossible(), "a policy without allow_netns allows none")
}

func TestNilPolicyAllowsEverything(t *testing.T) {
	var p *Policy
	name, err := p.DeviceName("")
	assert.NoError(t, err)
	assert.Equal(t, "", name)
	assert.NoError(t, p.Address(net.ParseIP("10.0.0.1"), 0, nil, nil))
	assert.NoError(t, p.Operation("persist"))
	assert.NoError(t, p.CheckCount(nil, false))
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"bogus_key 1",
		"max_devices -1\nname_prefix a",
		"max_devices 3",
		"allow_address 10.0.0.0",
		"allow_persist maybe",
		"name_prefix a b",
		"name_prefix very-long-prefix",
		"name_prefix a%d",
		"allow_netns true",
		"allow_netns false",
		"allow_netns run/netns/x",
		"allow_netns /run/netns/../x",
		"allow_netns /run/netns/[",
	} {
		_, err := Parse(strings.NewReader(bad))
		assert.Error(t, err, bad)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(strings.NewReader(s))
		if err == nil {
			_, _ = p.DeviceName("x")
			_ = p.Address(net.IPv4(1, 2, 3, 4), 8, nil, nil)
			_ = Set{p}.Namespace("/run/netns/x")
		}
	})
}

func TestSetNeedsEveryPolicy(t *testing.T) {
	admin, err := Parse(strings.NewReader("name_prefix app-\nallow_address 198.18.0.0/15\nallow_owner true\n"))
	require.NoError(t, err)
	user, err := Parse(strings.NewReader("name_prefix app-x\nallow_address 198.18.1.0/24\nallow_owner true\n"))
	require.NoError(t, err)
	s := Set{admin, user}
	name, err := s.DeviceName("")
	require.NoError(t, err)
	assert.Equal(t, "app-x%d", name, "the longest prefix makes the template")
	_, err = s.DeviceName("app-y0")
	assert.ErrorIs(t, err, ErrDenied, "the second policy narrows the prefix")
	_, err = s.DeviceName("app-x0")
	assert.NoError(t, err)
	assert.NoError(t, s.Address(v4(198, 18, 1, 9), 24, nil, nil))
	assert.ErrorIs(t, s.Address(v4(198, 18, 2, 9), 24, nil, nil), ErrDenied)
	assert.ErrorIs(t, s.Address(v4(198, 18, 1, 9), 16, nil, nil), ErrDenied, "inside the first, not the second")
	assert.NoError(t, s.Operation("owner"))
	assert.ErrorIs(t, s.Operation("persist"), ErrDenied)
	assert.NoError(t, Set(nil).Operation("persist"))
}
