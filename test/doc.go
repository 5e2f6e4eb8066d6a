// Package test holds integration tests that build the real tunctl_port
// binary and drive it over its real {packet, 4} framing, creating real
// TUN/TAP devices. They must run as root inside a private network namespace
// (make test-go-integration does `unshare --net`); elsewhere they skip, or
// fail when TUNCTL_REQUIRE_NETNS=1. They speak to the binary through
// portproto/porttest's Client, as portproto's unit tests do to a Server.
package test
