// Package portproto is tunctl_port's protocol: the command table, request
// decoding, dispatch to a device, and encoding of replies and events. It owns
// the serve loop that multiplexes the BEAM's stdin pipe and every open
// device on one thread with poll(2), so no packet crosses a goroutine.
//
// The protocol's vocabulary is declared here once (spec.go: frames,
// limits; table.go: the command table, device flags, offloads; filter.go:
// filter rules); doc/protocol.md's tables and the Erlang header
// erlang/include/tunctl_proto.hrl are rendered from it (render.go,
// cmd/tunctl_gen, make generate). frames.go holds the data-path frame
// layouts (canonical send, sendv, tuntap, tuntap_batch), request.go decodes
// each request frame once.
// Devices and link configuration come in through the Device, Opener and
// Links interfaces, so the protocol is testable without privileges.
package portproto
