package device

import (
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

func TestIPNetValidation(t *testing.T) {
	n, err := ipNet(net.IP{198, 18, 0, 1}, 24)
	assert.NoError(t, err)
	assert.Equal(t, "198.18.0.1/24", n.String())
	n, err = ipNet(net.ParseIP("2001:db8::1"), 64)
	assert.NoError(t, err)
	assert.Equal(t, "2001:db8::1/64", n.String())
	for _, bad := range []struct {
		ip     net.IP
		prefix int
	}{{net.IP{1, 2, 3}, 8}, {net.IP{1, 2, 3, 4}, 33}, {net.IP{1, 2, 3, 4}, -1}, {net.ParseIP("::1"), 129}} {
		_, err := ipNet(bad.ip, bad.prefix)
		assert.ErrorIs(t, err, unix.EINVAL, "%v/%d", bad.ip, bad.prefix)
	}
}

func TestErrnoAndOpError(t *testing.T) {
	err := opErr("TUNSETIFF", unix.EPERM)
	assert.Equal(t, "TUNSETIFF: operation not permitted", err.Error())
	assert.ErrorIs(t, err, unix.EPERM)
	assert.Equal(t, unix.EPERM, Errno(err))
	assert.Equal(t, unix.EIO, Errno(errors.New("no errno")))
	assert.Nil(t, opErr("x", nil))
}

func TestOpenRefusesBadRequestsBeforeAnySyscall(t *testing.T) {
	_, err := Open("sixteen-bytes-xx", FlagTUN)
	assert.ErrorIs(t, err, unix.EINVAL)
	_, err = Open("x", FlagTUN|FlagTAP)
	assert.ErrorIs(t, err, unix.EINVAL)
	_, err = Open("x", FlagNoPI)
	assert.ErrorIs(t, err, unix.EINVAL)
}
