package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/tunctl/tunctl/portproto/porttest/udpswap"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tunctl/tunctl/device"
	"golang.org/x/sys/unix"
)

// reflectBurst is the most packets read per poll(2), as in portproto.
const reflectBurst = 64

func reflectMain(args []string) error {
	fs := flag.NewFlagSet("reflect", flag.ExitOnError)
	name := fs.String("dev", "tbench0", "TUN device to create")
	addr := fs.String("addr", "198.18.0.1/24", "address/prefix to assign to it")
	duration := fs.Duration("duration", 10*time.Second, "exit after this long (or on SIGTERM)")
	_ = fs.Parse(args)
	pfx, err := netip.ParsePrefix(*addr)
	if err != nil {
		return err
	}
	if *duration <= 0 {
		return errors.New("bad -duration")
	}

	var stop atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		stop.Store(true)
	}()

	// the reflector's work happens on this thread only
	runtime.LockOSThread()
	t, err := device.Open(*name, device.FlagTUN|device.FlagNoPI)
	if err != nil {
		return err
	}
	defer t.Close()
	links := device.Links{}
	if err := links.AddrAdd(t.Name(), pfx.Addr().AsSlice(), pfx.Bits(), nil, nil); err != nil {
		return err
	}
	if err := links.SetUp(t.Name(), true); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reflect: %s up\n", t.Name())

	var bufs [reflectBurst][]byte
	var lens [reflectBurst]int
	for i := range bufs {
		bufs[i] = make([]byte, 65536)
	}
	pfd := []unix.PollFd{{Fd: int32(t.Fd()), Events: unix.POLLIN}}
	var reflected, ignored, failed uint64
	deadline := time.Now().Add(*duration)
	for !stop.Load() && time.Now().Before(deadline) {
		// a bounded wait, so that SIGTERM and the deadline are seen
		if _, err := device.Poll(pfd, 100); err != nil {
			return err
		}
		if pfd[0].Revents == 0 {
			continue
		}
		n := 0
		for ; n < reflectBurst; n++ {
			k, err := t.Read(bufs[n])
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				return err
			}
			lens[n] = k
		}
		for i := 0; i < n; i++ {
			p := bufs[i][:lens[i]]
			if !udpswap.V4(p) {
				ignored++
				continue
			}
			if _, err := t.Write(p); err != nil {
				failed++
				continue
			}
			reflected++
		}
	}
	fmt.Fprintf(os.Stdout, "reflected=%d ignored=%d failed=%d\n", reflected, ignored, failed)
	return nil
}
