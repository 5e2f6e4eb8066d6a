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
	assert.NoError(t, p.CheckCount(count(1)))
	assert.ErrorIs(t, p.CheckCount(count(2)), ErrDenied)

	assert.NoError(t, p.Address(net.ParseIP("198.19.255.1")))
	assert.NoError(t, p.Address(net.ParseIP("2001:db8::1")))
	assert.ErrorIs(t, p.Address(net.ParseIP("10.0.0.1")), ErrDenied)
	assert.ErrorIs(t, p.Address(net.ParseIP("2001:db9::1")), ErrDenied)

	assert.ErrorIs(t, p.Operation("persist"), ErrDenied)
	assert.NoError(t, p.Operation("owner"))
	assert.ErrorIs(t, p.Operation("group"), ErrDenied)
	assert.ErrorIs(t, p.Operation("netns"), ErrDenied)
}

func TestNilPolicyAllowsEverything(t *testing.T) {
	var p *Policy
	name, err := p.DeviceName("")
	assert.NoError(t, err)
	assert.Equal(t, "", name)
	assert.NoError(t, p.Address(net.ParseIP("10.0.0.1")))
	assert.NoError(t, p.Operation("netns"))
	assert.NoError(t, p.CheckCount(nil))
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
			_ = p.Address(net.IPv4(1, 2, 3, 4))
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
	assert.NoError(t, s.Address(net.ParseIP("198.18.1.9")))
	assert.ErrorIs(t, s.Address(net.ParseIP("198.18.2.9")), ErrDenied)
	assert.NoError(t, s.Operation("owner"))
	assert.ErrorIs(t, s.Operation("persist"), ErrDenied)
	assert.NoError(t, Set(nil).Operation("netns"))
}
