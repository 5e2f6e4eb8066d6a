package etf

import (
	"fmt"
	"math/big"

	erlang "github.com/okeuday/erlang_go/v2/erlang"
)

// Term is a decoded Erlang term, as github.com/okeuday/erlang_go represents it.
type Term = interface{}

// Atom builds an atom term.
func Atom(name string) Term { return erlang.OtpErlangAtom(name) }

// Tuple builds a tuple term.
func Tuple(elems ...Term) Term { return erlang.OtpErlangTuple(elems) }

// List builds a proper list term.
func List(elems ...Term) Term { return erlang.OtpErlangList{Value: elems} }

// Decode validates frame and decodes it into a Term. It never panics.
func Decode(frame []byte) (t Term, err error) {
	if err := Validate(frame); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: %v", ErrBadETF, r)
		}
	}()
	t, err = erlang.BinaryToTerm(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadETF, err)
	}
	return t, nil
}

// Encode encodes t with the external term format version byte.
func Encode(t Term) ([]byte, error) {
	return erlang.TermToBinary(t, -1)
}

// AsAtom returns the name of an atom term (either atom encoding). erlang_go
// decodes the atoms true and false as Go booleans and undefined as nil; they
// are atoms here too.
func AsAtom(t Term) (string, bool) {
	switch a := t.(type) {
	case bool:
		if a {
			return "true", true
		}
		return "false", true
	case nil:
		return "undefined", true
	case erlang.OtpErlangAtom:
		return string(a), true
	case erlang.OtpErlangAtomUTF8:
		return string(a), true
	}
	return "", false
}

// AsInt returns the value of an integer term that fits an int64.
func AsInt(t Term) (int64, bool) {
	switch v := t.(type) {
	case uint8:
		return int64(v), true
	case int32:
		return int64(v), true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}

// AsBool returns the value of the atoms true and false.
func AsBool(t Term) (bool, bool) {
	switch a, _ := AsAtom(t); a {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// AsBinary returns the bytes of a binary term (whole bytes only).
func AsBinary(t Term) ([]byte, bool) {
	switch b := t.(type) {
	case erlang.OtpErlangBinary:
		if b.Bits != 8 {
			return nil, false
		}
		return b.Value, true
	case []byte:
		return b, true
	}
	return nil, false
}

// AsTuple returns the elements of a tuple term.
func AsTuple(t Term) ([]Term, bool) {
	tu, ok := t.(erlang.OtpErlangTuple)
	return tu, ok
}

// AsList returns the elements of a proper list term. A STRING_EXT (a list of
// small integers, as Erlang encodes "abc") is returned as integer elements.
func AsList(t Term) ([]Term, bool) {
	switch l := t.(type) {
	case erlang.OtpErlangList:
		if l.Improper {
			return nil, false
		}
		return l.Value, true
	case string:
		out := make([]Term, len(l))
		for i := 0; i < len(l); i++ {
			out[i] = l[i]
		}
		return out, true
	}
	return nil, false
}

// TaggedTuple matches {Tag, ...} with exactly arity elements, returning them.
func TaggedTuple(t Term, tag string, arity int) ([]Term, bool) {
	tu, ok := AsTuple(t)
	if !ok || len(tu) != arity {
		return nil, false
	}
	if a, ok := AsAtom(tu[0]); !ok || a != tag {
		return nil, false
	}
	return tu, true
}

// TaggedTupleOK reports whether t is {ok, _}.
func TaggedTupleOK(t Term) bool {
	_, ok := TaggedTuple(t, "ok", 2)
	return ok
}

// Uint builds an integer term from a counter, as a small integer when it
// fits and a bignum otherwise.
func Uint(v uint64) Term {
	if v <= 1<<31-1 {
		return int(v)
	}
	return new(big.Int).SetUint64(v)
}
