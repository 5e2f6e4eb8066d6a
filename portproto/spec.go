package portproto

import (
	"fmt"
	"sort"

	"github.com/tunctl/tunctl/device"
)

// The protocol's vocabulary is declared once, in this package: the command
// table (commandTable in table.go), the frames below, the device flags
// (FlagNames), filter rules (namedRules), offloads (OffloadNames),
// capabilities and the limits. `make generate` (cmd/tunctl_gen) renders it
// into the tables of doc/protocol.md and into erlang/include/tunctl_proto.hrl,
// and TestGeneratedFilesCurrent fails when either is stale.

// Limits checked by the port (the trust boundary). The Erlang side checks
// shapes and gets the few limits it applies early (name length, packet size,
// handle range, filter rule ranges) from the generated header.
const (
	// MaxRef is the largest device handle (Ref); handles are positive.
	MaxRef = 1<<31 - 1
	// MaxNameLen is the longest interface name, in bytes (IFNAMSIZ - 1).
	MaxNameLen = device.MaxNameLen
	// MinMTU and MaxMTU bound {mtu, N} in link_set (the kernel may refuse
	// more: a TUN/TAP device's maximum is 65535).
	MinMTU = 1
	MaxMTU = 1 << 20
	// MaxPathLen bounds the path of netns.
	MaxPathLen = 4096
	// MaxEtherType and MaxIPProto bound the numbered filter rules.
	MaxEtherType = 0xffff
	MaxIPProto   = 0xff
)

// A Term documents one term of the protocol, {Name, Args...}. Doc is
// Markdown; the placeholders of Placeholders expand in it.
type Term struct {
	Name string
	Args []string
	Doc  string
}

// PortFrames are the frames the port sends (doc/protocol.md, "Port → BEAM").
var PortFrames = []Term{
	{"tunctl_port", args("Version", "Caps"),
		"first frame after start. `Version` is `{{version}}`; `Caps` is a list of atoms ({{capabilities}}). The Erlang side refuses any other version with `{error, {version_mismatch, Got, Want}}`."},
	{"reply", args("Id", "Result"),
		"answer to `{call, Id, Cmd}`. `Result` is `ok`, `{ok, Term}` or `{error, Reason}`; `Reason` is a posix atom (`eperm`, `ebusy`, `einval`, ...) or one of the protocol reasons below."},
	{"tuntap", args("Ref", "Packet"),
		"a packet read from device `Ref` (only while the device has credit, see `active`)."},
	{"tuntap_batch", args("Ref", "[Packet, ...]"),
		"instead of `tuntap` frames once `{deliver, Ref, batch}` was called: the packets read from device `Ref` in one poll round, oldest first, at least 1 and at most {{max_batch}}, within the device's credit."},
	{"tuntap_error", args("Ref", "Posix"),
		"an asynchronous error on device `Ref`: a failed `send` write."},
	{"tuntap_read_error", args("Ref", "Posix"),
		"reading device `Ref` failed (for example `ebadfd` once the interface was deleted from outside); the port stops polling it. The Erlang side reports it to the owner as `{tuntap_error, Dev, Posix}` and fails waiting `recv/3` calls with it."},
	{"tunctl_error", args("Reason"),
		"a frame that could not be answered with a `reply` (no `Id` could be read from it)."},
}

// BEAMFrames are the requests the port reads (doc/protocol.md, "BEAM →
// port"): commands travel inside call.
var BEAMFrames = []Term{
	{"call", args("Id", "Cmd"),
		"`{reply, Id, Result}`. `Id` is a non-negative integer."},
	{"send", args("Ref", "Packet"),
		"none. `Packet` is written to the device; a failure is reported as `{tuntap_error, Ref, Posix}`. The packets of consecutive `send` and `sendv` frames for one device are written together, before the next other frame is handled: on a TUN device the port created (`tun`, `no_pi`, one queue, no `vnet_hdr`), runs of UDP datagrams of one flow become one UDP GSO super-packet, one `write(2)` that the kernel splits back into the same datagrams (doc/design.md); every other packet is its own `write(2)`."},
	{"sendv", args("Ref", "[Packet, ...]"),
		"none. The same as one `send` per packet, in order; the Erlang side uses it when several sends are queued at once. A malformed batch is refused whole (`{tunctl_error, badcmd}`)."},
	{"active", args("Ref", "Limit"),
		"none. `Limit` is `true` (read without limit), or an integer: the port reads packets from the device only while the number of packets it has sent for that device (in `tuntap` and `tuntap_batch` frames) is below `Limit`. `false` means \"stop now\" (same as a limit equal to the number already sent). A new device starts with limit 0 (passive)."},
}

// InputErrors are the answers to bad input, after which the port keeps
// serving (doc/protocol.md, "Errors that keep the port serving").
var InputErrors = [][2]string{
	{"a frame that is not ETF, is truncated, or uses unsupported tags", "`{tunctl_error, badetf}`"},
	{"a term that is not one of the three request shapes", "`{tunctl_error, badcmd}`"},
	{"an `active` request with a bad `Ref` or limit", "`{tunctl_error, badarg}`"},
	{"a frame longer than {{max_frame}} (it is skipped)", "`{tunctl_error, emsgsize}`"},
	{"`{call, Id, Cmd}` with an unknown command", "`{reply, Id, {error, badcmd}}`"},
	{"`{call, Id, Cmd}` with a known command of wrong arity or types", "`{reply, Id, {error, badarg}}`"},
	{"a `send` packet larger than {{max_packet}}", "`{tuntap_error, Ref, emsgsize}`"},
}

// A Rule is one row of doc/protocol.md's "Vocabulary and limits": where a
// rule is defined in Go and, when the Erlang side uses it, the macro of the
// generated header.
type Rule struct {
	What, Value, Go, Erlang string
}

// Rules lists the protocol's vocabulary and limits.
func Rules() []Rule {
	return []Rule{
		{"protocol version", fmt.Sprint(Version), "`Version`", "`?TUNCTL_PROTO_VERSION`"},
		{"capabilities (`tunctl_port` frame)", atoms(Capabilities), "`Capabilities`", "`?TUNCTL_CAPABILITIES`"},
		{"commands and arities", "the Commands table", "`commandTable`", "`?TUNCTL_COMMANDS`"},
		{"device flags (`open`)", atoms(FlagList()), "`FlagNames`", "`?TUNCTL_DEVICE_FLAGS`"},
		{"named filter rules (`filter`)", atoms(FilterRuleNames()), "`namedRules`", "`?TUNCTL_FILTER_RULES`"},
		{"numbered filter rules", fmt.Sprintf("`{ethertype, 0..%d}`, `{ip_proto, 0..%d}`", MaxEtherType, MaxIPProto),
			"`MaxEtherType`, `MaxIPProto`", "`?TUNCTL_MAX_ETHERTYPE`, `?TUNCTL_MAX_IP_PROTO`"},
		{"offloads (`offload`)", atoms(OffloadList()), "`OffloadNames`", "`?TUNCTL_OFFLOADS`"},
		{"device handle `Ref`", fmt.Sprintf("1..%d", MaxRef), "`MaxRef`", "`?TUNCTL_MAX_REF`"},
		{"interface name", fmt.Sprintf("at most %d bytes", MaxNameLen), "`MaxNameLen`", "`?TUNCTL_MAX_NAME_LEN`"},
		{"prefix length", "0..32 (IPv4), 0..128 (IPv6)", "`argPrefix` (the address's bits)", "none (`tunctl_opts` checks against the address's bits)"},
		{"MTU (`link_set`)", fmt.Sprintf("%d..%d (the kernel refuses more than a device's maximum, 65535 for TUN/TAP)", MinMTU, MaxMTU), "`MinMTU`, `MaxMTU`", "none"},
		{"packet (`send`, `sendv`)", fmt.Sprintf("at most %d bytes (65535 + 16 of headers)", MaxPacket), "`MaxPacket`", "`?TUNCTL_MAX_PACKET`"},
		{"frame", fmt.Sprintf("at most %d bytes (%d KiB)", MaxFrame, MaxFrame>>10), "`MaxFrame`", "`?TUNCTL_MAX_FRAME`"},
		{"`tuntap_batch` size", fmt.Sprintf("at most %d packets", readBurst), "`readBurst`", "`?TUNCTL_MAX_BATCH`"},
		{"`netns` path", fmt.Sprintf("1..%d bytes", MaxPathLen), "`MaxPathLen`", "none"},
	}
}

// Placeholders are the names that expand in the Doc of a Term.
func Placeholders() map[string]string {
	return map[string]string{
		"version":      fmt.Sprint(Version),
		"capabilities": atoms(Capabilities),
		"flags":        atoms(FlagList()),
		"filter_rules": atoms(FilterRuleNames()),
		"offloads":     atoms(OffloadList()),
		"max_packet":   fmt.Sprintf("%d bytes (65535 + 16 of headers)", MaxPacket),
		"max_frame":    fmt.Sprintf("%d KiB", MaxFrame>>10),
		"max_name":     fmt.Sprint(MaxNameLen),
		"max_batch":    fmt.Sprint(readBurst),
	}
}

func args(a ...string) []string { return a }

// atoms formats names as a Markdown list of atoms: `a`, `b`.
func atoms(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += "`" + n + "`"
	}
	return s
}

// FlagList returns the device flag atoms (FlagNames), by IFF_* value.
func FlagList() []string {
	return sortedBy(FlagNames, func(a, b uint16) bool { return a < b })
}

// OffloadList returns the offload atoms (OffloadNames), by TUN_F_* value.
func OffloadList() []string {
	return sortedBy(OffloadNames, func(a, b uint) bool { return a < b })
}

// FilterRuleNames returns the named filter rules: EtherTypes, then IP
// protocols, each by number.
func FilterRuleNames() []string {
	key := func(name string) int {
		r := namedRules[name]
		if r.ipProto >= 0 {
			return 1<<16 + r.ipProto
		}
		return int(r.etherType)
	}
	names := make([]string, 0, len(namedRules))
	for n := range namedRules {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return key(names[i]) < key(names[j]) })
	return names
}

func sortedBy[V any](m map[string]V, less func(a, b V) bool) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if less(m[names[i]], m[names[j]]) || less(m[names[j]], m[names[i]]) {
			return less(m[names[i]], m[names[j]])
		}
		return names[i] < names[j]
	})
	return names
}
