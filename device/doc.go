// Package device owns every system call tunctl_port makes on TUN/TAP devices:
// opening /dev/net/tun with TUNSETIFF, the TUNSET* ioctls, non-blocking reads
// and writes, poll(2), and link/address configuration over rtnetlink.
//
// It knows nothing about Erlang terms; errors are returned wrapped in
// *OpError so that callers can reach the errno with errors.Is / errors.As.
package device
