package etf

import (
	"math/big"
	"testing"

	erlang "github.com/okeuday/erlang_go/v2/erlang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Frames produced by OTP 25's term_to_binary/1.
var (
	// {call, 1, {open, 7, <<"tun7">>, [tun, no_pi]}}
	otpOpen = []byte{131, 104, 3, 100, 0, 4, 99, 97, 108, 108, 97, 1, 104, 4, 100, 0, 4, 111, 112, 101, 110, 97, 7, 109, 0, 0, 0, 4, 116, 117, 110, 55, 108, 0, 0, 0, 2, 100, 0, 3, 116, 117, 110, 100, 0, 5, 110, 111, 95, 112, 105, 106}
	// {active, 7, true}
	otpActive = []byte{131, 104, 3, 100, 0, 6, 97, 99, 116, 105, 118, 101, 97, 7, 100, 0, 4, 116, 114, 117, 101}
)

func TestDecodeOTPTerms(t *testing.T) {
	term, err := Decode(otpOpen)
	require.NoError(t, err)
	call, ok := TaggedTuple(term, "call", 3)
	require.True(t, ok)
	id, ok := AsInt(call[1])
	require.True(t, ok)
	assert.EqualValues(t, 1, id)
	open, ok := TaggedTuple(call[2], "open", 4)
	require.True(t, ok)
	name, ok := AsBinary(open[2])
	require.True(t, ok)
	assert.Equal(t, "tun7", string(name))
	flags, ok := AsList(open[3])
	require.True(t, ok)
	require.Len(t, flags, 2)
	f0, _ := AsAtom(flags[0])
	assert.Equal(t, "tun", f0)

	term, err = Decode(otpActive)
	require.NoError(t, err)
	act, ok := TaggedTuple(term, "active", 3)
	require.True(t, ok)
	b, ok := AsBool(act[2])
	assert.True(t, ok && b)
	a, ok := AsAtom(act[2])
	assert.True(t, ok)
	assert.Equal(t, "true", a)
}

func TestAsIntRanges(t *testing.T) {
	for _, v := range []int64{0, 255, 256, -1, 1 << 31, -(1 << 40), 1<<63 - 1} {
		enc, err := Encode(big.NewInt(v))
		require.NoError(t, err)
		term, err := Decode(enc)
		require.NoError(t, err, "value %d", v)
		got, ok := AsInt(term)
		assert.True(t, ok)
		assert.Equal(t, v, got)
	}
	_, ok := AsInt(new(big.Int).Lsh(big.NewInt(1), 70))
	assert.False(t, ok)
	_, ok = AsInt(Atom("x"))
	assert.False(t, ok)
}

func TestAsListString(t *testing.T) {
	// "ab" as STRING_EXT
	term, err := Decode([]byte{131, 107, 0, 2, 'a', 'b'})
	require.NoError(t, err)
	l, ok := AsList(term)
	require.True(t, ok)
	require.Len(t, l, 2)
	v, _ := AsInt(l[0])
	assert.EqualValues(t, 'a', v)
	_, ok = AsList(erlang.OtpErlangList{Value: []interface{}{1}, Improper: true})
	assert.False(t, ok)
}

func TestValidateRejects(t *testing.T) {
	bad := map[string][]byte{
		"empty":             {},
		"no version":        {104, 0},
		"only version":      {131},
		"truncated tuple":   {131, 104, 2, 97, 1},
		"trailing bytes":    {131, 97, 1, 97},
		"huge binary":       {131, 109, 0xff, 0xff, 0xff, 0xff, 1},
		"huge list":         {131, 108, 0xff, 0xff, 0xff, 0xff, 106},
		"huge tuple":        {131, 105, 0x7f, 0xff, 0xff, 0xff},
		"compressed":        {131, 80, 0, 0, 0, 10, 1, 2},
		"float":             append([]byte{131, 99}, make([]byte, 31)...),
		"pid":               {131, 88, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"big bignum":        {131, 110, 200, 0},
		"bad bignum sign":   {131, 110, 1, 7, 1},
		"truncated atom":    {131, 100, 0, 9, 'a'},
		"truncated string":  {131, 107, 0, 9, 'a'},
		"improper tail cut": {131, 108, 0, 0, 0, 1, 97, 1},
	}
	for name, b := range bad {
		_, err := Decode(b)
		assert.ErrorIs(t, err, ErrBadETF, name)
	}
	deep := []byte{131}
	for i := 0; i < 40; i++ {
		deep = append(deep, 104, 1)
	}
	deep = append(deep, 106)
	assert.ErrorIs(t, Validate(deep), ErrBadETF, "nesting")
}

func BenchmarkDecodeCall(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(otpOpen); err != nil {
			b.Fatal(err)
		}
	}
}
