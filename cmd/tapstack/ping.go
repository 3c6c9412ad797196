package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func cmdPing(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	var f ifaceFlags
	f.register(fs, false)
	count := fs.Int("c", 0, "stop after this many replies (default: until interrupted)")
	size := fs.Int("s", 56, "payload bytes per request")
	interval := fs.Duration("i", time.Second, "time between requests")
	wait := fs.Duration("W", 10*time.Second, "how long to wait for the last replies")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tapstack ping HOST --dev DEV --addr A.B.C.D/N [-c N] [-s SIZE]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("ping needs one HOST, e.g. tapstack ping 10.0.0.1 --dev tap0 --addr 10.0.0.2/24")
	}
	host, err := netip.ParseAddr(pos[0])
	if err != nil || !host.Is4() {
		return usagef("ping: %q is not an IPv4 address (names are not resolved)", pos[0])
	}
	if *size < 0 || *size > 65507 {
		return usagef("ping: -s %d is outside 0..65507", *size)
	}
	if *count < 0 || *interval <= 0 {
		return usagef("ping: -c must be >= 0 and -i > 0")
	}
	c, err := f.check()
	if err != nil {
		return err
	}
	ifc, err := openIface(c)
	if err != nil {
		return err
	}
	defer ifc.close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := ifc.stack.DialPing(host)
	if err != nil {
		return err
	}
	defer p.Close()

	fmt.Fprintf(stdout, "PING %v (%v) %d(%d) bytes of data.\n", host, host, *size, *size+28)
	var st pingStats
	sent := map[uint16]time.Time{}
	start := time.Now()
	replies := make(chan pingReply)
	go func() {
		for {
			e, err := p.RecvEcho(ctx)
			if err != nil {
				close(replies)
				return
			}
			replies <- pingReply{seq: e.Seq, n: e.Len, ttl: e.TTL, at: time.Now()}
		}
	}()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var seq uint16
	send := func() {
		seq++
		sent[seq] = time.Now()
		st.sent++
		if err := p.SendEcho(seq, *size); err != nil {
			fmt.Fprintf(stderr, "ping: send: %v\n", err)
		}
	}
	send()
	var linger <-chan time.Time
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case r, ok := <-replies:
			if !ok {
				break loop
			}
			t0, ok := sent[r.seq]
			if !ok {
				continue // a duplicate or a stranger's reply
			}
			delete(sent, r.seq)
			rtt := r.at.Sub(t0)
			st.add(rtt)
			fmt.Fprintf(stdout, "%d bytes from %v: icmp_seq=%d ttl=%d time=%s ms\n", r.n+8, host, r.seq, r.ttl, ms(rtt))
			if *count > 0 && st.received >= *count {
				break loop
			}
		case <-tick.C:
			if *count == 0 || st.sent < *count {
				send()
			} else if linger == nil {
				linger = time.After(*wait)
			}
		case <-linger:
			break loop
		}
	}
	stop()
	p.Close()
	for range replies {
	}
	fmt.Fprintf(stdout, "\n--- %v ping statistics ---\n", host)
	fmt.Fprintf(stdout, "%d packets transmitted, %d received, %.0f%% packet loss, time %dms\n",
		st.sent, st.received, st.lossPercent(), time.Since(start).Milliseconds())
	if st.received > 0 {
		fmt.Fprintf(stdout, "rtt min/avg/max/mdev = %s/%s/%s/%s ms\n", ms(st.min), ms(st.avg()), ms(st.max), ms(st.mdev()))
		return nil
	}
	return errors.New("ping: no reply")
}

type pingReply struct {
	seq uint16
	n   int
	ttl uint8
	at  time.Time
}

type pingStats struct {
	sent, received int
	min, max, sum  time.Duration
	sumSq          float64
}

func (s *pingStats) add(rtt time.Duration) {
	if s.received == 0 || rtt < s.min {
		s.min = rtt
	}
	s.max = max(s.max, rtt)
	s.received++
	s.sum += rtt
	s.sumSq += float64(rtt) * float64(rtt)
}

func (s *pingStats) avg() time.Duration { return s.sum / time.Duration(s.received) }

func (s *pingStats) mdev() time.Duration {
	mean := float64(s.sum) / float64(s.received)
	return time.Duration(math.Sqrt(max(0, s.sumSq/float64(s.received)-mean*mean)))
}

func (s *pingStats) lossPercent() float64 {
	if s.sent == 0 {
		return 0
	}
	return 100 * float64(s.sent-s.received) / float64(s.sent)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
