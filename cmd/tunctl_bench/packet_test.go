package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPayloadRoundTrip(t *testing.T) {
	p := make([]byte, 36)
	encodePayload(p, 1<<40+7, -5)
	seq, ts, ok := decodePayload(p)
	require.True(t, ok)
	assert.Equal(t, uint64(1<<40+7), seq)
	assert.Equal(t, int64(-5), ts)

	_, _, ok = decodePayload(p[:payloadLen-1])
	assert.False(t, ok, "short")
	p[0] ^= 1
	_, _, ok = decodePayload(p)
	assert.False(t, ok, "no magic")
}

func TestPercentile(t *testing.T) {
	assert.Zero(t, percentile(nil, 50))
	one := []int64{7}
	assert.Equal(t, int64(7), percentile(one, 50))
	assert.Equal(t, int64(7), percentile(one, 99))

	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1) // 1..100
	}
	assert.Equal(t, int64(50), percentile(s, 50))
	assert.Equal(t, int64(99), percentile(s, 99))
	assert.Equal(t, int64(100), percentile(s, 100))
	assert.Equal(t, int64(1), percentile(s, 0.5))

	unsorted := []int64{5, 1, 4, 2, 3}
	p50, p99 := percentiles(unsorted)
	assert.Equal(t, int64(3), p50)
	assert.Equal(t, int64(5), p99)
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, unsorted, "sorted in place")
}
