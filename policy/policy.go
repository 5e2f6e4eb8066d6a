// Package policy parses and applies the optional policy file of
// tunctl_port: limits an administrator puts on what a BEAM may do through
// the privileged binary (device name prefix, number of devices, address
// ranges, persist/owner/group, namespaces). The format is in doc/security.md.
//
// A nil *Policy allows everything it could limit (the default when no file
// is given); namespaces need the administrator's policy (Set.Namespace).
package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// ErrDenied is returned (wrapped) for every violation; tunctl_port answers
// it with {error, eacces}.
var ErrDenied = errors.New("denied by policy")

// Policy is a parsed policy file.
type Policy struct {
	NamePrefix string       // non-empty: device names must start with it
	MaxDevices int          // > 0: at most this many interfaces named NamePrefix* (queues counted) may exist
	Addresses  []*net.IPNet // non-empty: every network installed must lie in one of them
	Persist    bool         // persist/2 allowed
	Owner      bool         // owner/2 allowed
	Group      bool         // group/2 allowed
	Netns      []string     // {namespace, Path}: path.Match patterns Path must match
	// System marks the administrator's policy: namespaces are allowed only
	// when it is in force and names them.
	System bool
}

// Load reads a policy file. It must be a regular file; it is opened
// without blocking, so a FIFO in its place is an error, not a hang.
func Load(name string) (*Policy, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
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
		if !strings.HasPrefix(val, "/") || path.Clean(val) != val {
			return fmt.Errorf("allow_netns %q: want a clean absolute path or pattern (/run/netns/lab-*)", val)
		}
		if _, err = path.Match(val, ""); err == nil {
			p.Netns = append(p.Netns, val)
		}
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

// CheckCount applies the device limit. existing(prefix) counts the
// interfaces named prefix* (each queue of a multi-queue device counting as
// one). Before a device is opened (opened false) it refuses when the limit
// is reached; after (opened true, the new queue counted) when it is
// exceeded: the caller then closes what it opened, so that concurrent
// ports cannot race past the limit together.
func (p *Policy) CheckCount(existing func(prefix string) (int, error), opened bool) error {
	if p == nil || p.MaxDevices == 0 {
		return nil
	}
	n, err := existing(p.NamePrefix)
	if err != nil {
		return err
	}
	if n > p.MaxDevices || n == p.MaxDevices && !opened {
		return fmt.Errorf("%w: %d devices named %s* exist (max_devices %d)", ErrDenied, n, p.NamePrefix, p.MaxDevices)
	}
	return nil
}

// Normalize returns ip as 4 bytes when it is IPv4 or IPv4-mapped IPv6
// (::ffff:a.b.c.d), with the prefix shifted to match; otherwise ip
// unchanged. ok is false for a mapped address whose prefix is below 96
// (it would name more than IPv4) or a length that is neither 4 nor 16.
func Normalize(ip net.IP, prefix int) (net.IP, int, bool) {
	switch {
	case len(ip) == net.IPv4len:
		return ip, prefix, prefix >= 0 && prefix <= 32
	case len(ip) != net.IPv6len || prefix < 0 || prefix > 128:
		return nil, 0, false
	case ip.To4() == nil:
		return ip, prefix, true
	case prefix < 96:
		return nil, 0, false
	}
	return ip.To4(), prefix - 96, true
}

// Address refuses an address unless one allow_address range contains all
// of it: the network addr/prefix installs, the peer's network (the kernel
// routes peer/prefix) and the broadcast address. peer and brd may be nil.
// IPv4-mapped IPv6 addresses are normalized to IPv4 first.
func (p *Policy) Address(addr net.IP, prefix int, peer, brd net.IP) error {
	if p == nil || len(p.Addresses) == 0 {
		return nil
	}
	a, ap, ok := Normalize(addr, prefix)
	if !ok {
		return fmt.Errorf("%w: address %s/%d is malformed", ErrDenied, addr, prefix)
	}
	var nets []*net.IPNet
	nets = append(nets, netOf(a, ap))
	if peer != nil {
		pp, _, ok := Normalize(peer, 8*len(peer))
		if !ok || len(pp) != len(a) {
			return fmt.Errorf("%w: peer %s does not match %s", ErrDenied, peer, addr)
		}
		nets = append(nets, netOf(pp, ap))
	}
	if brd != nil {
		b, bp, ok := Normalize(brd, 8*len(brd))
		if !ok || len(b) != len(a) {
			return fmt.Errorf("%w: broadcast %s does not match %s", ErrDenied, brd, addr)
		}
		nets = append(nets, netOf(b, bp))
	}
	for _, r := range p.Addresses {
		if containsAll(r, nets) {
			return nil
		}
	}
	return fmt.Errorf("%w: %v outside allow_address", ErrDenied, nets)
}

func netOf(ip net.IP, prefix int) *net.IPNet {
	m := net.CIDRMask(prefix, 8*len(ip))
	return &net.IPNet{IP: ip.Mask(m), Mask: m}
}

// containsAll reports whether every network in nets lies inside r.
func containsAll(r *net.IPNet, nets []*net.IPNet) bool {
	rones, rbits := r.Mask.Size()
	for _, n := range nets {
		ones, bits := n.Mask.Size()
		if bits != rbits || ones < rones || !r.Contains(n.IP) {
			return false
		}
	}
	return true
}

// Operation refuses persist, owner or group unless allowed.
func (p *Policy) Operation(op string) error {
	if p == nil {
		return nil
	}
	allowed := map[string]bool{"persist": p.Persist, "owner": p.Owner, "group": p.Group}
	if a, known := allowed[op]; known && !a {
		return fmt.Errorf("%w: %s not allowed", ErrDenied, op)
	}
	return nil
}

// namespace refuses a namespace path no allow_netns pattern matches.
func (p *Policy) namespace(ns string) error {
	for _, pat := range p.Netns {
		if m, _ := path.Match(pat, ns); m {
			return nil
		}
	}
	return fmt.Errorf("%w: namespace %q matches no allow_netns", ErrDenied, ns)
}

// Set is every policy in force: each must allow an action. The empty Set
// allows everything except network namespaces, which only the
// administrator's policy can allow (see Namespace).
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

// CheckCount applies each policy's device limit (see Policy.CheckCount).
func (s Set) CheckCount(existing func(prefix string) (int, error), opened bool) error {
	for _, p := range s {
		if err := p.CheckCount(existing, opened); err != nil {
			return err
		}
	}
	return nil
}

// Address refuses an address any policy refuses (see Policy.Address).
func (s Set) Address(addr net.IP, prefix int, peer, brd net.IP) error {
	for _, p := range s {
		if err := p.Address(addr, prefix, peer, brd); err != nil {
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

// Namespace refuses the network namespace path ns unless the
// administrator's policy (System) is in force and every policy has an
// allow_netns pattern matching it. ns must be absolute and clean (no "..",
// "//" or trailing "/"), so that a pattern means the path it names.
func (s Set) Namespace(ns string) error {
	if !strings.HasPrefix(ns, "/") || path.Clean(ns) != ns {
		return fmt.Errorf("%w: namespace path %q is not clean and absolute", ErrDenied, ns)
	}
	if !s.NamespacesPossible() {
		return fmt.Errorf("%w: no allow_netns in the administrator's policy", ErrDenied)
	}
	for _, p := range s {
		if err := p.namespace(ns); err != nil {
			return err
		}
	}
	return nil
}

// NamespacesPossible reports whether some namespace could be allowed: the
// administrator's policy is in force and every policy names at least one.
func (s Set) NamespacesPossible() bool {
	system := false
	for _, p := range s {
		if len(p.Netns) == 0 {
			return false
		}
		system = system || p.System
	}
	return system
}
