// Package policy parses and applies the optional policy file of
// tunctl_port: limits an administrator puts on what a BEAM may do through
// the privileged binary (device name prefix, number of devices, address
// ranges, persist/owner/group, namespaces). The format is in doc/security.md.
//
// A nil *Policy allows everything (the default when no file is given).
package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// ErrDenied is returned (wrapped) for every violation; tunctl_port answers
// it with {error, eacces}.
var ErrDenied = errors.New("denied by policy")

// Policy is a parsed policy file.
type Policy struct {
	NamePrefix string       // non-empty: device names must start with it
	MaxDevices int          // > 0: at most this many interfaces named NamePrefix* may exist
	Addresses  []*net.IPNet // non-empty: addresses and peers must lie in one of them
	Persist    bool         // persist/2 allowed
	Owner      bool         // owner/2 allowed
	Group      bool         // group/2 allowed
	Netns      bool         // {namespace, Path} allowed
}

// Load reads a policy file.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads "key value" lines; '#' starts a comment. Unknown keys and bad
// values are errors: a policy that does not say what its author meant must
// not be half-applied.
func Parse(r io.Reader) (*Policy, error) {
	p := &Policy{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("policy line %d: want \"key value\", got %q", line, sc.Text())
		}
		if err := p.set(fields[0], fields[1]); err != nil {
			return nil, fmt.Errorf("policy line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.MaxDevices > 0 && p.NamePrefix == "" {
		return nil, errors.New("policy: max_devices needs name_prefix")
	}
	return p, nil
}

func (p *Policy) set(key, val string) error {
	var err error
	switch key {
	case "name_prefix":
		if len(val) > 12 || strings.ContainsAny(val, "/%:") {
			return fmt.Errorf("name_prefix %q: at most 12 bytes, no '/', '%%' or ':'", val)
		}
		p.NamePrefix = val
	case "max_devices":
		p.MaxDevices, err = strconv.Atoi(val)
		if err == nil && p.MaxDevices <= 0 {
			err = errors.New("must be positive")
		}
	case "allow_address":
		var n *net.IPNet
		_, n, err = net.ParseCIDR(val)
		if err == nil {
			p.Addresses = append(p.Addresses, n)
		}
	case "allow_persist":
		p.Persist, err = strconv.ParseBool(val)
	case "allow_owner":
		p.Owner, err = strconv.ParseBool(val)
	case "allow_group":
		p.Group, err = strconv.ParseBool(val)
	case "allow_netns":
		p.Netns, err = strconv.ParseBool(val)
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, val, err)
	}
	return nil
}

// DeviceName returns the name to open for the requested one: unchanged when
// allowed, prefix+"%d" (the kernel fills in a number) for an empty request
// under a prefix rule.
func (p *Policy) DeviceName(name string) (string, error) {
	if p == nil || p.NamePrefix == "" {
		return name, nil
	}
	if name == "" {
		return p.NamePrefix + "%d", nil
	}
	if !strings.HasPrefix(name, p.NamePrefix) {
		return "", fmt.Errorf("%w: device name %q lacks prefix %q", ErrDenied, name, p.NamePrefix)
	}
	return name, nil
}

// CheckCount refuses a new device when existing() interfaces already carry
// the prefix and the limit is reached.
func (p *Policy) CheckCount(existing func(prefix string) (int, error)) error {
	if p == nil || p.MaxDevices == 0 {
		return nil
	}
	n, err := existing(p.NamePrefix)
	if err != nil {
		return err
	}
	if n >= p.MaxDevices {
		return fmt.Errorf("%w: %d devices named %s* exist (max_devices %d)", ErrDenied, n, p.NamePrefix, p.MaxDevices)
	}
	return nil
}

// Address refuses an address outside every allow_address range.
func (p *Policy) Address(ip net.IP) error {
	if p == nil || len(p.Addresses) == 0 {
		return nil
	}
	for _, n := range p.Addresses {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: address %s outside allow_address", ErrDenied, ip)
}

// Operation refuses persist, owner, group or netns unless allowed.
func (p *Policy) Operation(op string) error {
	if p == nil {
		return nil
	}
	allowed := map[string]bool{"persist": p.Persist, "owner": p.Owner, "group": p.Group, "netns": p.Netns}
	if a, known := allowed[op]; known && !a {
		return fmt.Errorf("%w: %s not allowed", ErrDenied, op)
	}
	return nil
}

// Set is every policy in force: each must allow an action. The empty Set
// allows everything.
type Set []*Policy

// DeviceName applies each policy's name rule. An empty name becomes the
// longest prefix in force followed by "%d" (the kernel numbers it), which
// every policy must then accept.
func (s Set) DeviceName(name string) (string, error) {
	if name == "" {
		for _, p := range s {
			if len(p.NamePrefix)+2 > len(name) {
				name = p.NamePrefix + "%d"
			}
		}
		if name == "%d" {
			name = ""
		}
	}
	for _, p := range s {
		var err error
		if name, err = p.DeviceName(name); err != nil {
			return "", err
		}
	}
	return name, nil
}

// CheckCount applies each policy's device limit.
func (s Set) CheckCount(existing func(prefix string) (int, error)) error {
	for _, p := range s {
		if err := p.CheckCount(existing); err != nil {
			return err
		}
	}
	return nil
}

// Address refuses an address any policy refuses.
func (s Set) Address(ip net.IP) error {
	for _, p := range s {
		if err := p.Address(ip); err != nil {
			return err
		}
	}
	return nil
}

// Operation refuses an operation any policy refuses.
func (s Set) Operation(op string) error {
	for _, p := range s {
		if err := p.Operation(op); err != nil {
			return err
		}
	}
	return nil
}
