package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeNet is an in-memory path: every datagram sent comes back after one
// recv call unless drop says otherwise; a clock advances by step on every
// recv and by timeout on a recv that finds nothing.
type fakeNet struct {
	clock   time.Duration
	step    time.Duration
	timeout time.Duration
	queue   [][]byte
	sends   int
	drop    func(n int) bool // n: the datagram's index in send order
	dup     func(n int) bool
	maxQ    int // most datagrams in flight seen
}

func (f *fakeNet) now() time.Duration { return f.clock }

func (f *fakeNet) send(pkts [][]byte) error {
	for _, p := range pkts {
		n := f.sends
		f.sends++
		if f.drop != nil && f.drop(n) {
			continue
		}
		c := append([]byte{}, p...)
		f.queue = append(f.queue, c)
		if f.dup != nil && f.dup(n) {
			f.queue = append(f.queue, c)
		}
	}
	f.maxQ = max(f.maxQ, len(f.queue))
	return nil
}

func (f *fakeNet) recv(bufs [][]byte, lens []int) (int, error) {
	if len(f.queue) == 0 {
		f.clock += f.timeout
		return 0, nil
	}
	f.clock += f.step
	n := min(len(bufs), len(f.queue))
	for i := 0; i < n; i++ {
		lens[i] = copy(bufs[i], f.queue[i])
	}
	f.queue = f.queue[n:]
	return n, nil
}

func cfg(window, count int) genConfig {
	return genConfig{size: 64, window: window, count: count, duration: time.Hour, timeout: 20 * time.Millisecond}
}

func TestGenWindowNoLoss(t *testing.T) {
	f := &fakeNet{step: time.Microsecond, timeout: 20 * time.Millisecond}
	res, err := runGen(f, cfg(64, 10000), f.now)
	require.NoError(t, err)
	assert.Equal(t, 10000, res.sent)
	assert.Equal(t, 10000, res.recv)
	assert.Zero(t, res.lost())
	assert.Zero(t, res.timeouts)
	assert.Len(t, res.rtts, 10000)
	assert.LessOrEqual(t, f.maxQ, 64, "never more than the window in flight")
	assert.Equal(t, 64, f.maxQ, "the window is kept full")
}

func TestGenLossRefillsWindow(t *testing.T) {
	// every 100th datagram vanishes: the run must not stall and must
	// count exactly those as lost
	f := &fakeNet{step: time.Microsecond, timeout: 20 * time.Millisecond, drop: func(n int) bool { return n%100 == 0 }}
	res, err := runGen(f, cfg(64, 10000), f.now)
	require.NoError(t, err)
	assert.Equal(t, 10000, res.sent)
	assert.Equal(t, 100, res.lost())
	assert.Equal(t, 9900, res.recv)
	assert.Positive(t, res.timeouts)
}

func TestGenAllLostEnds(t *testing.T) {
	f := &fakeNet{step: time.Microsecond, timeout: 20 * time.Millisecond, drop: func(int) bool { return true }}
	c := cfg(8, 100)
	c.duration = time.Second
	res, err := runGen(f, c, f.now)
	require.NoError(t, err)
	assert.Equal(t, 100, res.sent)
	assert.Equal(t, 100, res.lost())
	assert.Zero(t, res.recv)
}

func TestGenDuplicates(t *testing.T) {
	f := &fakeNet{step: time.Microsecond, timeout: 20 * time.Millisecond, dup: func(n int) bool { return n == 5 }}
	res, err := runGen(f, cfg(4, 50), f.now)
	require.NoError(t, err)
	assert.Equal(t, 50, res.recv)
	assert.Equal(t, 1, res.dup)
	assert.Zero(t, res.lost())
}

func TestGenDurationBound(t *testing.T) {
	// 1 ms per answer batch, 100 ms of sending: far fewer than count
	f := &fakeNet{step: time.Millisecond, timeout: 20 * time.Millisecond}
	c := cfg(1, 1000000)
	c.duration = 100 * time.Millisecond
	res, err := runGen(f, c, f.now)
	require.NoError(t, err)
	assert.InDelta(t, 100, res.sent, 2)
	assert.Equal(t, res.sent, res.recv)
	assert.InDelta(t, 0.1, res.secs, 0.002)
	line := res.line("pingpong", c)
	assert.Contains(t, line, "mode=pingpong ")
	assert.Contains(t, line, " lost=0 ")
	assert.Contains(t, line, " p50_us=1000.0 ")
}

func TestGenBadConfig(t *testing.T) {
	f := &fakeNet{}
	for _, c := range []genConfig{
		{size: minSize - 1, window: 1, count: 1, duration: time.Second, timeout: time.Second},
		{size: 64, window: 0, count: 1, duration: time.Second, timeout: time.Second},
		{size: 64, window: 1, count: 0, duration: time.Second, timeout: time.Second},
		{size: 64, window: 1, count: 1, duration: time.Second, timeout: 0},
	} {
		_, err := runGen(f, c, f.now)
		assert.Error(t, err)
	}
}
