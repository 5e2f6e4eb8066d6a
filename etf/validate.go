package etf

import (
	"encoding/binary"
	"errors"
)

// ETF tags accepted by Validate. Anything else (compressed terms, pids,
// funs, floats, maps, ...) is refused: the protocol never uses them.
const (
	tagVersion        = 131
	tagSmallInteger   = 97
	tagInteger        = 98
	tagAtom           = 100
	tagSmallTuple     = 104
	tagLargeTuple     = 105
	tagNil            = 106
	tagString         = 107
	tagList           = 108
	tagBinary         = 109
	tagSmallBig       = 110
	tagSmallAtom      = 115
	tagAtomUTF8       = 118
	tagSmallAtomUTF8  = 119
	maxDepth          = 32
	maxAtomLen        = 255
	maxSmallBigDigits = 8
)

// Tags of the External Term Format used by the hand-built data-path
// frames (portproto/frames.go).
const (
	TagBinary        = tagBinary
	TagInteger       = tagInteger
	TagList          = tagList
	TagNil           = tagNil
	TagSmallAtomUTF8 = tagSmallAtomUTF8
	TagSmallTuple    = tagSmallTuple
	TagVersion       = tagVersion
)

// ErrBadETF is returned for input that is not a complete, supported ETF term.
var ErrBadETF = errors.New("etf: malformed or unsupported term")

// Validate checks that b holds exactly one ETF term (version byte included)
// built only from integers, atoms, tuples, lists, strings and binaries, with
// every length field inside the buffer and nesting at most 32 deep.
func Validate(b []byte) error {
	if len(b) < 2 || b[0] != tagVersion {
		return ErrBadETF
	}
	n, err := validateTerm(b[1:], 0)
	if err != nil {
		return err
	}
	if 1+n != len(b) {
		return ErrBadETF
	}
	return nil
}

// validateTerm returns the encoded size of the term at the start of b.
func validateTerm(b []byte, depth int) (int, error) {
	if depth > maxDepth || len(b) < 1 {
		return 0, ErrBadETF
	}
	switch b[0] {
	case tagSmallInteger:
		return need(b, 2)
	case tagInteger:
		return need(b, 5)
	case tagSmallBig:
		if len(b) < 3 || b[1] > maxSmallBigDigits || b[2] > 1 {
			return 0, ErrBadETF
		}
		return need(b, 3+int(b[1]))
	case tagAtom, tagAtomUTF8:
		if len(b) < 3 {
			return 0, ErrBadETF
		}
		l := int(binary.BigEndian.Uint16(b[1:3]))
		if l > maxAtomLen*4 {
			return 0, ErrBadETF
		}
		return need(b, 3+l)
	case tagSmallAtom, tagSmallAtomUTF8:
		if len(b) < 2 {
			return 0, ErrBadETF
		}
		return need(b, 2+int(b[1]))
	case tagNil:
		return 1, nil
	case tagString:
		if len(b) < 3 {
			return 0, ErrBadETF
		}
		return need(b, 3+int(binary.BigEndian.Uint16(b[1:3])))
	case tagBinary:
		if len(b) < 5 {
			return 0, ErrBadETF
		}
		l := binary.BigEndian.Uint32(b[1:5])
		if uint64(l) > uint64(len(b)-5) {
			return 0, ErrBadETF
		}
		return 5 + int(l), nil
	case tagSmallTuple:
		if len(b) < 2 {
			return 0, ErrBadETF
		}
		return validateSeq(b, 2, int(b[1]), depth)
	case tagLargeTuple:
		if len(b) < 5 {
			return 0, ErrBadETF
		}
		return validateSeq(b, 5, count(b[1:5], len(b)), depth)
	case tagList:
		if len(b) < 5 {
			return 0, ErrBadETF
		}
		// elements plus the tail
		return validateSeq(b, 5, count(b[1:5], len(b))+1, depth)
	}
	return 0, ErrBadETF
}

// count reads a 32-bit element count; a count larger than the bytes left can
// never be satisfied (every term takes at least one byte), so it is clamped
// to a value that fails without allocating.
func count(b []byte, avail int) int {
	c := binary.BigEndian.Uint32(b)
	if uint64(c) > uint64(avail) {
		return avail + 1
	}
	return int(c)
}

func validateSeq(b []byte, off, n, depth int) (int, error) {
	if n > len(b)-off {
		return 0, ErrBadETF
	}
	for i := 0; i < n; i++ {
		m, err := validateTerm(b[off:], depth+1)
		if err != nil {
			return 0, err
		}
		off += m
	}
	return off, nil
}

func need(b []byte, n int) (int, error) {
	if len(b) < n {
		return 0, ErrBadETF
	}
	return n, nil
}
