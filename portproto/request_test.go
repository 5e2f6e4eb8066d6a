package portproto

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/tunctl/tunctl/etf"
)

func encode(t *testing.T, term etf.Term) []byte {
	t.Helper()
	b, err := etf.Encode(term)
	assert.NoError(t, err)
	return b
}

// Every request shape decodes once into its typed values.
func TestDecodeRequest(t *testing.T) {
	r := decodeRequest(AppendSendFrame(nil, 7, []byte("pkt")))
	assert.Equal(t, reqSend, r.kind)
	assert.EqualValues(t, 7, r.ref)
	assert.Equal(t, "pkt", string(r.pkt))

	r = decodeRequest(encode(t, etf.Tuple(atom("send"), 7, []byte("generic"))))
	assert.Equal(t, reqSend, r.kind)
	assert.Equal(t, "generic", string(r.pkt))

	r = decodeRequest(AppendSendvFrame(nil, 3, []byte("a"), []byte("bc")))
	assert.Equal(t, reqSendv, r.kind)
	assert.EqualValues(t, 3, r.ref)
	assert.Equal(t, 2, r.n)

	r = decodeRequest(encode(t, etf.Tuple(atom("sendv"), 3, etf.List([]byte("x")))))
	assert.Equal(t, reqSendv, r.kind)
	assert.Equal(t, [][]byte{[]byte("x")}, r.pkts)

	r = decodeRequest(encode(t, etf.Tuple(atom("call"), 9, etf.Tuple(atom("close"), 1))))
	assert.Equal(t, reqCall, r.kind)
	assert.Equal(t, "close", r.name)
	assert.Len(t, r.args, 1)

	r = decodeRequest(encode(t, etf.Tuple(atom("call"), 9, atom("stats"))))
	assert.Equal(t, "stats", r.name)
	assert.Empty(t, r.args)

	r = decodeRequest(encode(t, etf.Tuple(atom("call"), 9, 42)))
	assert.Equal(t, reqCall, r.kind)
	assert.Equal(t, "", r.name, "not a command: unknown (badcmd reply)")

	for limit, want := range map[any]request{
		true:  {kind: reqActive, ref: 2, unlimited: true},
		false: {kind: reqActive, ref: 2, stop: true},
		5:     {kind: reqActive, ref: 2, limit: 5},
	} {
		assert.Equal(t, want, decodeRequest(encode(t, etf.Tuple(atom("active"), 2, limit))), limit)
	}
}

func TestDecodeRequestInvalid(t *testing.T) {
	for name, c := range map[string]struct {
		frame  []byte
		reason string
	}{
		"not ETF":             {[]byte("garbage"), "badetf"},
		"unknown request":     {encode(t, etf.Tuple(atom("hello"), 1)), "badcmd"},
		"call without int id": {encode(t, etf.Tuple(atom("call"), atom("x"), atom("stats"))), "badcmd"},
		"send to a bad ref":   {encode(t, etf.Tuple(atom("send"), 0, []byte("p"))), "badcmd"},
		"sendv of non-binary": {encode(t, etf.Tuple(atom("sendv"), 1, etf.List(1))), "badcmd"},
		"active bad limit":    {encode(t, etf.Tuple(atom("active"), 1, -1)), "badarg"},
		"active bad ref":      {encode(t, etf.Tuple(atom("active"), 1<<31, true)), "badarg"},
	} {
		r := decodeRequest(c.frame)
		assert.Equal(t, reqInvalid, r.kind, name)
		assert.Equal(t, c.reason, r.reason, name)
	}
}
