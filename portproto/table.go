package portproto

import (
	"errors"
	"net"
	"sort"

	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/policy"
	"golang.org/x/sys/unix"
)

// Version is the protocol version announced in the ready handshake.
const Version = 1

// Limits on input. A frame over MaxFrame is skipped and reported; a packet
// over MaxPacket (an IP datagram plus packet-information and virtio-net
// headers) is refused.
const (
	MaxFrame  = 256 << 10
	MaxPacket = 65535 + 16
)

// Capabilities announced in the handshake.
var Capabilities = []string{"tun", "tap", "multi_queue", "vnet_hdr", "netlink", "batch", "offload"}

// Protocol-level error reasons (posix errnos are sent as their lower-case names).
var (
	ErrBadArg = errors.New("badarg")
	ErrBadCmd = errors.New("badcmd")
	ErrBadETF = etf.ErrBadETF
)

// FlagNames maps the option atoms of tuncer:create/2 to IFF_* flags.
var FlagNames = map[string]uint16{
	"tun":         device.FlagTUN,
	"tap":         device.FlagTAP,
	"no_pi":       device.FlagNoPI,
	"one_queue":   device.FlagOneQueue,
	"multi_queue": device.FlagMultiQueue,
	"vnet_hdr":    device.FlagVnetHdr,
	"tun_excl":    device.FlagTunExcl,
}

// A handler runs one command with its arguments (the tuple's elements after
// the command name) and returns the result term (ok or {ok, X}).
type handler func(s *Server, args []etf.Term) (etf.Term, error)

type command struct {
	arity int // number of arguments after the name
	run   handler
}

// devHandler runs a command whose first argument is a device handle; it
// gets the device and the remaining arguments.
type devHandler func(s *Server, d *devState, args []etf.Term) (etf.Term, error)

// onDevice resolves the handle (ebadf when unknown) before running h.
func onDevice(h devHandler) handler {
	return func(s *Server, a []etf.Term) (etf.Term, error) {
		d, err := s.argDevice(a[0])
		if err != nil {
			return nil, err
		}
		return h(s, d, a[1:])
	}
}

// onOwnDevice is onDevice for commands that change the device: the
// device must still be the caller's (Device.Verify) when they run, or they
// answer eperm.
func onOwnDevice(h devHandler) handler {
	return onDevice(func(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
		if err := d.Verify(); err != nil {
			return nil, err
		}
		return h(s, d, a)
	})
}

// commandTable is the protocol's command list, in the order of
// doc/protocol.md's "Commands" table (rendered from it by make generate):
// each command's term, its documentation, and its handler. Its arity is the
// number of Args.
var commandTable = []commandRow{
	{Term{"open", args("Ref", "Name", "Flags"),
		"`{ok, {DevName, FlagsInt}}`. `Name` is a binary (`<<>>`: the kernel picks); `Flags` a list of {{flags}}. A new device's owner is the port's real uid (`TUNSETOWNER`). A name that exists is attached to only when it is a TUN/TAP device the caller may use (root, or its owner/group match the caller: doc/security.md), else `eperm`; with `tun_excl`, `ebusy`. Errors: `einval` (name longer than {{max_name}} bytes, both or neither of tun/tap), `badarg` (unknown flag), `eexist` (`Ref` in use), `eacces` (policy: name, `max_devices`), kernel errno."},
		cmdOpen},
	{Term{"close", args("Ref"),
		"`ok`; the fd is closed (a non-persistent device disappears)."},
		onDevice(cmdClose)},
	{Term{"read", args("Ref", "Size"),
		"`{ok, Packet}` (at most `Size` bytes, like `read(2)`), or `{error, eagain}` when nothing is queued, or when the device's filter dropped 64 packets in a row (more may be queued: call again). Never blocks."},
		onDevice(cmdRead)},
	{Term{"addr_add", args("Ref", "Addr", "PrefixLen", "Opts"),
		"`ok`. `Addr` is a 4- or 16-byte binary (an IPv4-mapped IPv6 address is taken as IPv4, its prefix less 96); `Opts` a list of `{broadcast, Addr4}`, `{peer, Addr}`. Under `allow_address`, the network `Addr/PrefixLen`, the peer's network and the broadcast address must lie in one allowed range (`eacces`)."},
		onOwnDevice(cmdAddrAdd)},
	{Term{"addr_del", args("Ref", "Addr", "PrefixLen"),
		"`ok`."},
		onOwnDevice(cmdAddrDel)},
	{Term{"link_set", args("Ref", "Opts"),
		"`ok`. `Opts` a list of `{up, boolean()}`, `{mtu, N}`."},
		onOwnDevice(cmdLinkSet)},
	{Term{"link_info", args("Ref"),
		"`{ok, [{name, Bin}, {index, N}, {mtu, N}, {up, boolean()}]}`"},
		onDevice(cmdLinkInfo)},
	{Term{"persist", args("Ref", "Bool"),
		"`ok` (`TUNSETPERSIST`)."},
		onOwnDevice(cmdPersist)},
	{Term{"owner", args("Ref", "Uid"),
		"`ok` (`TUNSETOWNER`)."},
		onOwnDevice(cmdOwner)},
	{Term{"group", args("Ref", "Gid"),
		"`ok` (`TUNSETGROUP`)."},
		onOwnDevice(cmdGroup)},
	{Term{"netns", args("Path"),
		"`ok`: the port moves into the network namespace at `Path` (`/run/netns/NAME`, `/proc/PID/ns/net`); devices opened afterwards live there, and configuration applies there. Only before the first `open` (`ebusy` after). `eacces` unless the administrator's policy has an `allow_netns` pattern matching `Path` (a clean absolute path), and every other policy in force too; `einval` when `Path` is not a namespace file (checked without blocking). Needs `CAP_SYS_ADMIN`, which the port keeps only when started with `-allow-netns` and the administrator's policy names namespaces, and drops once the namespace is entered: `eperm` otherwise (and for a second `netns`)."},
		cmdNetns},
	{Term{"filter", args("Ref", "Rules"),
		"`ok`. Packets read from the device that match no rule are dropped in the port (counted as `filtered`). `Rules`: a list of {{filter_rules}}, `{ethertype, N}`, `{ip_proto, N}`; `[]` removes the filter. IP protocol rules look at the IPv4 protocol / IPv6 next header field (no extension-header walk)."},
		onDevice(cmdFilter)},
	{Term{"deliver", args("Ref", "Mode"),
		"`ok`. `Mode` `packet` (the default): one `{tuntap, Ref, Packet}` frame per packet; `batch`: one `{tuntap_batch, Ref, Packets}` frame per poll round."},
		onDevice(cmdDeliver)},
	{Term{"offload", args("Ref", "Offloads"),
		"`ok` (`TUNSETOFFLOAD`). `Offloads` a list of {{offloads}} (`[]`: none): the kernel may then hand over (and accepts) packets with partial checksums and GSO super-packets of up to 64 KiB, each described by the `virtio_net_hdr` in front of it. `einval` unless the device was opened with `vnet_hdr` and, when any offload is asked for, `csum` is among them; the kernel refuses flags it does not know (`uso4`/`uso6` before Linux 6.2) with `einval`."},
		onOwnDevice(cmdOffload)},
	{Term{"stats", args("Ref"),
		"`{ok, [{rx_packets, N}, {rx_bytes, N}, {tx_packets, N}, {tx_bytes, N}, {filtered, N}, {rx_errors, N}, {tx_errors, N}]}`; rx is device → BEAM, tx is BEAM → device."},
		onDevice(cmdStats)},
	{Term{"addr_set", args("Ref", "Addr", "PrefixLen"),
		"`ok`. Sets the primary address as msantos/tunctl 1.0's `up/2,3` did. IPv4: `SIOCSIFADDR`: the kernel replaces the first IPv4 address of the interface (or adds one), so the same address again is `ok` and a new one replaces the old; then the address just set gets `PrefixLen` over rtnetlink (1.0's `SIOCSIFNETMASK` changed the interface's first address instead); the broadcast address is the kernel's (classful default, recomputed for the prefix when below 31, as `SIOCSIFNETMASK` does; none on a TUN link). IPv6: the address is added; already present is `ok`. The policy's address rules apply."},
		onOwnDevice(cmdAddrSet)},
	{Term{"addr_list", args("Ref"),
		"`{ok, [{Addr, PrefixLen, Opts}]}`, the kernel's addresses of the interface, primary IPv4 first; `Opts` as `addr_add`'s (`{peer, Addr}`, `{broadcast, Addr4}`)."},
		onDevice(cmdAddrList)},
	{Term{"dstaddr", args("Ref", "Addr4"),
		"`ok`: the point-to-point peer of the primary IPv4 address (`SIOCSIFDSTADDR`). The policy's address rules apply to the peer."},
		onOwnDevice(cmdDstaddr)},
	{Term{"broadcast", args("Ref", "Addr4"),
		"`ok`: the broadcast address of the primary IPv4 address (`SIOCSIFBRDADDR`)."},
		onOwnDevice(cmdBroadcast)},
	{Term{"ioctl", args("Ref", "Request", "Arg"),
		"`ok`. One request of msantos/tunctl 1.0's `include/tuntap.hrl` (`TUNSETNOCSUM` ... `TUNSETSNDBUF`) on the device; `Arg` an integer or a binary (at most 4096 bytes, copied into a buffer at least as large as the kernel's structure). `TUNSETPERSIST`, `TUNSETOWNER`, `TUNSETGROUP` are subject to the policy as `persist`, `owner`, `group`. Any other request: `eperm`."},
		onOwnDevice(cmdIoctl)},
	{Term{"relay_listen", args("Ref"),
		"`{ok, Name}`: the port listens on a fresh random abstract `AF_UNIX` `SOCK_SEQPACKET` address `Name` (a binary starting with a NUL byte) in the network namespace it started in. `ebusy` when the device already has a relay."},
		onDevice(cmdRelayListen)},
	{Term{"relay_accept", args("Ref", "Nonce"),
		"`ok`. Of the connections queued on `Name`, the port keeps the descriptor carried by the one whose first message is exactly `Nonce` (16 to 64 bytes) with one `SOCK_SEQPACKET` socket attached, and closes every other connection and descriptor (`eacces` when none carried it). From then on each message received on that socket is written to the device, and, while forwarding is on (`relay`), each packet read from the device while the owner has no credit becomes one message on it. `getfd/1` is built on this (doc/design.md)."},
		onDevice(cmdRelayAccept)},
	{Term{"relay", args("Ref", "Bool"),
		"`ok`: device → socket forwarding on or off (off after `relay_accept`); while off, packets the owner does not take stay in the device. The Erlang side turns it on while a port is open on its end. `einval` without a relay."},
		onDevice(cmdRelay)},
}

// A commandRow is a row of the command table.
type commandRow struct {
	Term
	run handler
}

// commands indexes commandTable by name, for dispatch.
var commands = func() map[string]command {
	m := make(map[string]command, len(commandTable))
	for _, c := range commandTable {
		m[c.Name] = command{len(c.Args), c.run}
	}
	return m
}()

// CommandTable returns the command table's terms, in order.
func CommandTable() []Term {
	t := make([]Term, len(commandTable))
	for i, c := range commandTable {
		t[i] = c.Term
	}
	return t
}

// Commands lists the command names of the protocol table, sorted.
func Commands() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var ok = etf.Atom("ok")

func okWith(t etf.Term) etf.Term { return etf.Tuple(ok, t) }

func cmdOpen(s *Server, a []etf.Term) (etf.Term, error) {
	ref, err := argRef(a[0])
	if err != nil {
		return nil, err
	}
	name, isBin := etf.AsBinary(a[1])
	if !isBin {
		return nil, ErrBadArg
	}
	flags, err := argFlags(a[2])
	if err != nil {
		return nil, err
	}
	d, err := s.openDevice(ref, string(name), flags)
	if err != nil {
		return nil, err
	}
	return okWith(etf.Tuple([]byte(d.Name()), int(d.Flags()))), nil
}

func cmdClose(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	return ok, s.closeDevice(d)
}

func cmdRead(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	size, okInt := etf.AsInt(a[0])
	if !okInt || size < 0 {
		return nil, ErrBadArg
	}
	pkt, err := s.readOne(d)
	if err != nil {
		return nil, err
	}
	if int64(len(pkt)) > size {
		pkt = pkt[:size]
	}
	return okWith(pkt), nil
}

func cmdAddrAdd(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	addr, prefix, err := argPrefix(a[0], a[1])
	if err != nil {
		return nil, err
	}
	opts, okList := etf.AsList(a[2])
	if !okList {
		return nil, ErrBadArg
	}
	var brd, peer net.IP
	for _, o := range opts {
		if t, isT := etf.TaggedTuple(o, "broadcast", 2); isT {
			if brd, err = argIP(t[1]); err != nil || len(brd) != net.IPv4len {
				return nil, ErrBadArg
			}
		} else if t, isT := etf.TaggedTuple(o, "peer", 2); isT {
			if peer, err = argIP(t[1]); err != nil {
				return nil, err
			}
			var isIP bool
			if peer, _, isIP = policy.Normalize(peer, 8*len(peer)); !isIP || len(peer) != len(addr) {
				return nil, unix.EINVAL
			}
		} else {
			return nil, ErrBadArg
		}
	}
	if brd != nil && len(addr) != net.IPv4len {
		return nil, unix.EINVAL
	}
	if err := s.policy.Address(addr, prefix, peer, brd); err != nil {
		return nil, s.denied(err)
	}
	return ok, s.links.AddrAdd(d.Name(), addr, prefix, brd, peer)
}

func cmdAddrDel(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	addr, prefix, err := argPrefix(a[0], a[1])
	if err != nil {
		return nil, err
	}
	return ok, s.links.AddrDel(d.Name(), addr, prefix)
}

func cmdLinkSet(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	opts, okList := etf.AsList(a[0])
	if !okList {
		return nil, ErrBadArg
	}
	// Validate everything before changing anything.
	type step func() error
	var steps []step
	for _, o := range opts {
		if t, isT := etf.TaggedTuple(o, "up", 2); isT {
			up, isB := etf.AsBool(t[1])
			if !isB {
				return nil, ErrBadArg
			}
			steps = append(steps, func() error { return s.links.SetUp(d.Name(), up) })
		} else if t, isT := etf.TaggedTuple(o, "mtu", 2); isT {
			mtu, isI := etf.AsInt(t[1])
			if !isI {
				return nil, ErrBadArg
			}
			if mtu < MinMTU || mtu > MaxMTU {
				return nil, unix.EINVAL
			}
			steps = append(steps, func() error { return s.links.SetMTU(d.Name(), int(mtu)) })
		} else {
			return nil, ErrBadArg
		}
	}
	for _, st := range steps {
		if err := st(); err != nil {
			return nil, err
		}
	}
	return ok, nil
}

func cmdLinkInfo(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	li, err := s.links.Info(d.Name())
	if err != nil {
		return nil, err
	}
	return okWith(etf.List(
		etf.Tuple(etf.Atom("name"), []byte(li.Name)),
		etf.Tuple(etf.Atom("index"), li.Index),
		etf.Tuple(etf.Atom("mtu"), li.MTU),
		etf.Tuple(etf.Atom("up"), li.Up),
	)), nil
}

func cmdPersist(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	on, isB := etf.AsBool(a[0])
	if !isB {
		return nil, ErrBadArg
	}
	if err := s.policy.Operation("persist"); err != nil {
		return nil, s.denied(err)
	}
	if err := d.SetPersist(on); err != nil {
		return nil, err
	}
	d.persisted = on
	return ok, nil
}

func cmdOwner(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	return idCommand(s, d, a[0], "owner", Device.SetOwner)
}

func cmdGroup(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	return idCommand(s, d, a[0], "group", Device.SetGroup)
}

func idCommand(s *Server, d *devState, idT etf.Term, op string, set func(Device, int) error) (etf.Term, error) {
	if err := s.policy.Operation(op); err != nil {
		return nil, s.denied(err)
	}
	id, isI := etf.AsInt(idT)
	if !isI || id < -1 || id > 1<<32-1 {
		return nil, ErrBadArg
	}
	return ok, set(d, int(id))
}

// cmdDeliver switches the device's packet frames between one
// {tuntap, Ref, Packet} per packet (packet, the default) and one
// {tuntap_batch, Ref, [Packet, ...]} per poll round (batch).
func cmdDeliver(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	mode, isA := etf.AsAtom(a[0])
	switch {
	case isA && mode == "packet":
		d.batch = nil
	case isA && mode == "batch":
		d.batch = BatchHeader(d.ref)
	default:
		return nil, ErrBadArg
	}
	return ok, nil
}

// OffloadNames maps the atoms of {offload, Ref, [...]} to TUNSETOFFLOAD flags.
var OffloadNames = map[string]uint{
	"csum":    device.OffloadCsum,
	"tso4":    device.OffloadTSO4,
	"tso6":    device.OffloadTSO6,
	"tso_ecn": device.OffloadTSOECN,
	"uso4":    device.OffloadUSO4,
	"uso6":    device.OffloadUSO6,
}

// cmdOffload sets the device's offloads (TUNSETOFFLOAD). They need a
// virtio-net header on every packet (vnet_hdr) and segmentation needs csum:
// einval otherwise, before the kernel is asked.
func cmdOffload(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	l, isL := etf.AsList(a[0])
	if !isL {
		return nil, ErrBadArg
	}
	var flags uint
	for _, o := range l {
		name, isA := etf.AsAtom(o)
		bit, known := OffloadNames[name]
		if !isA || !known {
			return nil, ErrBadArg
		}
		flags |= bit
	}
	if flags != 0 && (d.Flags()&device.FlagVnetHdr == 0 || flags&device.OffloadCsum == 0) {
		return nil, unix.EINVAL
	}
	return ok, d.SetOffload(flags)
}

// argRef decodes a device handle: 1..MaxRef.
func argRef(t etf.Term) (int32, error) {
	v, isI := etf.AsInt(t)
	if !isI || v <= 0 || v > MaxRef {
		return 0, ErrBadArg
	}
	return int32(v), nil
}

func argFlags(t etf.Term) (uint16, error) {
	l, isL := etf.AsList(t)
	if !isL {
		return 0, ErrBadArg
	}
	var flags uint16
	for _, f := range l {
		name, isA := etf.AsAtom(f)
		bit, known := FlagNames[name]
		if !isA || !known {
			return 0, ErrBadArg
		}
		flags |= bit
	}
	return flags, nil
}

func argIP(t etf.Term) (net.IP, error) {
	b, isB := etf.AsBinary(t)
	if !isB {
		return nil, ErrBadArg
	}
	if len(b) != net.IPv4len && len(b) != net.IPv6len {
		return nil, unix.EINVAL
	}
	return net.IP(append([]byte(nil), b...)), nil
}

func argPrefix(addrT, prefixT etf.Term) (net.IP, int, error) {
	addr, err := argIP(addrT)
	if err != nil {
		return nil, 0, err
	}
	p, isI := etf.AsInt(prefixT)
	if !isI {
		return nil, 0, ErrBadArg
	}
	if p < 0 || p > int64(8*len(addr)) {
		return nil, 0, unix.EINVAL
	}
	// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4 to the kernel:
	// make it 4 bytes, its prefix IPv4's, so that what is checked is what
	// is installed.
	addr, prefix, isIP := policy.Normalize(addr, int(p))
	if !isIP {
		return nil, 0, unix.EINVAL
	}
	return addr, prefix, nil
}

func cmdNetns(s *Server, a []etf.Term) (etf.Term, error) {
	path, isB := etf.AsBinary(a[0])
	if !isB || len(path) == 0 || len(path) > MaxPathLen {
		return nil, ErrBadArg
	}
	if err := s.policy.Namespace(string(path)); err != nil {
		return nil, s.denied(err)
	}
	if len(s.order) > 0 {
		return nil, unix.EBUSY
	}
	if s.netns == nil {
		return nil, unix.EPERM
	}
	if s.home < 0 {
		// for relay_listen: the BEAM connects in this namespace
		if fd, err := device.NewRendezvous(); err == nil {
			s.home = fd
		}
	}
	if err := s.netns(string(path)); err != nil {
		return nil, err
	}
	s.entered = true
	return ok, nil
}

func cmdFilter(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	rules, isL := etf.AsList(a[0])
	if !isL {
		return nil, ErrBadArg
	}
	f, err := ParseFilter(d.Flags(), rules)
	if err != nil {
		return nil, err
	}
	d.filter = f
	return ok, nil
}

func cmdStats(s *Server, d *devState, a []etf.Term) (etf.Term, error) {
	st := d.stats
	kv := func(k string, v uint64) etf.Term { return etf.Tuple(etf.Atom(k), etf.Uint(v)) }
	return okWith(etf.List(
		kv("rx_packets", st.RxPackets), kv("rx_bytes", st.RxBytes),
		kv("tx_packets", st.TxPackets), kv("tx_bytes", st.TxBytes),
		kv("filtered", st.Filtered), kv("rx_errors", st.RxErrors), kv("tx_errors", st.TxErrors),
	)), nil
}
