package portproto

import (
	"encoding/binary"

	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"golang.org/x/sys/unix"
)

// Stats are a device's counters, kept by the serve loop.
type Stats struct {
	RxPackets, RxBytes uint64 // read from the device and sent to the BEAM
	TxPackets, TxBytes uint64 // written to the device
	Filtered           uint64 // read and dropped by the filter
	RxErrors, TxErrors uint64
}

// Filter is the outgoing filter of a device: packets read from the device
// that match no rule are dropped in the port and never reach the BEAM.
// A nil *Filter lets everything through.
type Filter struct {
	etherTypes []uint16
	ipProtos   []uint8
	// where the packet starts after the headers the device prepends
	pi, vnet int
	tap      bool
}

// Named rules accepted by the filter command, besides {ethertype, N} and
// {ip_proto, N}.
var namedRules = map[string]struct {
	etherType uint16
	ipProto   int
}{
	"ipv4":   {unix.ETH_P_IP, -1},
	"ipv6":   {unix.ETH_P_IPV6, -1},
	"arp":    {unix.ETH_P_ARP, -1},
	"icmp":   {0, unix.IPPROTO_ICMP},
	"icmpv6": {0, unix.IPPROTO_ICMPV6},
	"udp":    {0, unix.IPPROTO_UDP},
	"tcp":    {0, unix.IPPROTO_TCP},
}

// ParseFilter builds a filter for a device with the given IFF_* flags from
// rule terms. An empty list removes the filter.
func ParseFilter(flags uint16, rules []etf.Term) (*Filter, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	f := &Filter{tap: flags&device.FlagTAP != 0}
	if flags&device.FlagNoPI == 0 {
		f.pi = 4
	}
	if flags&device.FlagVnetHdr != 0 {
		f.vnet = 10 // the kernel's default TUNSETVNETHDRSZ
	}
	for _, r := range rules {
		if name, isA := etf.AsAtom(r); isA {
			nr, known := namedRules[name]
			if !known {
				return nil, ErrBadArg
			}
			if nr.ipProto >= 0 {
				f.ipProtos = append(f.ipProtos, uint8(nr.ipProto))
			} else {
				f.etherTypes = append(f.etherTypes, nr.etherType)
			}
			continue
		}
		if v, isN := numberedRule(r, "ethertype", MaxEtherType); isN {
			f.etherTypes = append(f.etherTypes, uint16(v))
			continue
		}
		if v, isN := numberedRule(r, "ip_proto", MaxIPProto); isN {
			f.ipProtos = append(f.ipProtos, uint8(v))
			continue
		}
		return nil, ErrBadArg
	}
	return f, nil
}

// numberedRule matches {tag, N} with 0 <= N <= max.
func numberedRule(r etf.Term, tag string, max int64) (int64, bool) {
	t, isT := etf.TaggedTuple(r, tag, 2)
	if !isT {
		return 0, false
	}
	v, isI := etf.AsInt(t[1])
	return v, isI && v >= 0 && v <= max
}

// Allows reports whether pkt (as read from the device) passes the filter.
// It does not allocate.
func (f *Filter) Allows(pkt []byte) bool {
	if f == nil {
		return true
	}
	var etherType uint16
	var payload []byte
	switch {
	case len(pkt) < f.pi+f.vnet:
		return false
	case f.tap:
		frame := pkt[f.pi+f.vnet:]
		if len(frame) < 14 {
			return false
		}
		etherType, payload = binary.BigEndian.Uint16(frame[12:14]), frame[14:]
	default:
		payload = pkt[f.pi+f.vnet:]
		if f.pi > 0 {
			etherType = binary.BigEndian.Uint16(pkt[2:4])
		} else if len(payload) > 0 {
			switch payload[0] >> 4 {
			case 4:
				etherType = unix.ETH_P_IP
			case 6:
				etherType = unix.ETH_P_IPV6
			}
		}
	}
	for _, e := range f.etherTypes {
		if e == etherType {
			return true
		}
	}
	var proto int = -1
	switch {
	case etherType == unix.ETH_P_IP && len(payload) >= 20:
		proto = int(payload[9])
	case etherType == unix.ETH_P_IPV6 && len(payload) >= 40:
		proto = int(payload[6])
	}
	for _, p := range f.ipProtos {
		if int(p) == proto {
			return true
		}
	}
	return false
}
