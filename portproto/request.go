package portproto

import "github.com/tunctl/tunctl/etf"

// requestKind says which of the protocol's requests (doc/protocol.md,
// "BEAM → port") a frame is.
type requestKind uint8

const (
	reqInvalid requestKind = iota // answered {tunctl_error, request.reason}
	reqSend                       // {send, Ref, Packet}
	reqSendv                      // {sendv, Ref, [Packet, ...]}
	reqCall                       // {call, Id, Cmd}
	reqActive                     // {active, Ref, Limit}
)

// A request is one frame from the BEAM, decoded once into typed values;
// Server.handle dispatches it. It is a plain value: decoding a send or a
// canonical sendv allocates nothing.
type request struct {
	kind   requestKind
	reason string // reqInvalid: badetf, badcmd or badarg

	ref int32  // send, sendv, active
	pkt []byte // send

	// sendv: the packets of a canonical frame, walked with NextPacket
	// (elems, n), or those of a generic one (pkts)
	elems []byte
	n     int
	pkts  [][]byte

	// call: the Id (any integer, echoed) and the command's name and
	// arguments; a Cmd that is not an atom or a tuple led by an atom has
	// the name "" (unknown: badcmd)
	id   etf.Term
	name string
	args []etf.Term

	// active: true (unlimited), false (stop now) or a packet count
	unlimited, stop bool
	limit           uint64
}

func invalid(reason string) request { return request{kind: reqInvalid, reason: reason} }

// decodeRequest decodes a request frame. The data-path frames in their
// canonical encoding take the allocation-free fast paths; anything else is
// decoded generically (and validated: see etf.Decode).
func decodeRequest(frame []byte) request {
	if ref, pkt, isSend := ParseSend(frame); isSend {
		return request{kind: reqSend, ref: ref, pkt: pkt}
	}
	if ref, elems, n, isSendv := ParseSendv(frame); isSendv {
		return request{kind: reqSendv, ref: ref, elems: elems, n: n}
	}
	t, err := etf.Decode(frame)
	if err != nil {
		return invalid("badetf")
	}
	if tu, isT := etf.TaggedTuple(t, "call", 3); isT {
		if _, isI := etf.AsInt(tu[1]); isI {
			name, args := splitCommand(tu[2])
			return request{kind: reqCall, id: tu[1], name: name, args: args}
		}
	} else if tu, isT := etf.TaggedTuple(t, "send", 3); isT {
		ref, rerr := argRef(tu[1])
		pkt, isB := etf.AsBinary(tu[2])
		if rerr == nil && isB {
			return request{kind: reqSend, ref: ref, pkt: pkt}
		}
	} else if tu, isT := etf.TaggedTuple(t, "sendv", 3); isT {
		if r, ok := decodeSendv(tu[1], tu[2]); ok {
			return r
		}
	} else if tu, isT := etf.TaggedTuple(t, "active", 3); isT {
		if r, ok := decodeActive(tu[1], tu[2]); ok {
			return r
		}
		return invalid("badarg")
	}
	return invalid("badcmd")
}

// splitCommand splits a Cmd into its name and arguments.
func splitCommand(cmd etf.Term) (string, []etf.Term) {
	if a, isA := etf.AsAtom(cmd); isA {
		return a, nil
	}
	if tu, isT := etf.AsTuple(cmd); isT && len(tu) > 0 {
		name, _ := etf.AsAtom(tu[0])
		return name, tu[1:]
	}
	return "", nil
}

// decodeSendv decodes a generically encoded batch: all of it is checked
// before any packet is written.
func decodeSendv(refT, listT etf.Term) (request, bool) {
	ref, err := argRef(refT)
	if err != nil {
		return request{}, false
	}
	l, isL := etf.AsList(listT)
	if !isL {
		return request{}, false
	}
	pkts := make([][]byte, len(l))
	for i, e := range l {
		if pkts[i], isL = etf.AsBinary(e); !isL {
			return request{}, false
		}
	}
	return request{kind: reqSendv, ref: ref, pkts: pkts}, true
}

func decodeActive(refT, limitT etf.Term) (request, bool) {
	ref, err := argRef(refT)
	if err != nil {
		return request{}, false
	}
	r := request{kind: reqActive, ref: ref}
	if b, isB := etf.AsBool(limitT); isB {
		r.unlimited, r.stop = b, !b
		return r, true
	}
	n, isI := etf.AsInt(limitT)
	if !isI || n < 0 {
		return request{}, false
	}
	r.limit = uint64(n)
	return r, true
}
