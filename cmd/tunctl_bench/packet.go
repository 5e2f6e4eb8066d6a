package main

import (
	"encoding/binary"
	"math"
	"slices"
)

const (
	// payloadMagic marks the generator's datagrams, so that stray traffic
	// (and replies the reflector got wrong) is not counted.
	payloadMagic = 0x74756e62 // "tunb"
	// payloadLen is the part of the UDP payload the generator uses:
	// magic, sequence number, send time.
	payloadLen = 4 + 8 + 8
	// udpIPv4Overhead is the IPv4 header plus the UDP header: -size is the
	// length of the IP packet the reflector reads, the UDP payload is
	// udpIPv4Overhead bytes shorter.
	udpIPv4Overhead = 20 + 8
	// minSize is the smallest -size that holds a payload.
	minSize = udpIPv4Overhead + payloadLen
)

// encodePayload writes the magic, seq and the send time ts (nanoseconds
// since the start of the run) at the head of p, which must be at least
// payloadLen bytes long. The rest of p is left as it is.
func encodePayload(p []byte, seq uint64, ts int64) {
	binary.BigEndian.PutUint32(p[0:4], payloadMagic)
	binary.BigEndian.PutUint64(p[4:12], seq)
	binary.BigEndian.PutUint64(p[12:20], uint64(ts))
}

// decodePayload reads what encodePayload wrote. ok is false for a short
// payload or one without the magic.
func decodePayload(p []byte) (seq uint64, ts int64, ok bool) {
	if len(p) < payloadLen || binary.BigEndian.Uint32(p[0:4]) != payloadMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(p[4:12]), int64(binary.BigEndian.Uint64(p[12:20])), true
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order; 0 for an empty slice.
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// nearest rank: the smallest value with at least p% of the samples at
	// or below it
	rank := int(math.Ceil(float64(n) * p / 100))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// percentiles sorts samples in place and returns its p50 and p99.
func percentiles(samples []int64) (p50, p99 int64) {
	slices.Sort(samples)
	return percentile(samples, 50), percentile(samples, 99)
}
