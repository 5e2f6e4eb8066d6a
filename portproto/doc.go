// Package portproto is tunctl_port's protocol: the command table, request
// decoding, dispatch to a device, and encoding of replies and events. It owns
// the serve loop that multiplexes the BEAM's stdin pipe and every open
// device on one thread with poll(2), so no packet crosses a goroutine.
//
// The wire contract is doc/protocol.md; table.go is its single Go copy.
// Devices and link configuration come in through the Device, Opener and
// Links interfaces, so the protocol is testable without privileges.
package portproto
