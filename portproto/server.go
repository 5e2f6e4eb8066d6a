package portproto

import (
	"encoding/binary"
	"errors"
	"log"
	"net"
	"strings"
	"sync/atomic"

	"github.com/tunctl/tunctl/device"
	"github.com/tunctl/tunctl/etf"
	"github.com/tunctl/tunctl/policy"
	"golang.org/x/sys/unix"
)

// Device is one open TUN/TAP queue, as the serve loop needs it.
// *device.Tun implements it; tests use a socketpair.
type Device interface {
	Fd() int
	Name() string
	Flags() uint16
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetPersist(on bool) error
	SetOwner(uid int) error
	SetGroup(gid int) error
	SetOffload(flags uint) error
	// Verify reports whether the caller may still configure the device
	// (EPERM when not: see device.Tun.Verify); checked before every
	// command that changes it.
	Verify() error
	Close() error
}

// BatchWriter is implemented by devices that write several packets at
// once (device.Tun): WriteBatch sets errs[i] to pkts[i]'s error.
type BatchWriter interface {
	WriteBatch(pkts [][]byte, errs []error)
}

// Opener opens (creates or attaches to) a device.
type Opener func(name string, flags uint16) (Device, error)

// Links configures interfaces by name; device.Links implements it.
type Links interface {
	AddrAdd(name string, addr net.IP, prefix int, brd, peer net.IP) error
	AddrDel(name string, addr net.IP, prefix int) error
	SetUp(name string, up bool) error
	SetMTU(name string, mtu int) error
	Info(name string) (device.LinkInfo, error)
	Count(prefix string) (int, error)
}

// Env is what a Server needs from the outside world.
type Env struct {
	Open   Opener
	Links  Links
	Netns  func(path string) error // enter a network namespace; nil: refused with EPERM
	Policy policy.Set              // every policy must allow; empty: all allowed
	Log    *log.Logger
}

const (
	readBurst = 64           // packets read (filtered or not) from one device per poll round
	inBufSize = 2 * MaxFrame // stdin buffer
	// outFlush bounds the output: once this much is pending, stdout is
	// flushed before anything else is read, from stdin or from a device.
	outFlush  = 1 << 20
	outBufCap = outFlush + readBurst*(MaxPacket+4+PacketHeaderLen)
	// txMax bounds the packets queued for one BatchWriter call: the
	// sends of consecutive send/sendv frames for one device.
	txMax = 256
)

// errStdinClosed ends Serve: stdin reached EOF (or its writer went away)
// while the server waited to write.
var errStdinClosed = errors.New("stdin closed")

// devState is an open device and its flow-control state.
type devState struct {
	Device
	ref       int32
	header    []byte // canonical {tuntap, Ref, _} header
	batch     []byte // canonical {tuntap_batch, Ref, _} header, or nil: one frame per packet
	sent      uint64 // {tuntap, Ref, _} frames sent
	limit     uint64 // read while sent < limit ...
	unlimited bool   // ... or always
	failed    bool   // a read failed: stop polling
	filter    *Filter
	stats     Stats
	relay     *relayState // getfd/1's relayed socket (relay.go), or nil
	persisted bool        // made persistent through this port (persist command)
	bw        BatchWriter // the Device's, or nil: one Write per packet
}

func (d *devState) wantsRead() bool { return !d.failed && (d.unlimited || d.sent < d.limit) }

// Server runs the protocol over a pair of descriptors (the port's stdin and
// stdout). It is single-threaded: Serve must be called once.
type Server struct {
	in, out int
	open    Opener
	links   Links
	netns   func(string) error
	policy  policy.Set
	log     *log.Logger

	devs  map[int32]*devState
	order []*devState // open devices in poll order

	inbuf      []byte
	r, w       int
	skip       int  // bytes of an oversized frame still to discard
	pending    bool // inbuf may hold complete frames not handled yet
	outbuf     []byte
	rbuf       []byte // scratch for the read command
	pfds       []unix.PollFd
	polled     []*devState
	writeError error
	txDev      *devState // the device txq is for
	txq        [][]byte  // packets of send/sendv frames not written yet (slices of inbuf)
	txErr      []error
	home       int         // a socket of the first network namespace (relay.go), or -1
	entered    bool        // the port entered another network namespace
	ending     atomic.Bool // Serve is closing its devices and returning
}

// NewServer returns a server reading requests from in and writing frames to
// out. in must be non-blocking.
func NewServer(in, out int, env Env) *Server {
	return &Server{
		in: in, out: out, open: env.Open, links: env.Links, netns: env.Netns,
		policy: env.Policy, log: env.Log,
		devs:   make(map[int32]*devState),
		inbuf:  make([]byte, inBufSize),
		outbuf: make([]byte, 0, outBufCap),
		rbuf:   make([]byte, MaxPacket),
		txq:    make([][]byte, 0, txMax),
		txErr:  make([]error, txMax),
		home:   -1,
	}
}

// Serve sends the handshake and serves until stdin reaches EOF, then closes
// every device it opened. It returns an error only when stdout or stdin fail.
func (s *Server) Serve() error {
	defer s.closeAll()
	caps := make([]etf.Term, len(Capabilities))
	for i, c := range Capabilities {
		caps[i] = etf.Atom(c)
	}
	s.emit(etf.Tuple(etf.Atom("tunctl_port"), Version, etf.List(caps...)))
	for {
		if err := s.flush(); err != nil {
			return s.end(err)
		}
		if s.pending {
			// Frames left in inbuf when the output bound was reached.
			s.handleFrames()
			continue
		}
		s.pfds = append(s.pfds[:0], unix.PollFd{Fd: int32(s.in), Events: unix.POLLIN})
		s.polled = s.polled[:0]
		for _, d := range s.order {
			if d.wantsRead() || d.relayWantsRead() {
				s.pfds = append(s.pfds, unix.PollFd{Fd: int32(d.Fd()), Events: unix.POLLIN})
				s.polled = append(s.polled, d)
			}
		}
		s.appendRelayPolls()
		if _, err := device.Poll(s.pfds, -1); err != nil {
			return err
		}
		// Devices first: their revents refer to the devices polled, which
		// input processing below may close.
		for i, d := range s.polled {
			if s.pfds[i+1].Revents != 0 && s.devs[d.ref] == d {
				if d.wantsRead() {
					s.readDevice(d)
				} else {
					s.relayDevice(d)
				}
			}
		}
		s.serviceRelays()
		if s.pfds[0].Revents != 0 {
			eof, err := s.readInput()
			if err != nil || eof {
				if err == nil {
					err = errStdinClosed
				}
				return s.end(err)
			}
		}
	}
}

// Ending reports whether Serve has stopped serving and is closing its
// devices. Unlike every other method it may be called from any goroutine.
func (s *Server) Ending() bool { return s.ending.Load() }

// end closes every device and writes what can still be written; EOF on
// stdin is a normal end (nil).
func (s *Server) end(err error) error {
	s.ending.Store(true)
	s.closeAll()
	if ferr := s.flush(); err == errStdinClosed && ferr != errStdinClosed {
		err = ferr
	}
	if errors.Is(err, errStdinClosed) {
		return nil
	}
	return err
}

// readDevice reads up to readBurst packets straight into the output buffer,
// behind their frame headers: no copy, no allocation. In batch mode
// (d.batch) they go into one {tuntap_batch, Ref, [...]} frame, an empty
// round leaving none; else each is its own {tuntap, Ref, _} frame. Credit
// (sent, limit) counts packets either way. Filtered packets count against
// the burst: a flood of them must not starve stdin and the other devices.
func (s *Server) readDevice(d *devState) {
	batch := d.batch != nil
	if batch && len(s.outbuf) >= outFlush && s.flush() != nil {
		return
	}
	start := len(s.outbuf)
	if batch {
		s.outbuf = BeginBatchFrame(s.outbuf, d.batch)
	}
	n := 0
	var rerr error
	for i := 0; i < readBurst && d.wantsRead(); i++ {
		ps := len(s.outbuf)
		if batch {
			s.outbuf = BeginBatchPacket(s.outbuf)
		} else {
			s.outbuf = BeginPacketFrame(s.outbuf, d.header)
		}
		body := len(s.outbuf)
		k, err := d.Read(s.outbuf[body : body+MaxPacket])
		if err != nil {
			s.outbuf = s.outbuf[:ps]
			if err != unix.EAGAIN {
				d.failed = true
				d.stats.RxErrors++
				rerr = err
			}
			break
		}
		if !d.filter.Allows(s.outbuf[body : body+k]) {
			s.outbuf = s.outbuf[:ps]
			d.stats.Filtered++
			continue
		}
		s.outbuf = s.outbuf[:body+k]
		n++
		d.sent++
		d.stats.RxPackets++
		d.stats.RxBytes += uint64(k)
		if batch {
			EndBatchPacket(s.outbuf, ps)
			continue
		}
		EndPacketFrame(s.outbuf, ps)
		if len(s.outbuf) >= outFlush && s.flush() != nil {
			return
		}
	}
	if batch {
		if n == 0 {
			s.outbuf = s.outbuf[:start]
		} else {
			s.outbuf = EndBatchFrame(s.outbuf, start, n)
		}
	}
	if rerr != nil {
		s.event("tuntap_read_error", d.ref, rerr)
	}
}

// readOne reads a single packet for the read command, skipping (and
// counting) packets the device's filter drops, as the active path does:
// at most readBurst of them, then it answers EAGAIN.
func (s *Server) readOne(d *devState) ([]byte, error) {
	for i := 0; i < readBurst; i++ {
		n, err := d.Read(s.rbuf)
		if err != nil {
			if err != unix.EAGAIN {
				d.stats.RxErrors++
			}
			return nil, err
		}
		if !d.filter.Allows(s.rbuf[:n]) {
			d.stats.Filtered++
			continue
		}
		d.stats.RxPackets++
		d.stats.RxBytes += uint64(n)
		return s.rbuf[:n], nil
	}
	return nil, unix.EAGAIN
}

// readInput reads what stdin has and handles the complete frames (see
// handleFrames).
func (s *Server) readInput() (eof bool, err error) {
	if s.r == s.w {
		s.r, s.w = 0, 0
	} else if len(s.inbuf)-s.w < MaxFrame+4 {
		s.w = copy(s.inbuf, s.inbuf[s.r:s.w])
		s.r = 0
	}
	n, err := device.ReadFd(s.in, s.inbuf[s.w:])
	switch {
	case err == unix.EAGAIN:
		return false, nil
	case err != nil:
		return true, err
	case n == 0:
		return true, nil
	}
	s.w += n
	s.handleFrames()
	return false, nil
}

// handleFrames handles the complete frames in inbuf until none is left or
// the output reaches outFlush; then it sets s.pending, and Serve flushes
// before it handles the rest and before it reads stdin again. So the
// output stays bounded whatever arrives: a read command answers up to 64
// KiB from a ~30-byte frame.
//
// The packets of consecutive send and sendv frames for one device are
// written together (flushTx) before anything else is handled and before
// it returns: they are slices of inbuf, which the next read moves.
func (s *Server) handleFrames() {
	defer s.flushTx()
	s.pending = false
	for {
		if len(s.outbuf) >= outFlush {
			s.pending = true
			return
		}
		if s.skip > 0 {
			k := min(s.skip, s.w-s.r)
			s.skip -= k
			s.r += k
			if s.skip > 0 {
				return
			}
		}
		if s.w-s.r < 4 {
			return
		}
		l := int(binary.BigEndian.Uint32(s.inbuf[s.r:]))
		if l > MaxFrame {
			s.r += 4
			s.skip = l
			s.emit(etf.Tuple(etf.Atom("tunctl_error"), etf.Atom("emsgsize")))
			continue
		}
		if s.w-s.r-4 < l {
			return
		}
		frame := s.inbuf[s.r+4 : s.r+4+l]
		s.r += 4 + l
		s.handle(frame)
	}
}

// handle dispatches one request frame (decodeRequest).
func (s *Server) handle(frame []byte) {
	r := decodeRequest(frame)
	switch r.kind {
	case reqSend:
		s.send(r.ref, s.devs[r.ref], r.pkt)
		return
	case reqSendv:
		d := s.devs[r.ref] // once per frame, not per packet
		elems := r.elems
		for i := 0; i < r.n; i++ {
			var pkt []byte
			pkt, elems, _ = NextPacket(elems)
			s.send(r.ref, d, pkt)
		}
		for _, p := range r.pkts {
			s.send(r.ref, d, p)
		}
		return
	}
	s.flushTx() // sends before what came after them
	switch r.kind {
	case reqCall:
		s.call(r.id, r.name, r.args)
	case reqActive:
		s.active(r)
	default:
		s.emit(etf.Tuple(etf.Atom("tunctl_error"), etf.Atom(r.reason)))
	}
}

// call runs a command and replies {reply, Id, Result}.
func (s *Server) call(id etf.Term, name string, args []etf.Term) {
	c, known := commands[name]
	var res etf.Term
	var err error
	switch {
	case !known:
		err = ErrBadCmd
	case len(args) != c.arity:
		err = ErrBadArg
	default:
		res, err = c.run(s, args)
	}
	if err != nil {
		res = etf.Tuple(etf.Atom("error"), reason(err))
	}
	s.emit(etf.Tuple(etf.Atom("reply"), id, res))
}

// send queues one packet for device d, Ref's (flushTx writes it), or
// answers {tuntap_error, Ref, _} for it, after the packets queued before it.
func (s *Server) send(ref int32, d *devState, pkt []byte) {
	switch {
	case d == nil:
		s.flushTx()
		s.event("tuntap_error", ref, unix.EBADF)
	case len(pkt) > MaxPacket:
		s.flushTx()
		d.stats.TxErrors++
		s.event("tuntap_error", ref, unix.EMSGSIZE)
	default:
		if d != s.txDev || len(s.txq) == txMax {
			s.flushTx()
			s.txDev = d
		}
		s.txq = append(s.txq, pkt)
	}
}

// flushTx writes the queued packets, with one WriteBatch when the device
// has it, and accounts for each: counted, or {tuntap_error, Ref, Posix}.
func (s *Server) flushTx() {
	d, pkts := s.txDev, s.txq
	if len(pkts) == 0 {
		return
	}
	errs := s.txErr[:len(pkts)]
	if d.bw != nil {
		d.bw.WriteBatch(pkts, errs)
	} else {
		for i, p := range pkts {
			_, errs[i] = d.Write(p)
		}
	}
	for i, p := range pkts {
		if errs[i] != nil {
			d.stats.TxErrors++
			s.event("tuntap_error", d.ref, errs[i])
			continue
		}
		d.stats.TxPackets++
		d.stats.TxBytes += uint64(len(p))
	}
	clear(pkts)
	clear(errs)
	s.txq, s.txDev = pkts[:0], nil
}

// active sets a device's credit ({active, Ref, Limit}).
func (s *Server) active(r request) {
	d := s.devs[r.ref]
	switch {
	case d == nil:
		s.event("tuntap_error", r.ref, unix.EBADF)
	case r.unlimited:
		d.unlimited = true
	case r.stop:
		d.unlimited, d.limit = false, d.sent
	default:
		d.unlimited, d.limit = false, r.limit
	}
}

func (s *Server) openDevice(ref int32, name string, flags uint16) (Device, error) {
	if s.devs[ref] != nil {
		return nil, unix.EEXIST
	}
	if len(name) > device.MaxNameLen || strings.IndexByte(name, 0) >= 0 || strings.IndexByte(name, '%') >= 0 {
		return nil, unix.EINVAL
	}
	name, err := s.policy.DeviceName(name)
	if err == nil {
		err = s.policy.CheckCount(s.links.Count, false)
	}
	if err != nil {
		return nil, s.denied(err)
	}
	dev, err := s.open(name, flags)
	if err != nil {
		return nil, err
	}
	// Count again with the new queue in: ports opening at the same time
	// all passed the first check; those that went over the limit give
	// their queue back.
	if err := s.policy.CheckCount(s.links.Count, true); err != nil {
		if cerr := dev.Close(); cerr != nil {
			s.log.Printf("close %s: %v", dev.Name(), cerr)
		}
		return nil, s.denied(err)
	}
	d := &devState{Device: dev, ref: ref, header: PacketHeader(ref)}
	d.bw, _ = dev.(BatchWriter)
	s.devs[ref] = d
	s.order = append(s.order, d)
	return dev, nil
}

func (s *Server) argDevice(t etf.Term) (*devState, error) {
	ref, err := argRef(t)
	if err != nil {
		return nil, err
	}
	d := s.devs[ref]
	if d == nil {
		return nil, unix.EBADF
	}
	return d, nil
}

func (s *Server) closeDevice(d *devState) error {
	closeRelay(d)
	linkDownUnlessPersisted(s, d)
	delete(s.devs, d.ref)
	for i, o := range s.order {
		if o == d {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return d.Close()
}

func (s *Server) closeAll() {
	for len(s.order) > 0 {
		d := s.order[0]
		if err := s.closeDevice(d); err != nil {
			s.log.Printf("close %s: %v", d.Name(), err)
		}
	}
}

// denied logs a policy violation and turns it into EACCES.
func (s *Server) denied(err error) error {
	if errors.Is(err, policy.ErrDenied) {
		s.log.Printf("refused: %v", err)
		return unix.EACCES
	}
	return err
}

// event emits {Tag, Ref, Posix}.
func (s *Server) event(tag string, ref int32, err error) {
	s.emit(etf.Tuple(etf.Atom(tag), int(ref), reason(err)))
}

// emit appends one control frame to the output buffer.
func (s *Server) emit(t etf.Term) {
	b, err := etf.Encode(t)
	if err != nil {
		s.log.Printf("encode %v: %v", t, err)
		return
	}
	s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, uint32(len(b)))
	s.outbuf = append(s.outbuf, b...)
}

// flush writes the pending frames to stdout. While stdout is full it
// waits for it and for stdin together: stdin's writer going away ends the
// wait with errStdinClosed (EOF wins even when the reader stopped reading).
func (s *Server) flush() error {
	if s.writeError != nil {
		return s.writeError
	}
	p := s.outbuf
	for len(p) > 0 && s.writeError == nil {
		n, err := unix.Write(s.out, p)
		switch err {
		case nil:
			p = p[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			s.writeError = s.waitWritable()
		default:
			s.writeError = &device.OpError{Op: "write", Err: err}
		}
	}
	s.outbuf = s.outbuf[:0]
	return s.writeError
}

// waitWritable waits until stdout takes more, or stdin's writer is gone.
func (s *Server) waitWritable() error {
	fds := []unix.PollFd{{Fd: int32(s.out), Events: unix.POLLOUT}, {Fd: int32(s.in), Events: unix.POLLRDHUP}}
	if _, err := device.Poll(fds, -1); err != nil {
		return &device.OpError{Op: "poll", Err: err}
	}
	if fds[1].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR) != 0 {
		return errStdinClosed
	}
	if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		return &device.OpError{Op: "write", Err: unix.EPIPE}
	}
	return nil
}

// reason maps an error to the atom sent to Erlang: a posix name such as
// eperm, or badarg/badcmd/badetf.
func reason(err error) etf.Term {
	switch {
	case errors.Is(err, ErrBadArg):
		return etf.Atom("badarg")
	case errors.Is(err, ErrBadCmd):
		return etf.Atom("badcmd")
	case errors.Is(err, ErrBadETF):
		return etf.Atom("badetf")
	}
	name := unix.ErrnoName(device.Errno(err))
	if name == "" {
		return etf.Atom("eio")
	}
	return etf.Atom(strings.ToLower(name))
}
