package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"
)

// conn is the generator's view of a connected UDP socket. udpConn is the real
// one; the tests use an in-memory reflector.
type conn interface {
	// send sends each of pkts as one datagram.
	send(pkts [][]byte) error
	// recv waits up to the receive timeout for one datagram, then takes
	// whatever else is already queued, up to len(bufs). It returns the
	// number of datagrams and their lengths in lens; 0 and no error when
	// the timeout passed.
	recv(bufs [][]byte, lens []int) (int, error)
}

// genConfig is what one generator run does.
type genConfig struct {
	size     int           // IP packet length, >= minSize
	window   int           // datagrams in flight (1: ping-pong)
	count    int           // at most this many datagrams are sent
	duration time.Duration // no datagram is sent after this
	timeout  time.Duration // an unanswered datagram is lost after this
}

// genResult is what one run measured.
type genResult struct {
	sent     int     // datagrams sent
	recv     int     // distinct datagrams answered (late ones included)
	dup      int     // answers received more than once
	late     int     // answers received after their datagram was declared lost
	bad      int     // datagrams received that were not answers to ours
	timeouts int     // times outstanding datagrams were declared lost
	secs     float64 // from the first send to the last answer or timeout
	rtts     []int64 // round trips of the answers in time, nanoseconds
}

// lost is the number of datagrams never answered.
func (r *genResult) lost() int { return r.sent - r.recv }

// pps is answered datagrams per second.
func (r *genResult) pps() float64 {
	if r.secs <= 0 {
		return 0
	}
	return float64(r.recv) / r.secs
}

// line formats the result as the one line gen prints.
func (r *genResult) line(mode string, cfg genConfig) string {
	p50, p99 := percentiles(r.rtts)
	return fmt.Sprintf("mode=%s size=%d window=%d sent=%d recv=%d lost=%d dup=%d late=%d bad=%d timeouts=%d pps=%.0f p50_us=%.1f p99_us=%.1f secs=%.3f",
		mode, cfg.size, cfg.window, r.sent, r.recv, r.lost(), r.dup, r.late, r.bad, r.timeouts, r.pps(),
		float64(p50)/1e3, float64(p99)/1e3, r.secs)
}

// state of one sequence number
const (
	seqUnsent byte = iota
	seqOutstanding
	seqAnswered
	seqExpired
)

// runGen runs the window protocol over c. now returns the time since an
// arbitrary origin; it is a parameter so that the tests can drive it.
//
// Every datagram carries its sequence number and send time. Each answer in
// time releases one more datagram, so that cfg.window stay in flight; when the
// oldest outstanding datagram is older than cfg.timeout, every datagram that
// old is declared lost and the window is refilled, so a lost datagram never
// stalls the run. Sending stops at cfg.count datagrams or after cfg.duration;
// the run ends when nothing is outstanding.
func runGen(c conn, cfg genConfig, now func() time.Duration) (*genResult, error) {
	if cfg.size < minSize || cfg.window < 1 || cfg.count < 1 || cfg.timeout <= 0 {
		return nil, errors.New("bad configuration")
	}
	plen := cfg.size - udpIPv4Overhead
	state := make([]byte, cfg.count)
	sentAt := make([]int64, cfg.count)
	res := &genResult{rtts: make([]int64, 0, min(cfg.count, 1<<22))}
	out := make([][]byte, cfg.window)
	for i := range out {
		out[i] = make([]byte, plen)
	}
	in := make([][]byte, cfg.window)
	for i := range in {
		in[i] = make([]byte, plen+64)
	}
	lens := make([]int, cfg.window)

	start := now()
	next, inflight, oldest := 0, 0, 0
	for {
		t := now() - start
		// refill the window
		if k := min(cfg.window-inflight, cfg.count-next); k > 0 && t < cfg.duration {
			for i := 0; i < k; i++ {
				encodePayload(out[i], uint64(next+i), int64(t))
				state[next+i] = seqOutstanding
				sentAt[next+i] = int64(t)
			}
			if err := c.send(out[:k]); err != nil {
				return nil, err
			}
			next += k
			inflight += k
			res.sent += k
		}
		if inflight == 0 {
			break
		}
		n, err := c.recv(in, lens)
		if err != nil {
			return nil, err
		}
		t = now() - start
		for i := 0; i < n; i++ {
			seq, ts, ok := decodePayload(in[i][:lens[i]])
			if !ok || seq >= uint64(next) {
				res.bad++
				continue
			}
			switch state[seq] {
			case seqOutstanding:
				state[seq] = seqAnswered
				inflight--
				res.recv++
				res.rtts = append(res.rtts, int64(t)-ts)
			case seqExpired:
				state[seq] = seqAnswered
				res.recv++
				res.late++
			case seqAnswered:
				res.dup++
			}
		}
		// expire what is too old: datagrams are sent in sequence order,
		// so the outstanding ones from oldest on are the candidates
		for oldest < next && state[oldest] != seqOutstanding {
			oldest++
		}
		if oldest < next && int64(t)-sentAt[oldest] >= int64(cfg.timeout) {
			res.timeouts++
			for ; oldest < next && int64(t)-sentAt[oldest] >= int64(cfg.timeout); oldest++ {
				if state[oldest] == seqOutstanding {
					state[oldest] = seqExpired
					inflight--
				}
			}
		}
	}
	res.secs = (now() - start).Seconds()
	return res, nil
}

func genMain(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	local := fs.String("local", "198.18.0.1", "local IPv4 address to send from")
	remote := fs.String("remote", "198.18.0.2:9000", "address:port the datagrams go to (routed through the reflector's device)")
	size := fs.Int("size", 64, fmt.Sprintf("IP packet length in bytes (>= %d; the UDP payload is 28 bytes less)", minSize))
	window := fs.Int("window", 64, "datagrams in flight (window mode)")
	count := fs.Int("count", 2000000, "at most this many datagrams")
	duration := fs.Duration("duration", 3*time.Second, "stop sending after this long")
	timeout := fs.Duration("timeout", 20*time.Millisecond, "a datagram unanswered for this long is lost")
	mode := fs.String("mode", "window", "window (throughput) or pingpong (latency: one datagram in flight)")
	_ = fs.Parse(args)

	cfg := genConfig{size: *size, window: *window, count: *count, duration: *duration, timeout: *timeout}
	switch *mode {
	case "window":
	case "pingpong":
		cfg.window = 1
	default:
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	if cfg.size < minSize || cfg.size > 65535 || cfg.window < 1 || cfg.count < 1 || cfg.duration <= 0 || cfg.timeout <= 0 {
		return errors.New("bad -size, -window, -count, -duration or -timeout")
	}
	la, err := netip.ParseAddr(*local)
	if err != nil {
		return err
	}
	ra, err := netip.ParseAddrPort(*remote)
	if err != nil {
		return err
	}
	// one goroutine, one thread: nothing to hand over around the syscalls
	runtime.LockOSThread()
	c, err := dialUDP(la, ra, cfg.timeout, cfg.window)
	if err != nil {
		return err
	}
	defer c.close()
	origin := time.Now()
	res, err := runGen(c, cfg, func() time.Duration { return time.Since(origin) })
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, res.line(*mode, cfg))
	return nil
}
