// Package etf encodes and decodes the Erlang External Term Format terms that
// tunctl_port exchanges with the BEAM.
//
// Generic terms go through github.com/okeuday/erlang_go, behind a validator
// that bounds every length field by the bytes actually present, so that a
// hostile or corrupt frame can never make the decoder allocate more than the
// frame's size or recurse without limit. The data-path frames (packets in
// both directions), whose exact byte layout is part of the protocol, are
// built and matched by hand in portproto (frames.go) from the tags this
// package exports.
//
// This package knows term shapes only; it performs no I/O.
package etf
