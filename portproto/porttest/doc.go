// Package porttest helps tests speak tunctl_port's protocol, as
// wireguard-go's tuntest and mdlayher's nltest do for theirs. It holds what
// portproto's unit tests, the integration tests (test/) and the benchmarks
// share:
//
//   - FakeDev, a TUN device backed by one end of a SOCK_SEQPACKET
//     socketpair (packet boundaries kept, no privilege), and FakeLinks, a
//     link configurator that records its calls;
//   - Client, the BEAM's side of the protocol over any pair of streams (a
//     Server on pipes, or the real binary's stdin and stdout): {packet, 4}
//     framing, calls with their ids, packet and batch frames;
//   - packet helpers (SwapUDP4, IsUDP4To).
//
// It imports neither portproto nor cmd, so portproto's own tests can use it.
package porttest
